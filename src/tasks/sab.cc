// Sparse Attentive Backtracking on long-range tasks (attend/tasks/sab.h): the copy task and
// pixel-by-pixel Fashion-MNIST, SAB and its two LSTM baselines, the trainer's task, evaluation,
// the cost of a training step, and the picture of the sparse weights.
#include "attend/tasks/sab.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/vision.h"
#include "attend/viz.h"

namespace attend::tasks {

// ---- the copy task ----------------------------------------------------------------------------
namespace {

// Ten symbols of three bits each come from one word of mt19937_64, whose output the C++ standard
// fixes bit for bit (its distributions are not fixed, so the bits are cut from the raw word).
std::vector<uint8_t> DrawSymbols(std::mt19937_64& eng) {
  const uint64_t word = eng();
  std::vector<uint8_t> s(kSabCopySymbols);
  for (int64_t i = 0; i < kSabCopySymbols; ++i)
    s[static_cast<size_t>(i)] = static_cast<uint8_t>((word >> (3 * i)) & 7u);
  return s;
}

void FillSplit(std::mt19937_64& eng, int64_t count, std::set<std::vector<uint8_t>>& seen,
               SabCopySet& out) {
  // 8^10 sequences: a repeat is rare, but drawing again keeps the splits disjoint by construction.
  while (out.size() < count) {
    std::vector<uint8_t> s = DrawSymbols(eng);
    if (seen.insert(s).second) out.symbols.push_back(std::move(s));
  }
}

}  // namespace

SabCopyData BuildSabCopyData(const SabCopyOptions& o) {
  ATTEND_CHECK(o.gap > 0, "sab copy data: the gap (", o.gap, ") must be positive");
  ATTEND_CHECK(o.train_size > 0 && o.dev_size > 0 && o.test_size > 0, "sab copy data: train size ",
               o.train_size, ", dev size ", o.dev_size, " and test size ", o.test_size,
               " must be positive");
  SabCopyData d;
  d.gap = o.gap;
  std::set<std::vector<uint8_t>> seen;
  // One stream per split, so that a larger training set leaves dev and test as they were.
  std::mt19937_64 dev_eng(o.seed * 4 + 1), test_eng(o.seed * 4 + 2), train_eng(o.seed * 4 + 3);
  FillSplit(dev_eng, o.dev_size, seen, d.dev);
  FillSplit(test_eng, o.test_size, seen, d.test);
  FillSplit(train_eng, o.train_size, seen, d.train);
  return d;
}

// ---- pixel-by-pixel Fashion-MNIST -------------------------------------------------------------
namespace {

constexpr int64_t kSide = 28;
constexpr int64_t kDevFloor = 50000;  // dev images come from the training file's tail past this
// The pixel mean and standard deviation (of pixel / 255) over the 60,000 training images of
// Debian's dataset-fashion-mnist: constants, so that every subset and the test set are scaled
// alike and a checkpoint needs no statistics of its own.
constexpr float kPixelMean = 0.28604060f;
constexpr float kPixelStd = 0.35302424f;

SabPixelSet TakeImages(const vision::FashionMnist& set, int64_t first, int64_t count,
                       int64_t side) {
  SabPixelSet s;
  s.pixels.reserve(static_cast<size_t>(count * side * side));
  for (int64_t i = first; i < first + count; ++i) {
    vision::Image img = set.images.image(i);
    if (side != kSide) img = vision::Resize(img, side, side);
    for (uint8_t p : img.pixels)
      s.pixels.push_back((static_cast<float>(p) / 255.0f - kPixelMean) / kPixelStd);
    s.labels.push_back(set.labels[static_cast<size_t>(i)]);
  }
  return s;
}

}  // namespace

SabPixelData LoadSabPixelData(const SabPixelOptions& o) {
  ATTEND_CHECK(o.image_size >= 4 && o.image_size <= kSide, "sab pixels: --image-size ",
               o.image_size, " must lie in 4..28");
  ATTEND_CHECK(o.train_size > 0 && o.train_size <= kDevFloor, "sab pixels: --train-size ",
               o.train_size, " must lie in 1..", kDevFloor);
  ATTEND_CHECK(o.dev_size > 0 && o.dev_size <= 60000 - kDevFloor, "sab pixels: --dev-size ",
               o.dev_size, " must lie in 1..", 60000 - kDevFloor);
  ATTEND_CHECK(o.test_size > 0 && o.test_size <= 10000, "sab pixels: --test-size ", o.test_size,
               " must lie in 1..10000");
  const vision::FashionMnist train = vision::LoadFashionMnist(o.dir, false);
  const vision::FashionMnist test = vision::LoadFashionMnist(o.dir, true);
  ATTEND_CHECK(train.images.rows == kSide && train.images.cols == kSide &&
                   test.images.rows == kSide && test.images.cols == kSide,
               "sab pixels: the images in ", o.dir, " are not 28 x 28");
  ATTEND_CHECK(train.images.count >= 60000 && test.images.count >= o.test_size,
               "sab pixels: ", o.dir, " holds ", train.images.count, " training and ",
               test.images.count, " test images; expected 60,000 and at least ", o.test_size);
  SabPixelData d;
  d.side = o.image_size;
  d.train = TakeImages(train, 0, o.train_size, d.side);
  d.dev = TakeImages(train, train.images.count - o.dev_size, o.dev_size, d.side);
  d.test = TakeImages(test, 0, o.test_size, d.side);
  return d;
}

// ---- batches ----------------------------------------------------------------------------------
namespace {

void CheckRows(int64_t size, const std::vector<int64_t>& rows, const char* what) {
  ATTEND_CHECK(!rows.empty(), "sab: an empty batch of ", what);
  for (int64_t r : rows)
    ATTEND_CHECK(r >= 0 && r < size, "sab: row ", r, " outside the ", what, " split of ", size);
}

}  // namespace

SabBatch MakeSabCopyBatch(const SabCopyData& data, const SabCopySet& set,
                          const std::vector<int64_t>& rows, DType dtype) {
  CheckRows(set.size(), rows, "copy");
  const auto b = static_cast<int64_t>(rows.size());
  const int64_t t = SabCopySteps(data.gap), delim = kSabCopySymbols + data.gap;
  std::vector<float> x(static_cast<size_t>(b * t * kSabCopyInputs), 0.0f);
  std::vector<int64_t> y(static_cast<size_t>(b * t), -1);
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<uint8_t>& s = set.symbols[static_cast<size_t>(rows[i])];
    for (int64_t step = 0; step < t; ++step) {
      int64_t channel = kSabBlank;
      if (step < kSabCopySymbols) channel = s[static_cast<size_t>(step)];
      if (step == delim) channel = kSabDelimiter;
      x[static_cast<size_t>((i * t + step) * kSabCopyInputs + channel)] = 1.0f;
      if (step > delim)
        y[static_cast<size_t>(i * t + step)] = s[static_cast<size_t>(step - delim - 1)];
    }
  }
  SabBatch out;
  out.input = Tensor::FromVector(x, {b, t, kSabCopyInputs}).To(dtype);
  out.target = Tensor::FromVector(y, {b * t});
  out.classes = kSabAlphabet;
  return out;
}

SabBatch MakeSabPixelBatch(const SabPixelData& data, const SabPixelSet& set,
                           const std::vector<int64_t>& rows, DType dtype) {
  CheckRows(set.size(), rows, "pixel");
  const auto b = static_cast<int64_t>(rows.size());
  const int64_t t = data.side * data.side;
  std::vector<float> x(static_cast<size_t>(b * t));
  std::vector<int64_t> y(static_cast<size_t>(b * t), -1);
  for (int64_t i = 0; i < b; ++i) {
    std::copy_n(set.pixels.begin() + rows[i] * t, t, x.begin() + i * t);
    y[static_cast<size_t>(i * t + t - 1)] = set.labels[static_cast<size_t>(rows[i])];
  }
  SabBatch out;
  out.input = Tensor::FromVector(x, {b, t, 1}).To(dtype);
  out.target = Tensor::FromVector(y, {b * t});
  out.classes = 10;
  return out;
}

// ---- the models -------------------------------------------------------------------------------

Tensor TruncatedLstm(nn::LSTM& lstm, const Tensor& x, int64_t ktrunc) {
  ATTEND_CHECK(ktrunc >= 1, "TruncatedLstm: ktrunc must be at least 1, got ", ktrunc);
  ATTEND_CHECK(x.defined() && x.dim() == 3, "TruncatedLstm: input must be [B, T, in], got ",
               x.str());
  const int64_t t_len = x.size(1);
  std::vector<Tensor> outs;
  Tensor h, c;
  for (int64_t start = 0; start < t_len; start += ktrunc) {
    const int64_t len = std::min(ktrunc, t_len - start);
    nn::LSTM::Output o = lstm.Forward(x.Narrow(1, start, len).Contiguous(), Tensor(), h, c);
    outs.push_back(o.output);
    // The next chunk starts from this state's values with no path back through it.
    h = o.h_n.Detach();
    c = o.c_n.Detach();
  }
  return outs.size() == 1 ? outs[0] : Concat(outs, 1);
}

SabModel::SabModel(const SabConfig& config, int64_t inputs, int64_t classes, Generator& gen,
                   DType dtype)
    : config_(config) {
  ATTEND_CHECK(
      config.model == "sab" || config.model == "lstm-full" || config.model == "lstm-truncated",
      "sab: model '", config.model, "' is not sab, lstm-full or lstm-truncated");
  ATTEND_CHECK(config.hidden >= 1, "sab: the hidden size (", config.hidden, ") must be positive");
  ATTEND_CHECK(config.ktop >= 1 && config.katt >= 1 && config.ktrunc >= 1,
               "sab: ktop, katt and ktrunc must be at least 1, got ", config.ktop, ", ",
               config.katt, ", ", config.ktrunc);
  if (config.model == "sab") {
    sab_ = RegisterModule(
        "sab", std::make_shared<attention::SparseAttentiveBacktracking>(
                   inputs, config.hidden, config.ktop, config.katt, config.ktrunc, gen, dtype));
  } else {
    nn::RnnOptions ro;
    ro.dtype = dtype;
    lstm_ = RegisterModule("lstm", std::make_shared<nn::LSTM>(inputs, config.hidden, gen, ro));
  }
  readout_ = RegisterModule("readout",
                            std::make_shared<nn::Linear>(config.hidden, classes, true, gen, dtype));
}

Tensor SabModel::Forward(const Tensor& input, std::vector<Tensor>* weights,
                         std::vector<int64_t>* steps) const {
  // The baselines attend nowhere: what the caller passed is emptied, not left as it was.
  if (weights) weights->clear();
  if (steps) steps->clear();
  Tensor h;
  if (sab_) {
    attention::SparseAttentiveBacktracking::Output o = sab_->Forward(input);
    h = o.output;
    if (weights) *weights = o.weights;
    if (steps) *steps = o.steps;
  } else if (config_.model == "lstm-truncated") {
    h = TruncatedLstm(*lstm_, input, config_.ktrunc);
  } else {
    h = lstm_->Forward(input).output;
  }
  return readout_->Forward(h);
}

// ---- the task ---------------------------------------------------------------------------------

SabTask::SabTask(const SabConfig& config, const SabCopyOptions& copy, const SabPixelOptions& pixels)
    : config_(config), copy_options_(copy), pixel_options_(pixels) {
  ATTEND_CHECK(config.task == "copy" || config.task == "pixels", "sab: task '", config.task,
               "' is not copy or pixels");
  int64_t inputs = 1, classes = 10;
  if (config.task == "copy") {
    copy_ = BuildSabCopyData(copy);
    inputs = kSabCopyInputs;
    classes = kSabAlphabet;
  } else {
    pixels_ = LoadSabPixelData(pixels);
  }
  Generator gen(config.init_seed);
  model_ = std::make_shared<SabModel>(config, inputs, classes, gen);
}

int64_t SabTask::NumTrain() const { return SplitSize("train"); }

int64_t SabTask::SplitSize(const std::string& split) const {
  ATTEND_CHECK(split == "train" || split == "dev" || split == "test", "sab: no split '", split,
               "'");
  if (config_.task == "copy")
    return split == "train" ? copy_.train.size()
                            : (split == "dev" ? copy_.dev.size() : copy_.test.size());
  return split == "train" ? pixels_.train.size()
                          : (split == "dev" ? pixels_.dev.size() : pixels_.test.size());
}

SabBatch SabTask::Batch(const std::string& split, const std::vector<int64_t>& rows) const {
  SplitSize(split);  // checks the name
  if (config_.task == "copy") {
    const SabCopySet& s =
        split == "train" ? copy_.train : (split == "dev" ? copy_.dev : copy_.test);
    return MakeSabCopyBatch(copy_, s, rows);
  }
  const SabPixelSet& s =
      split == "train" ? pixels_.train : (split == "dev" ? pixels_.dev : pixels_.test);
  return MakeSabPixelBatch(pixels_, s, rows);
}

Tensor SabTask::Loss(const std::vector<int64_t>& rows) {
  const SabBatch b = Batch("train", rows);
  const Tensor logits = model_->Forward(b.input);
  return CrossEntropy(logits.Reshape({-1, b.classes}), b.target, -1);
}

double SabTask::UnitsOf(const std::vector<int64_t>& rows) const {
  const int64_t steps =
      config_.task == "copy" ? SabCopySteps(copy_.gap) : pixels_.side * pixels_.side;
  return static_cast<double>(rows.size()) * static_cast<double>(steps);
}

train::TaskEval SabTask::Evaluate() {
  const SabScore s = EvaluateSab(*this, "dev");
  train::TaskEval e;
  e.score = s.accuracy;
  e.loss = s.loss;
  char text[96];
  std::snprintf(text, sizeof text, "acc %.2f | ce %.4f", s.accuracy, s.loss);
  e.text = text;
  return e;
}

std::string SabTask::ConfigJson() const {
  std::ostringstream os;
  os << R"({"task": ")" << config_.task << R"(", "model": ")" << config_.model << R"(", "hidden": )"
     << config_.hidden << R"(, "ktop": )" << config_.ktop << R"(, "katt": )" << config_.katt
     << R"(, "ktrunc": )" << config_.ktrunc << R"(, "init_seed": )" << config_.init_seed;
  if (config_.task == "copy")
    os << R"(, "gap": )" << copy_options_.gap << R"(, "train_size": )" << copy_options_.train_size
       << R"(, "dev_size": )" << copy_options_.dev_size << R"(, "data_seed": )"
       << copy_options_.seed;
  else
    os << R"(, "image_size": )" << pixel_options_.image_size << R"(, "train_size": )"
       << pixel_options_.train_size << R"(, "dev_size": )" << pixel_options_.dev_size;
  os << "}";
  return os.str();
}

std::string SabTask::Describe() const {
  std::ostringstream os;
  if (config_.model == "sab")
    os << "SAB (ktop " << config_.ktop << ", katt " << config_.katt << ", ktrunc " << config_.ktrunc
       << ")";
  else if (config_.model == "lstm-truncated")
    os << "LSTM, truncated BPTT (ktrunc " << config_.ktrunc << ")";
  else os << "LSTM, full BPTT";
  os << ", hidden " << config_.hidden << ", ";
  if (config_.task == "copy")
    os << "copy task (gap " << copy_.gap << ", " << SabCopySteps(copy_.gap) << " steps)";
  else os << "pixel-by-pixel Fashion-MNIST (" << pixels_.side * pixels_.side << " steps)";
  return os.str();
}

SabScore EvaluateSab(SabTask& task, const std::string& split, int64_t batch_size) {
  ATTEND_CHECK(batch_size >= 1, "EvaluateSab: batch size ", batch_size, " must be positive");
  NoGradGuard no_grad;
  const int64_t n = task.SplitSize(split);
  double correct = 0.0, scored = 0.0, loss_sum = 0.0;
  for (int64_t first = 0; first < n; first += batch_size) {
    std::vector<int64_t> rows;
    for (int64_t r = first; r < std::min(n, first + batch_size); ++r) rows.push_back(r);
    const SabBatch b = task.Batch(split, rows);
    const Tensor logits = task.model().Forward(b.input).Reshape({-1, b.classes});
    const std::vector<int64_t> target = b.target.ToVector<int64_t>();
    const std::vector<int64_t> guess = Argmax(logits, 1).ToVector<int64_t>();
    double count = 0.0;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] < 0) continue;
      count += 1.0;
      if (guess[i] == target[i]) correct += 1.0;
    }
    loss_sum += CrossEntropy(logits, b.target, -1).To(DType::kF64).item() * count;
    scored += count;
  }
  SabScore s;
  s.accuracy = 100.0 * correct / scored;
  s.loss = loss_sum / scored;
  return s;
}

SabStepCost MeasureSabStep(SabTask& task, const std::vector<int64_t>& rows, int repeats) {
  ATTEND_CHECK(repeats >= 1, "MeasureSabStep: repeats ", repeats, " must be positive");
  nn::Module& model = task.Model();
  model.Train();
  std::vector<double> ms;
  uint64_t peak = 0;
  for (int r = 0; r <= repeats; ++r) {
    model.ZeroGrad();
    const uint64_t before = GetAllocatorStats().bytes_in_use;
    ResetPeakBytes();
    const auto t0 = std::chrono::steady_clock::now();
    Tensor loss = task.Loss(rows);
    loss.Backward();
    const auto t1 = std::chrono::steady_clock::now();
    if (r == 0) continue;  // the warm-up fills the allocator's cache
    ms.push_back(1000.0 * std::chrono::duration<double>(t1 - t0).count());
    peak = std::max(peak, GetAllocatorStats().peak_bytes_in_use - before);
  }
  model.ZeroGrad();
  // The median: on a machine shared with other work a few steps are slowed down by it.
  std::sort(ms.begin(), ms.end());
  SabStepCost c;
  c.ms_per_step = ms[ms.size() / 2];
  c.peak_mib = static_cast<double>(peak) / (1024.0 * 1024.0);
  return c;
}

std::string DrawSabAttention(SabTask& task, int64_t row, const std::string& out_dir) {
  if (task.config().model != "sab") return "";
  NoGradGuard no_grad;
  const SabBatch b = task.Batch("test", {row});
  std::vector<Tensor> weights;
  std::vector<int64_t> steps;
  task.model().Forward(b.input, &weights, &steps);
  ATTEND_CHECK(!weights.empty(), "sab: the test sequence has no attending step (katt ",
               task.config().katt, " is not shorter than the sequence)");
  const int64_t katt = task.config().katt;
  const auto memories = weights.back().size(2);
  const auto rows = static_cast<int64_t>(weights.size());
  std::vector<float> grid(static_cast<size_t>(rows * memories), 0.0f);
  std::vector<std::string> cols, labels;
  for (int64_t m = 0; m < memories; ++m) cols.push_back("m" + std::to_string(m * katt));
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> w = weights[static_cast<size_t>(r)].To(DType::kF32).ToVector<float>();
    std::copy(w.begin(), w.end(), grid.begin() + r * memories);
    labels.push_back("t" + std::to_string(steps[static_cast<size_t>(r)]));
  }
  std::filesystem::create_directories(out_dir);
  const std::string path = (std::filesystem::path(out_dir) / "sab-attention.png").string();
  viz::HeatmapOptions ho;
  ho.cell_size = memories > 40 ? 8 : 16;
  ho.font_size = 10;
  viz::WriteAttentionHeatmap(path, cols, labels, grid, ho);
  return path;
}

}  // namespace attend::tasks
