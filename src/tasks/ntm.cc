// The Neural Turing Machine on the copy task (attend/tasks/ntm.h): data, addressing, the NTM and
// its LSTM baseline, the trainer's task, evaluation and pictures.
#include "attend/tasks/ntm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/vision.h"

namespace attend::tasks {

// ---- the copy task ----------------------------------------------------------------------------
namespace {

// Sequences come from mt19937_64, whose output the C++ standard fixes bit for bit: the same
// seed gives the same data with any compiler and library. (Its distributions are not fixed, so
// lengths and bits are cut from the raw words here.)
std::vector<uint8_t> DrawBits(std::mt19937_64& eng, int64_t length) {
  std::vector<uint8_t> bits(static_cast<size_t>(length * kCopyBits));
  uint64_t word = 0;
  for (size_t i = 0; i < bits.size(); ++i) {
    if (i % 64 == 0) word = eng();
    bits[i] = static_cast<uint8_t>((word >> (i % 64)) & 1u);
  }
  return bits;
}

std::string KeyOf(const std::vector<uint8_t>& bits) {
  return std::string(bits.begin(), bits.end());
}

}  // namespace

CopyData BuildCopyData(const CopyDataOptions& o) {
  ATTEND_CHECK(o.train_size > 0 && o.dev_size > 0 && o.test_per_length > 0,
               "copy data: train size ", o.train_size, ", dev size ", o.dev_size,
               " and test sequences per length ", o.test_per_length, " must be positive");
  ATTEND_CHECK(o.max_train_length > 0, "copy data: the longest training sequence (",
               o.max_train_length, ") must be positive");
  ATTEND_CHECK(!o.test_lengths.empty(), "copy data: no test lengths");
  for (int64_t l : o.test_lengths)
    ATTEND_CHECK(l > 0, "copy data: test length ", l, " must be positive");
  CopyData d;
  d.test_lengths = o.test_lengths;
  std::set<std::string> held_out;  // dev and test sequences: never drawn for training
  // One stream per split, so that a larger training set leaves dev and test as they were.
  std::mt19937_64 dev_eng(o.seed * 4 + 1), test_eng(o.seed * 4 + 2), train_eng(o.seed * 4 + 3);
  const auto max_len = static_cast<uint64_t>(o.max_train_length);
  for (int64_t i = 0; i < o.dev_size; ++i) {
    const auto len = static_cast<int64_t>(1 + dev_eng() % max_len);
    d.dev.lengths.push_back(len);
    d.dev.bits.push_back(DrawBits(dev_eng, len));
    held_out.insert(KeyOf(d.dev.bits.back()));
  }
  for (int64_t len : o.test_lengths) {
    CopySet set;
    int64_t attempts = 0;
    while (set.size() < o.test_per_length) {
      ATTEND_CHECK(++attempts <= 100 * o.test_per_length + 1000, "copy data: too few distinct ",
                   "sequences of length ", len, " for ", o.test_per_length,
                   " test sequences apart from the dev set");
      std::vector<uint8_t> bits = DrawBits(test_eng, len);
      if (!held_out.insert(KeyOf(bits)).second) continue;
      set.lengths.push_back(len);
      set.bits.push_back(std::move(bits));
    }
    d.test.push_back(std::move(set));
  }
  int64_t attempts = 0;
  while (d.train.size() < o.train_size) {
    ATTEND_CHECK(++attempts <= 100 * o.train_size + 1000, "copy data: too few distinct sequences ",
                 "of lengths 1..", o.max_train_length, " for ", o.train_size,
                 " training sequences apart from the dev and test sets");
    const auto len = static_cast<int64_t>(1 + train_eng() % max_len);
    std::vector<uint8_t> bits = DrawBits(train_eng, len);
    if (held_out.count(KeyOf(bits))) continue;
    d.train.lengths.push_back(len);
    d.train.bits.push_back(std::move(bits));
  }
  return d;
}

CopyBatch MakeCopyBatch(const CopySet& set, const std::vector<int64_t>& rows, DType dtype) {
  ATTEND_CHECK(!rows.empty(), "MakeCopyBatch: no rows");
  int64_t max_len = 0;
  for (int64_t r : rows) {
    ATTEND_CHECK(r >= 0 && r < set.size(), "MakeCopyBatch: row ", r, " outside the set of ",
                 set.size(), " sequences");
    max_len = std::max(max_len, set.lengths[r]);
  }
  const auto b = static_cast<int64_t>(rows.size());
  const int64_t t = 2 * max_len + 1;
  std::vector<float> in(static_cast<size_t>(b * t * kCopyInputs), 0.0f);
  std::vector<float> tgt(static_cast<size_t>(b * t * kCopyBits), 0.0f);
  std::vector<float> mask(static_cast<size_t>(b * t), 0.0f);
  CopyBatch batch;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t len = set.lengths[rows[i]];
    const std::vector<uint8_t>& bits = set.bits[rows[i]];
    batch.lengths.push_back(len);
    for (int64_t s = 0; s < len; ++s)
      for (int64_t k = 0; k < kCopyBits; ++k) {
        const float v = bits[s * kCopyBits + k];
        in[(i * t + s) * kCopyInputs + k] = v;
        tgt[(i * t + len + 1 + s) * kCopyBits + k] = v;
        mask[i * t + len + 1 + s] = 1.0f;
      }
    in[(i * t + len) * kCopyInputs + kCopyBits] = 1.0f;  // the delimiter
  }
  batch.input = Tensor::FromVector(in, {b, t, kCopyInputs}).To(dtype);
  batch.target = Tensor::FromVector(tgt, {b, t, kCopyBits}).To(dtype);
  batch.mask = Tensor::FromVector(mask, {b, t, 1}).To(dtype);
  return batch;
}

Tensor CopyLoss(const Tensor& logits, const CopyBatch& batch) {
  ATTEND_CHECK(logits.dim() == 3 && logits.size(0) == batch.target.size(0) &&
                   logits.size(1) == batch.target.size(1) && logits.size(2) == kCopyBits,
               "CopyLoss: logits ", logits.str(), " do not fit targets ", batch.target.str());
  // log(1 + exp(x)) - x y, written so that exp never overflows.
  Tensor bce = Relu(logits) - logits * batch.target + Log(AddScalar(Exp(-Abs(logits)), 1.0));
  Tensor count = Sum(batch.mask) * static_cast<double>(kCopyBits);
  return Sum(bce * batch.mask) / count;
}

std::vector<int64_t> WrongBits(const Tensor& logits, const CopyBatch& batch) {
  const std::vector<float> l = logits.To(DType::kF32).ToVector<float>();
  const std::vector<float> y = batch.target.To(DType::kF32).ToVector<float>();
  const int64_t t = logits.size(1);
  std::vector<int64_t> wrong(batch.lengths.size(), 0);
  for (size_t b = 0; b < batch.lengths.size(); ++b) {
    const int64_t len = batch.lengths[b];
    for (int64_t s = len + 1; s <= 2 * len; ++s)
      for (int64_t k = 0; k < kCopyBits; ++k) {
        const size_t at = (b * t + s) * kCopyBits + k;
        wrong[b] += (l[at] > 0.0f) != (y[at] > 0.5f);
      }
  }
  return wrong;
}

// ---- NTM addressing ---------------------------------------------------------------------------

Tensor Softplus(const Tensor& x) { return Relu(x) + Log(AddScalar(Exp(-Abs(x)), 1.0)); }

Tensor CircularShift(const Tensor& w, const Tensor& shift) {
  ATTEND_CHECK(w.dim() == 2 && w.size(1) >= 2, "CircularShift: weights ", w.str(),
               " must be [B, N] with N >= 2");
  ATTEND_CHECK(shift.dim() == 2 && shift.size(0) == w.size(0) && shift.size(1) == 3,
               "CircularShift: shift ", shift.str(), " must be [B, 3] for weights ", w.str());
  const int64_t n = w.size(1);
  // (w~)_i = s(+1) w_{i-1} + s(0) w_i + s(-1) w_{i+1}, indices mod N: two rotations of w.
  Tensor from_below = Concat({w.Narrow(1, n - 1, 1), w.Narrow(1, 0, n - 1)}, 1);  // w_{i-1}
  Tensor from_above = Concat({w.Narrow(1, 1, n - 1), w.Narrow(1, 0, 1)}, 1);      // w_{i+1}
  return from_above * shift.Narrow(1, 0, 1) + w * shift.Narrow(1, 1, 1) +
         from_below * shift.Narrow(1, 2, 1);
}

Tensor Sharpen(const Tensor& w, const Tensor& gamma) {
  ATTEND_CHECK(w.dim() == 2 && gamma.dim() == 1 && gamma.size(0) == w.size(0), "Sharpen: weights ",
               w.str(), " must be [B, N] and gamma ", gamma.str(), " [B]");
  // w^gamma / sum w^gamma is softmax(gamma log w): the softmax keeps it in range for large gamma.
  return Softmax(gamma.Unsqueeze(1) * Log(AddScalar(w, kSharpenEps)), -1);
}

Tensor UnitRows(const Tensor& x) {
  return Mul(x, Rsqrt(AddScalar(Sum(Mul(x, x), {-1}, true), kCosineEps)));
}

Tensor Address(const Tensor& memory, const HeadAddress& h, const Tensor& prev,
               const Tensor& unit_memory) {
  ATTEND_CHECK(memory.dim() == 3 && prev.dim() == 2 && prev.size(0) == memory.size(0) &&
                   prev.size(1) == memory.size(1),
               "Address: memory ", memory.str(), " must be [B, N, M] and the previous weights ",
               prev.str(), " [B, N]");
  // Content: the cosine of the key with every location (norms as sqrt(|x|^2 + eps), as
  // attention::CosineScore takes them), scaled by the strength beta. Both heads address the same
  // memory in a step, so the model normalises its rows once and passes them in.
  Tensor unit = unit_memory.defined() ? unit_memory : UnitRows(memory);
  Tensor cosine = Matmul(UnitRows(h.key).Unsqueeze(1), unit.Transpose(1, 2));          // [B, 1, N]
  Tensor content = Softmax(cosine * h.beta.Unsqueeze(1).Unsqueeze(2), -1).Squeeze(1);  // [B, N]
  Tensor g = h.gate.Unsqueeze(1);
  Tensor gated = content * g + prev * (1.0 - g);
  return Sharpen(CircularShift(gated, h.shift), h.gamma);
}

// ---- the models -------------------------------------------------------------------------------

NtmModel::NtmModel(int64_t memory_size, int64_t memory_width, int64_t hidden, Generator& gen,
                   DType dtype)
    : n_(memory_size), m_(memory_width), hidden_(hidden) {
  ATTEND_CHECK(memory_size >= 2 && memory_width >= 1 && hidden >= 1, "NTM: memory ", memory_size,
               " x ", memory_width, " and controller size ", hidden,
               " must be positive (at least 2 locations)");
  controller_ = RegisterModule(
      "controller", std::make_shared<nn::LSTMCell>(kCopyInputs + m_, hidden_, gen, true, dtype));
  heads_ =
      RegisterModule("heads", std::make_shared<nn::Linear>(hidden_, 4 * m_ + 12, true, gen, dtype));
  output_ = RegisterModule("output",
                           std::make_shared<nn::Linear>(hidden_ + m_, kCopyBits, true, gen, dtype));
}

void NtmModel::SplitHeads(const Tensor& raw, HeadAddress* read, HeadAddress* write, Tensor* erase,
                          Tensor* add) const {
  auto address = [&](int64_t at, HeadAddress* h) {
    h->key = raw.Narrow(1, at, m_);
    h->beta = Softplus(raw.Narrow(1, at + m_, 1)).Squeeze(1);
    h->gate = Sigmoid(raw.Narrow(1, at + m_ + 1, 1)).Squeeze(1);
    h->shift = Softmax(raw.Narrow(1, at + m_ + 2, 3), -1);
    h->gamma = AddScalar(Softplus(raw.Narrow(1, at + m_ + 5, 1)).Squeeze(1), 1.0);
  };
  address(0, read);
  const int64_t w = m_ + 6;
  address(w, write);
  *erase = Sigmoid(raw.Narrow(1, w + m_ + 6, m_));
  *add = Tanh(raw.Narrow(1, w + 2 * m_ + 6, m_));
}

Tensor NtmModel::Forward(const Tensor& input, NtmTrace* trace) {
  ATTEND_CHECK(input.dim() == 3 && input.size(2) == kCopyInputs, "NTM: input ", input.str(),
               " must be [B, T, ", kCopyInputs, "]");
  const int64_t b = input.size(0), steps = input.size(1);
  const DType dt = controller_->weight_ih.dtype();
  Tensor x_all = input.To(dt);
  // A memory of equal small values: every location alike, so that content addressing starts
  // uniform and the heads must learn to move by location.
  Tensor memory = Tensor::Full({b, n_, m_}, 1e-6, dt);
  std::vector<float> first(static_cast<size_t>(b * n_), 0.0f);
  for (int64_t i = 0; i < b; ++i) first[i * n_] = 1.0f;
  Tensor w_read = Tensor::FromVector(first, {b, n_}).To(dt), w_write = w_read;
  Tensor r = Matmul(w_read.Unsqueeze(1), memory).Squeeze(1);  // [B, M]
  Tensor h, c;
  std::vector<Tensor> outputs;
  outputs.reserve(static_cast<size_t>(steps));
  HeadAddress rh, wh;
  Tensor erase, add;
  for (int64_t t = 0; t < steps; ++t) {
    auto [h2, c2] = controller_->Forward(Concat({x_all.Select(1, t), r}, 1), h, c);
    h = h2;
    c = c2;
    SplitHeads(heads_->Forward(h), &rh, &wh, &erase, &add);
    // Both heads address the memory the previous step left; the read comes before the write.
    Tensor unit = UnitRows(memory);
    w_read = Address(memory, rh, w_read, unit);
    r = Matmul(w_read.Unsqueeze(1), memory).Squeeze(1);
    w_write = Address(memory, wh, w_write, unit);
    Tensor ww = w_write.Unsqueeze(2);  // [B, N, 1]
    memory = memory * (1.0 - ww * erase.Unsqueeze(1)) + ww * add.Unsqueeze(1);
    outputs.push_back(output_->Forward(Concat({h, r}, 1)));
    if (trace) {
      trace->read_weights.push_back(w_read.Detach());
      trace->write_weights.push_back(w_write.Detach());
    }
  }
  return Stack(outputs, 1);
}

LstmCopyModel::LstmCopyModel(int64_t hidden, Generator& gen, DType dtype) {
  ATTEND_CHECK(hidden >= 1, "LSTM baseline: hidden size ", hidden, " must be positive");
  nn::RnnOptions o;
  o.dtype = dtype;
  lstm_ = RegisterModule("lstm", std::make_shared<nn::LSTM>(kCopyInputs, hidden, gen, o));
  output_ =
      RegisterModule("output", std::make_shared<nn::Linear>(hidden, kCopyBits, true, gen, dtype));
}

Tensor LstmCopyModel::Forward(const Tensor& input, NtmTrace*) {
  ATTEND_CHECK(input.dim() == 3 && input.size(2) == kCopyInputs, "LSTM baseline: input ",
               input.str(), " must be [B, T, ", kCopyInputs, "]");
  return output_->Forward(lstm_->Forward(input.To(output_->weight.dtype())).output);
}

int64_t MatchedLstmHidden(const NtmConfig& c) {
  const int64_t h = c.hidden, m = c.memory_width;
  const int64_t ntm =
      4 * h * (kCopyInputs + m + h + 2) + (4 * m + 12) * (h + 1) + kCopyBits * (h + m + 1);
  int64_t best = 1, best_gap = -1;
  for (int64_t k = 1; k <= 8192; ++k) {
    const int64_t lstm = 4 * k * (kCopyInputs + k + 2) + kCopyBits * (k + 1);
    const int64_t gap = std::abs(lstm - ntm);
    if (best_gap < 0 || gap < best_gap) best = k, best_gap = gap;
    if (lstm > ntm) break;
  }
  return best;
}

std::shared_ptr<CopyModel> MakeCopyModel(const NtmConfig& c, DType dtype) {
  Generator gen(c.init_seed);
  if (c.controller == "ntm")
    return std::make_shared<NtmModel>(c.memory_size, c.memory_width, c.hidden, gen, dtype);
  ATTEND_CHECK(c.controller == "lstm", "controller '", c.controller, "' is not ntm or lstm");
  return std::make_shared<LstmCopyModel>(c.lstm_hidden > 0 ? c.lstm_hidden : MatchedLstmHidden(c),
                                         gen, dtype);
}

// ---- task, evaluation, pictures ---------------------------------------------------------------

NtmCopyTask::NtmCopyTask(const NtmConfig& config, const CopyDataOptions& data)
    : config_(config), data_options_(data) {
  ATTEND_CHECK(config.controller == "ntm" || config.controller == "lstm", "controller '",
               config.controller, "' is not ntm or lstm");
  if (config.controller == "ntm") {
    // The copy task writes one location per vector: a sequence longer than the memory cannot be
    // held, so such a test would measure nothing but the overflow.
    for (int64_t l : data.test_lengths)
      ATTEND_CHECK(l <= config.memory_size, "test length ", l, " exceeds the memory size ",
                   config.memory_size, " (a sequence must fit the memory)");
    ATTEND_CHECK(data.max_train_length <= config.memory_size, "training length ",
                 data.max_train_length, " exceeds the memory size ", config.memory_size);
  }
  data_ = BuildCopyData(data);
  model_ = MakeCopyModel(config);
}

Tensor NtmCopyTask::Loss(const std::vector<int64_t>& rows) {
  CopyBatch batch = MakeCopyBatch(data_.train, rows);
  return CopyLoss(model_->Forward(batch.input), batch);
}

double NtmCopyTask::UnitsOf(const std::vector<int64_t>& rows) const {
  double bits = 0.0;
  for (int64_t r : rows) bits += static_cast<double>(data_.train.lengths[r] * kCopyBits);
  return bits;
}

train::TaskEval NtmCopyTask::Evaluate() {
  const CopyScore s = EvaluateCopy(*model_, data_.dev);
  train::TaskEval e;
  e.score = -s.bits_per_sequence;
  e.loss = s.loss;
  char text[96];
  std::snprintf(text, sizeof text, "bits/seq %.3f | bce %.4f", s.bits_per_sequence, s.loss);
  e.text = text;
  return e;
}

std::string NtmCopyTask::ConfigJson() const {
  std::ostringstream os;
  os << R"({"controller": ")" << config_.controller << R"(", "memory_size": )"
     << config_.memory_size << R"(, "memory_width": )" << config_.memory_width << R"(, "hidden": )"
     << config_.hidden << R"(, "lstm_hidden": )"
     << (config_.controller == "lstm" && config_.lstm_hidden == 0 ? MatchedLstmHidden(config_)
                                                                  : config_.lstm_hidden)
     << R"(, "init_seed": )" << config_.init_seed << R"(, "train_size": )"
     << data_options_.train_size << R"(, "dev_size": )" << data_options_.dev_size
     << R"(, "max_train_length": )" << data_options_.max_train_length << R"(, "data_seed": )"
     << data_options_.seed << "}";
  return os.str();
}

std::string NtmCopyTask::Describe() const {
  std::ostringstream os;
  if (config_.controller == "ntm")
    os << "NTM copy task (memory " << config_.memory_size << " x " << config_.memory_width
       << ", LSTM controller " << config_.hidden << ", one read and one write head)";
  else
    os << "LSTM copy task (hidden "
       << (config_.lstm_hidden > 0 ? config_.lstm_hidden : MatchedLstmHidden(config_))
       << ", no memory)";
  os << ", lengths 1.." << data_options_.max_train_length;
  return os.str();
}

CopyScore EvaluateCopy(CopyModel& model, const CopySet& set, int64_t batch_size) {
  ATTEND_CHECK(set.size() > 0 && batch_size > 0, "EvaluateCopy: empty set or batch");
  double wrong = 0.0, loss_sum = 0.0, bits = 0.0;
  for (int64_t start = 0; start < set.size(); start += batch_size) {
    std::vector<int64_t> rows;
    for (int64_t r = start; r < std::min(set.size(), start + batch_size); ++r) rows.push_back(r);
    CopyBatch batch = MakeCopyBatch(set, rows);
    Tensor logits = model.Forward(batch.input);
    double batch_bits = 0.0;
    for (int64_t len : batch.lengths) batch_bits += static_cast<double>(len * kCopyBits);
    loss_sum += CopyLoss(logits, batch).item() * batch_bits;
    bits += batch_bits;
    for (int64_t w : WrongBits(logits, batch)) wrong += static_cast<double>(w);
  }
  CopyScore s;
  s.bits_per_sequence = wrong / static_cast<double>(set.size());
  s.loss = loss_sum / bits;
  return s;
}

namespace {

// Panels of values in [0, 1] stacked top to bottom, each [rows, columns] row-major, drawn as
// `cell` x `cell` squares from white (0) to black (1), with a gap between panels and a red mark
// above each panel at column `marker` (the delimiter step).
vision::Image DrawPanels(const std::vector<std::vector<float>>& panels,
                         const std::vector<int64_t>& rows, int64_t columns, int64_t cell,
                         int64_t marker) {
  const int64_t margin = 4, mark = 3, gap = 8;
  int64_t height = margin;
  for (int64_t r : rows) height += mark + r * cell + gap;
  vision::Image img;
  img.width = 2 * margin + columns * cell;
  img.height = height - gap + margin;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(img.width * img.height * 3), 255);
  auto put = [&](int64_t x, int64_t y, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t* p = &img.pixels[static_cast<size_t>((y * img.width + x) * 3)];
    p[0] = r, p[1] = g, p[2] = b;
  };
  int64_t y0 = margin;
  for (size_t p = 0; p < panels.size(); ++p) {
    for (int64_t y = 0; y < mark - 1; ++y)
      for (int64_t x = 0; x < cell; ++x) put(margin + marker * cell + x, y0 + y, 220, 30, 30);
    y0 += mark;
    for (int64_t r = 0; r < rows[p]; ++r)
      for (int64_t col = 0; col < columns; ++col) {
        const float v = std::clamp(panels[p][r * columns + col], 0.0f, 1.0f);
        const auto shade = static_cast<uint8_t>(std::lround(255.0f * (1.0f - v)));
        for (int64_t y = 0; y < cell; ++y)
          for (int64_t x = 0; x < cell; ++x)
            put(margin + col * cell + x, y0 + r * cell + y, shade, shade, shade);
      }
    y0 += rows[p] * cell + gap;
  }
  return img;
}

// [T, C] row-major values to [C, T] (one row per channel, time to the right).
std::vector<float> Transposed(const std::vector<float>& v, int64_t t, int64_t c) {
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < c; ++j) out[j * t + i] = v[i * c + j];
  return out;
}

}  // namespace

std::vector<std::string> DrawCopyPictures(CopyModel& model, const CopySet& set, int64_t row,
                                          const std::string& out_dir) {
  ATTEND_CHECK(row >= 0 && row < set.size(), "DrawCopyPictures: row ", row, " outside the set of ",
               set.size());
  NoGradGuard no_grad;
  CopyBatch batch = MakeCopyBatch(set, {row});
  NtmTrace trace;
  Tensor logits = model.Forward(batch.input, &trace);
  const int64_t t = batch.input.size(1), len = batch.lengths[0];
  std::filesystem::create_directories(out_dir);
  std::vector<std::string> written;
  const std::string bits_path = (std::filesystem::path(out_dir) / "ntm-bits.png").string();
  vision::WritePng(bits_path,
                   DrawPanels({Transposed(batch.input.ToVector<float>(), t, kCopyInputs),
                               Transposed(Sigmoid(logits).ToVector<float>(), t, kCopyBits),
                               Transposed(batch.target.ToVector<float>(), t, kCopyBits)},
                              {kCopyInputs, kCopyBits, kCopyBits}, t, 8, len));
  written.push_back(bits_path);
  if (!trace.write_weights.empty()) {
    const int64_t n = trace.write_weights[0].size(1);
    const Tensor ww = Stack(trace.write_weights, 1).Select(0, 0).To(DType::kF32);  // [T, N]
    const Tensor wr = Stack(trace.read_weights, 1).Select(0, 0).To(DType::kF32);
    const std::string path = (std::filesystem::path(out_dir) / "ntm-weights.png").string();
    vision::WritePng(path, DrawPanels({Transposed(ww.ToVector<float>(), t, n),
                                       Transposed(wr.ToVector<float>(), t, n)},
                                      {n, n}, t, 4, len));
    written.push_back(path);
  }
  return written;
}

}  // namespace attend::tasks
