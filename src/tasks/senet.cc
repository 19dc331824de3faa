// SENet on Fashion-MNIST (attend/tasks/senet.h): the fixed split, the CNN with and without
// squeeze-and-excitation, the task the trainer runs, the evaluation and the excitation picture.
#include "attend/tasks/senet.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "attend/error.h"
#include "attend/files.h"
#include "attend/ops.h"
#include "attend/ops/conv.h"
#include "attend/vision.h"
#include "attend/viz.h"

namespace attend::tasks {

namespace {

constexpr int64_t kPixels = kSenetSide * kSenetSide;
// The pixel mean and standard deviation (of pixel / 255) over the 60,000 training images of
// Debian's dataset-fashion-mnist, computed once; constants, so that every subset and the test
// set are scaled the same way and a checkpoint needs no statistics of its own.
constexpr float kPixelMean = 0.28604060f;
constexpr float kPixelStd = 0.35302424f;

SenetSplit Take(const vision::FashionMnist& set, const std::string& source, int64_t first,
                int64_t count) {
  SenetSplit s;
  s.source = source;
  s.pixels.assign(set.images.pixels.begin() + first * kPixels,
                  set.images.pixels.begin() + (first + count) * kPixels);
  s.labels.reserve(static_cast<size_t>(count));
  s.source_index.reserve(static_cast<size_t>(count));
  for (int64_t i = first; i < first + count; ++i) {
    s.labels.push_back(set.labels[static_cast<size_t>(i)]);
    s.source_index.push_back(i);
  }
  return s;
}

void CheckRows(const SenetSplit& split, const std::vector<int64_t>& rows) {
  for (int64_t r : rows)
    ATTEND_CHECK(r >= 0 && r < split.size(), "senet: row ", r, " outside the ", split.source,
                 " split of ", split.size(), " images");
}

std::string JoinInts(const std::vector<int64_t>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + std::to_string(v[i]);
  return out;
}

}  // namespace

// ---- data ----

SenetData LoadSenetData(const std::string& dir, int64_t train_size) {
  ATTEND_CHECK(train_size >= 0 && train_size <= kSenetTrainImages, "senet: --train-size ",
               train_size, " must lie in 0..", kSenetTrainImages,
               " (0 = all of the first 55,000 training images; the last 5,000 are the dev set)");
  const vision::FashionMnist train = vision::LoadFashionMnist(dir, false);
  const vision::FashionMnist test = vision::LoadFashionMnist(dir, true);
  ATTEND_CHECK(train.images.rows == kSenetSide && train.images.cols == kSenetSide &&
                   test.images.rows == kSenetSide && test.images.cols == kSenetSide,
               "senet: the images in ", dir, " are not 28 x 28");
  ATTEND_CHECK(train.images.count > kSenetTrainImages, "senet: ", dir, " holds ",
               train.images.count, " training images; the split needs more than ",
               kSenetTrainImages);
  SenetData d;
  d.train = Take(train, "train", 0, train_size == 0 ? kSenetTrainImages : train_size);
  d.dev = Take(train, "train", kSenetTrainImages, train.images.count - kSenetTrainImages);
  d.test = Take(test, "test", 0, test.images.count);
  return d;
}

Tensor SenetImages(const SenetSplit& split, const std::vector<int64_t>& rows) {
  CheckRows(split, rows);
  const int64_t n = static_cast<int64_t>(rows.size());
  Tensor x = Tensor::Empty({n, 1, kSenetSide, kSenetSide});
  float* out = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = split.pixels.data() + rows[static_cast<size_t>(i)] * kPixels;
    for (int64_t j = 0; j < kPixels; ++j)
      out[i * kPixels + j] = (static_cast<float>(p[j]) / 255.0f - kPixelMean) / kPixelStd;
  }
  return x;
}

Tensor SenetLabels(const SenetSplit& split, const std::vector<int64_t>& rows) {
  CheckRows(split, rows);
  std::vector<int64_t> y;
  y.reserve(rows.size());
  for (int64_t r : rows) y.push_back(split.labels[static_cast<size_t>(r)]);
  return Tensor::FromVector(y, {static_cast<int64_t>(y.size())});
}

// ---- model ----

std::string SenetConfig::Json() const {
  return std::string("{\"channels\": [") + JoinInts(channels, ", ") +
         "], \"reduction\": " + std::to_string(reduction) +
         ", \"channel_attention\": " + (channel_attention ? "\"se\"" : "\"none\"") + "}";
}

std::string SenetConfig::Describe() const {
  std::string s = "CNN " + JoinInts(channels, "-");
  s += channel_attention
           ? " with squeeze-and-excitation (reduction " + std::to_string(reduction) + ")"
           : " without channel attention";
  return s + ", " + std::to_string(kSenetClasses) + " classes";
}

SenetModel::SenetModel(const SenetConfig& config, Generator& gen, DType dtype) : config_(config) {
  ATTEND_CHECK(!config.channels.empty() && config.channels.size() <= 5,
               "senet: --channels needs 1 to 5 widths, got ", config.channels.size());
  for (int64_t c : config.channels)
    ATTEND_CHECK(c >= 1 && c <= 1024, "senet: a channel width must lie in 1..1024, got ", c);
  ATTEND_CHECK(config.reduction >= 1, "senet: --reduction must be at least 1, got ",
               config.reduction);
  if (config.channel_attention)
    for (int64_t c : config.channels)
      ATTEND_CHECK(c / config.reduction >= 1, "senet: --reduction ", config.reduction,
                   " leaves no hidden unit in the SE block of a ", c,
                   "-channel stage (C / r must be at least 1)");
  nn::Conv2dOptions same;
  same.padding = 1;
  int64_t in = 1;
  for (size_t k = 0; k < config.channels.size(); ++k) {
    const std::string n = std::to_string(k + 1);
    const int64_t c = config.channels[k];
    convs.push_back(
        RegisterModule("conv" + n, std::make_shared<nn::Conv2dModule>(in, c, 3, gen, same, dtype)));
    // He initialisation (N(0, 2 / fan_in), zero bias) instead of torch's default scale, which
    // is a third of it: with no normalisation layer a ReLU stack under the default shrinks the
    // signal at every stage, and the network sat near chance for its first hundreds of steps.
    nn::init::KaimingNormal(convs.back()->weight, gen);
    nn::init::Constant(convs.back()->bias, 0.0);
    if (config.channel_attention)
      se.push_back(RegisterModule("se" + n, std::make_shared<attention::SqueezeExcitation>(
                                                c, config.reduction, gen, dtype)));
    in = c;
  }
  classifier = RegisterModule("classifier",
                              std::make_shared<nn::Linear>(in, kSenetClasses, true, gen, dtype));
}

SenetModel::Output SenetModel::Forward(const Tensor& x) const {
  const int64_t min_side = int64_t{1} << (convs.size() - 1);
  ATTEND_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 1 && x.size(2) >= min_side &&
                   x.size(3) >= min_side,
               "senet: input must be [B, 1, H, W] with H, W >= ", min_side, ", got ", x.str());
  Output out;
  Tensor h = x;
  for (size_t k = 0; k < convs.size(); ++k) {
    h = Relu(convs[k]->Forward(h));  // [B, C_k, H_k, W_k]
    if (!se.empty()) {
      auto [scaled, gates] = se[k]->ForwardWithWeights(h);
      h = scaled;
      out.gates.push_back(gates);
    }
    if (k + 1 < convs.size()) h = MaxPool2d(h, 2);
  }
  out.logits = classifier->Forward(GlobalAvgPool(h));
  return out;
}

// ---- evaluation ----

SenetEvaluation EvaluateSenet(SenetModel& model, const SenetSplit& split, int64_t batch_size) {
  ATTEND_CHECK(batch_size > 0, "senet: the evaluation batch size must be positive");
  ATTEND_CHECK(split.size() > 0, "senet: the ", split.source, " split is empty");
  const bool was_training = model.training();
  model.Eval();
  NoGradGuard no_grad;
  SenetEvaluation e;
  e.class_counts.assign(kSenetClasses, 0);
  for (const auto& conv : model.convs)
    if (!model.se.empty())
      e.gate_means.emplace_back(static_cast<size_t>(kSenetClasses * conv->weight.size(0)), 0.0);
  double loss_sum = 0.0;
  for (int64_t first = 0; first < split.size(); first += batch_size) {
    std::vector<int64_t> rows;
    for (int64_t i = first; i < std::min(split.size(), first + batch_size); ++i) rows.push_back(i);
    const SenetModel::Output out = model.Forward(SenetImages(split, rows));
    const Tensor labels = SenetLabels(split, rows);
    loss_sum += CrossEntropy(out.logits, labels).item() * static_cast<double>(rows.size());
    const std::vector<int64_t> pred = Argmax(out.logits, -1).ToVector<int64_t>();
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t y = split.labels[static_cast<size_t>(rows[i])];
      e.correct += pred[i] == y;
      ++e.class_counts[static_cast<size_t>(y)];
    }
    for (size_t k = 0; k < out.gates.size(); ++k) {
      const std::vector<float> g = out.gates[k].To(DType::kF32).ToVector<float>();
      const int64_t c = out.gates[k].size(1);
      for (size_t i = 0; i < rows.size(); ++i) {
        const int64_t y = split.labels[static_cast<size_t>(rows[i])];
        for (int64_t j = 0; j < c; ++j)
          e.gate_means[k][static_cast<size_t>(y * c + j)] +=
              g[i * static_cast<size_t>(c) + static_cast<size_t>(j)];
      }
    }
  }
  for (auto& means : e.gate_means) {
    const int64_t c = static_cast<int64_t>(means.size()) / kSenetClasses;
    for (int64_t y = 0; y < kSenetClasses; ++y)
      for (int64_t j = 0; j < c; ++j)
        if (e.class_counts[static_cast<size_t>(y)] > 0)
          means[static_cast<size_t>(y * c + j)] /=
              static_cast<double>(e.class_counts[static_cast<size_t>(y)]);
  }
  e.images = split.size();
  e.accuracy = 100.0 * static_cast<double>(e.correct) / static_cast<double>(e.images);
  e.loss = loss_sum / static_cast<double>(e.images);
  model.Train(was_training);
  return e;
}

void WriteSenetPictures(const std::string& out_dir, const SenetEvaluation& evaluation) {
  ATTEND_CHECK(!evaluation.gate_means.empty(),
               "senet: no excitation to draw (the model has no SE blocks)");
  const std::vector<std::string>& names = vision::FashionMnistNames();
  std::vector<std::string> rows(names.begin(), names.begin() + kSenetClasses);
  std::vector<std::string> tsv = {"block\tclass\tchannel\tmean_excitation"};
  // One heatmap per block, drawn to a temporary file and read back, then stacked into one PNG:
  // the blocks differ in width, so a single grid would pad the narrow ones with fake cells.
  std::vector<vision::Image> panels;
  for (size_t k = 0; k < evaluation.gate_means.size(); ++k) {
    const std::vector<double>& m = evaluation.gate_means[k];
    const int64_t c = static_cast<int64_t>(m.size()) / kSenetClasses;
    std::vector<std::string> columns;
    for (int64_t j = 0; j < c; ++j)
      columns.push_back("se" + std::to_string(k + 1) + " c" + std::to_string(j));
    std::vector<float> w(m.begin(), m.end());
    for (int64_t y = 0; y < kSenetClasses; ++y)
      for (int64_t j = 0; j < c; ++j) {
        char value[32];
        std::snprintf(value, sizeof value, "%.6f", m[static_cast<size_t>(y * c + j)]);
        tsv.push_back(std::to_string(k + 1) + "\t" + rows[static_cast<size_t>(y)] + "\t" +
                      std::to_string(j) + "\t" + value);
      }
    viz::HeatmapOptions o;
    o.cell_size = 14;
    o.font_size = 11;
    o.color = true;
    const std::string tmp =
        (std::filesystem::path(out_dir) / (".se-weights-" + std::to_string(k + 1) + ".png"))
            .string();
    viz::WriteAttentionHeatmap(tmp, columns, rows, w, o);
    vision::Image panel = vision::ReadImage(tmp);
    std::filesystem::remove(tmp);
    panels.push_back(vision::ToChannels(panel, 3));
  }
  vision::Image all;
  all.channels = 3;
  for (const auto& p : panels) {
    all.width = std::max(all.width, p.width);
    all.height += p.height;
  }
  all.pixels.assign(static_cast<size_t>(all.width * all.height * 3), 255);
  int64_t top = 0;
  for (const auto& p : panels) {
    for (int64_t y = 0; y < p.height; ++y)
      std::copy(p.pixels.begin() + y * p.width * 3, p.pixels.begin() + (y + 1) * p.width * 3,
                all.pixels.begin() + (top + y) * all.width * 3);
    top += p.height;
  }
  vision::WritePng((std::filesystem::path(out_dir) / "se-weights.png").string(), all);
  io::WriteLinesAtomic((std::filesystem::path(out_dir) / "se-weights.tsv").string(), tsv);
}

// ---- task ----

SenetTask::SenetTask(const SenetData& data, const SenetConfig& config, uint64_t seed)
    : data_(data) {
  ATTEND_CHECK(data.dev.size() > 0, "senet: the dev split is empty");
  Generator gen(seed);
  model_ = std::make_shared<SenetModel>(config, gen);
}

Tensor SenetTask::Loss(const std::vector<int64_t>& rows) {
  return CrossEntropy(model_->Forward(SenetImages(data_.train, rows)).logits,
                      SenetLabels(data_.train, rows));
}

train::TaskEval SenetTask::Evaluate() {
  const SenetEvaluation e = EvaluateSenet(*model_, data_.dev);
  train::TaskEval t;
  t.score = e.accuracy;
  t.loss = e.loss;
  char text[64];
  std::snprintf(text, sizeof text, "acc %.2f", e.accuracy);
  t.text = text;
  return t;
}

std::string SenetTask::ConfigJson() const {
  std::string json = model_->config().Json();
  json.pop_back();
  return json + ", \"train_images\": " + std::to_string(data_.train.size()) + "}";
}

std::string SenetTask::Describe() const { return "SENet: " + model_->config().Describe(); }

}  // namespace attend::tasks
