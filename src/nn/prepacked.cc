// Decoding-time layers on weights packed once: PrepackedLinear (attend/nn.h) and
// PrepackedRecurrentStep (attend/nn/rnn.h).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "attend/autograd.h"
#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/reference/quant_kernels.h"
#include "backend/cpu/simd/elementwise_kernels.h"  // TargetName
#include "backend/cpu/simd/gemm_kernels.h"
#include "backend/cpu/simd/quant_kernels.h"
#include "backend/cpu/simd/rnn_kernels.h"

namespace attend::nn {
namespace {

// Beyond this many rows the weight is used as it is, through Matmul. The packed kernel led
// OpenBLAS as this environment runs it (Haswell sgemm) by 2x or more up to 256 rows of the
// 8000 x 256 output layer, one thread (bench/bench_gemm, packed/ vs sgemm_bt/ rows).
constexpr int64_t kMaxPackedRows = 256;

}  // namespace

// A bf16 or int8 weight in the layout of backend/cpu/reference/quant_kernels.h.
struct LowPrecisionWeight {
  std::vector<int8_t> q;        // int8: packed rows
  std::vector<float> scale;     // int8: per output row
  std::vector<int32_t> colsum;  // int8: sum of each row's int8 values
  std::vector<uint16_t> bf16;   // bf16: packed rows
};

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kF32: return "f32";
    case Precision::kBF16: return "bf16";
    case Precision::kInt8: return "int8";
  }
  return "?";
}

const char* PrecisionKernelName(Precision p) {
  switch (p) {
    case Precision::kF32: {
      const std::string target = cpu::simd::TargetName();  // Highway's names
      if (target == "AVX3" || target == "AVX3_DL" || target == "AVX3_ZEN4") return "AVX-512";
      if (target == "EMU128" || target == "SCALAR") return "scalar";
      return cpu::simd::TargetName();
    }
    case Precision::kBF16: return cpu::simd::Bf16KernelName();
    case Precision::kInt8: return cpu::simd::Int8KernelName();
  }
  return "?";
}

Precision ParsePrecision(const std::string& name) {
  for (Precision p : {Precision::kF32, Precision::kBF16, Precision::kInt8})
    if (name == PrecisionName(p)) return p;
  throw Error("unknown precision '" + name + "' (f32, bf16 or int8)");
}

namespace {

// Copies packed row `from` of `src` (panels of cpu::kQuantPanel rows, `groups` groups of `width`
// values per row) to row `to` of `dst`.
template <typename T>
void CopyPackedRow(const T* src, int64_t from, T* dst, int64_t to, int64_t groups, int64_t width) {
  const int64_t P = cpu::kQuantPanel, stride = P * width;  // from one group to the next
  const T* s = src + ((from / P) * groups * P + from % P) * width;
  T* d = dst + ((to / P) * groups * P + to % P) * width;
  for (int64_t g = 0; g < groups; ++g, s += stride, d += stride)
    std::memcpy(d, s, sizeof(T) * width);
}

}  // namespace

PrepackedLinear::PrepackedLinear(const Tensor& weight, const Tensor& bias, Precision precision)
    : precision_(precision) {
  ATTEND_CHECK(weight.defined() && weight.dim() == 2 && weight.dtype() == DType::kF32,
               "PrepackedLinear: weight must be f32 [out, in], got ",
               weight.defined() ? weight.str() : "undefined");
  out_ = weight.size(0);
  in_ = weight.size(1);
  ATTEND_CHECK(
      !bias.defined() || (bias.dim() == 1 && bias.size(0) == out_ && bias.dtype() == DType::kF32),
      "PrepackedLinear: bias ", bias.defined() ? bias.str() : "", " must be f32 [", out_, "]");
  NoGradGuard no_grad;
  // Copies, so that every row count sees the weights as they were when packed.
  if (bias.defined()) bias_ = bias.Detach().Clone();
  const Tensor w = weight.Contiguous();
  const float* wp = w.data<float>();
  if (precision == Precision::kF32) {
    weight_ = weight.Detach().Clone();
    packed_ = Tensor::Empty({cpu::PackedSize(out_, in_)}, DType::kF32);
    cpu::PackWeight(weight_.data<float>(), out_, in_, in_, packed_.data<float>());
    return;
  }
  auto low = std::make_shared<LowPrecisionWeight>();
  if (precision == Precision::kBF16) {
    low->bf16.resize(static_cast<size_t>(cpu::Bf16PackedSize(out_, in_)));
    cpu::PackBf16(wp, out_, in_, in_, low->bf16.data());
  } else {
    std::vector<int8_t> rows(static_cast<size_t>(out_ * in_));
    low->scale.resize(static_cast<size_t>(out_));
    low->colsum.resize(static_cast<size_t>(out_));
    cpu::QuantizeWeightInt8(wp, out_, in_, in_, rows.data(), low->scale.data(), low->colsum.data());
    low->q.resize(static_cast<size_t>(cpu::Int8PackedSize(out_, in_)));
    cpu::PackInt8(rows.data(), out_, in_, low->q.data());
  }
  low_ = std::move(low);
}

int64_t PrepackedLinear::weight_bytes() const {
  if (!low_) return packed_.defined() ? packed_.numel() * 4 : 0;
  return static_cast<int64_t>(low_->q.size() + low_->scale.size() * 4 + low_->colsum.size() * 4 +
                              low_->bf16.size() * 2);
}

PrepackedLinear PrepackedLinear::Rows(const std::vector<int64_t>& rows) const {
  ATTEND_CHECK(defined(), "PrepackedLinear: Rows of an empty layer");
  for (int64_t r : rows)
    ATTEND_CHECK(r >= 0 && r < out_, "PrepackedLinear::Rows: row ", r, " is outside [0, ", out_,
                 ")");
  const int64_t n = static_cast<int64_t>(rows.size());
  PrepackedLinear cut;
  cut.precision_ = precision_;
  cut.in_ = in_;
  cut.out_ = n;
  NoGradGuard no_grad;
  if (bias_.defined()) {
    cut.bias_ = Tensor::Empty({n}, DType::kF32);
    for (int64_t i = 0; i < n; ++i) cut.bias_.data<float>()[i] = bias_.data<float>()[rows[i]];
  }
  if (precision_ == Precision::kF32) {
    cut.weight_ = Tensor::Empty({n, in_}, DType::kF32);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(weight_.data<float>() + rows[i] * in_, in_, cut.weight_.data<float>() + i * in_);
    cut.packed_ = Tensor::Empty({cpu::PackedSize(n, in_)}, DType::kF32);
    cpu::PackWeight(cut.weight_.data<float>(), n, in_, in_, cut.packed_.data<float>());
    return cut;
  }
  auto low = std::make_shared<LowPrecisionWeight>();
  if (precision_ == Precision::kBF16) {
    low->bf16.assign(static_cast<size_t>(cpu::Bf16PackedSize(n, in_)), 0);
    for (int64_t i = 0; i < n; ++i)
      CopyPackedRow(low_->bf16.data(), rows[i], low->bf16.data(), i, cpu::Bf16Groups(in_), 2);
  } else {
    low->q.assign(static_cast<size_t>(cpu::Int8PackedSize(n, in_)), 0);
    low->scale.resize(static_cast<size_t>(n));
    low->colsum.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      CopyPackedRow(low_->q.data(), rows[i], low->q.data(), i, cpu::Int8Groups(in_), 4);
      low->scale[i] = low_->scale[rows[i]];
      low->colsum[i] = low_->colsum[rows[i]];
    }
  }
  cut.low_ = std::move(low);
  return cut;
}

Tensor PrepackedLinear::Forward(const Tensor& x) const {
  ATTEND_CHECK(defined(), "PrepackedLinear: Forward on an empty layer");
  ATTEND_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_ && x.dtype() == DType::kF32,
               "PrepackedLinear: input ", x.defined() ? x.str() : "undefined",
               " must be f32 [..., ", in_, "]");
  ATTEND_CHECK(!(GradMode::enabled() && x.requires_grad()), "PrepackedLinear: input ", x.str(),
               " requires a gradient; the packed layer is for "
               "inference only (use Linear, or a NoGradGuard)");
  const int64_t rows = x.numel() / in_;
  Shape shape = x.shape();
  shape[shape.size() - 1] = out_;
  const float* bias = bias_.defined() ? bias_.data<float>() : nullptr;
  if (precision_ == Precision::kF32 && rows > kMaxPackedRows) {
    Tensor y = Matmul(x, weight_.T());
    return bias_.defined() ? Add(y, bias_) : y;
  }
  const Tensor xc = x.Contiguous();
  Tensor y = Tensor::Empty(shape, DType::kF32);
  if (precision_ == Precision::kInt8) {
    cpu::simd::Int8Gemm(xc.data<float>(), rows, in_, in_, low_->q.data(), low_->scale.data(),
                        low_->colsum.data(), out_, bias, y.data<float>(), out_);
  } else if (precision_ == Precision::kBF16) {
    cpu::simd::Bf16Gemm(xc.data<float>(), rows, in_, in_, low_->bf16.data(), out_, bias,
                        y.data<float>(), out_);
  } else {
    cpu::simd::PackedGemm(xc.data<float>(), rows, in_, in_, packed_.data<float>(), out_, bias,
                          y.data<float>(), out_);
  }
  return y;
}

}  // namespace attend::nn

namespace attend::nn {

PrepackedRecurrentStep::PrepackedRecurrentStep(const RnnBase& rnn, Precision precision) {
  ATTEND_CHECK(rnn.num_directions() == 1,
               "PrepackedRecurrentStep: the recurrent module must be "
               "unidirectional (a decoder), it has ",
               rnn.num_directions(), " directions");
  hidden_ = rnn.hidden_size();
  const int64_t layers = rnn.options().num_layers;
  lstm_ = rnn.weight_ih(0, 0).size(0) == 4 * hidden_;
  for (int64_t l = 0; l < layers; ++l) {
    ih_.emplace_back(rnn.weight_ih(l, 0), rnn.bias_ih(l, 0), precision);
    hh_.emplace_back(rnn.weight_hh(l, 0), rnn.bias_hh(l, 0), precision);
  }
}

Tensor PrepackedRecurrentStep::Step(const Tensor& x, Tensor* h, Tensor* c) const {
  ATTEND_CHECK(defined(), "PrepackedRecurrentStep: Step on an empty module");
  const int64_t layers = static_cast<int64_t>(ih_.size()), hd = hidden_;
  ATTEND_CHECK(x.defined() && x.dim() == 2 && h && h->defined() && h->dim() == 3 &&
                   h->size(0) == layers && h->size(1) == x.size(0) && h->size(2) == hd &&
                   (!lstm_ || (c && c->defined() && c->shape() == h->shape())),
               "PrepackedRecurrentStep: x ", x.defined() ? x.str() : "undefined",
               " must be [N, in] "
               "and the states [",
               layers, ", N, ", hd, "]", lstm_ ? " (h and c)" : "");
  const int64_t n = x.size(0), g = lstm_ ? 4 : 3;
  Tensor h_new = Tensor::Empty(h->shape(), DType::kF32);
  Tensor c_new = lstm_ ? Tensor::Empty(c->shape(), DType::kF32) : Tensor();
  const Tensor h_old = h->Contiguous(), c_old = lstm_ ? c->Contiguous() : Tensor();
  // Gate scratch, reused across steps (the kernels overwrite it).
  static thread_local std::vector<float> act, extra;
  act.resize(g * hd);
  extra.resize(hd);
  Tensor input = x;
  for (int64_t l = 0; l < layers; ++l) {
    const Tensor xp = ih_[l].Forward(input), hp = hh_[l].Forward(h_old.Select(0, l));  // [N, G*H]
    const float* xpp = xp.data<float>();
    const float* hpp = hp.data<float>();
    const float* hprev = h_old.data<float>() + l * n * hd;
    float* hout = h_new.data<float>() + l * n * hd;
    for (int64_t r = 0; r < n; ++r) {
      if (lstm_) {
        cpu::simd::LstmForwardRow(
            xpp + r * g * hd, hpp + r * g * hd, nullptr, c_old.data<float>() + (l * n + r) * hd,
            act.data(), c_new.data<float>() + (l * n + r) * hd, extra.data(), hout + r * hd, hd);
      } else {
        cpu::simd::GruForwardRow(xpp + r * g * hd, hpp + r * g * hd, nullptr, nullptr,
                                 hprev + r * hd, act.data(), extra.data(), hout + r * hd, hd);
      }
    }
    input = h_new.Select(0, l);
  }
  *h = h_new;
  if (lstm_) *c = c_new;
  return input;
}

PrepackedRecurrent::PrepackedRecurrent(const RnnBase& rnn, Precision precision) {
  ATTEND_CHECK(rnn.options().batch_first,
               "PrepackedRecurrent: the module must be batch-first (x [B, T, in])");
  hidden_ = rnn.hidden_size();
  directions_ = rnn.num_directions();
  lstm_ = rnn.weight_ih(0, 0).size(0) == 4 * hidden_;
  for (int64_t l = 0; l < rnn.options().num_layers; ++l)
    for (int d = 0; d < directions_; ++d) {
      ih_.emplace_back(rnn.weight_ih(l, d), rnn.bias_ih(l, d), precision);
      hh_.emplace_back(rnn.weight_hh(l, d), rnn.bias_hh(l, d), precision);
    }
}

Tensor PrepackedRecurrent::Forward(const Tensor& x, const Tensor& lengths, Tensor* h_n,
                                   Tensor* c_n) const {
  ATTEND_CHECK(defined(), "PrepackedRecurrent: Forward on an empty module");
  ATTEND_CHECK(
      x.defined() && x.dim() == 3 && x.size(2) == ih_[0].in_features() && x.dtype() == DType::kF32,
      "PrepackedRecurrent: x ", x.defined() ? x.str() : "undefined", " must be f32 [B, T, ",
      ih_[0].in_features(), "]");
  const int64_t b = x.size(0), t_max = x.size(1), hd = hidden_, g = lstm_ ? 4 : 3;
  const int nd = directions_;
  const int64_t layers = static_cast<int64_t>(ih_.size()) / nd;
  std::vector<int64_t> len(static_cast<size_t>(b), t_max);
  if (lengths.defined()) {
    ATTEND_CHECK(lengths.dtype() == DType::kI64 && lengths.dim() == 1 && lengths.size(0) == b,
                 "PrepackedRecurrent: lengths must be i64 [", b, "], got ", lengths.str());
    len = lengths.ToVector<int64_t>();
    for (int64_t i = 0; i < b; ++i)
      ATTEND_CHECK(len[i] >= 1 && len[i] <= t_max, "PrepackedRecurrent: lengths[", i,
                   "] = ", len[i], " is outside [1, ", t_max, "]");
  }
  NoGradGuard no_grad;
  Tensor hn = Tensor::Empty({layers * nd, b, hd}, DType::kF32);
  Tensor cn = lstm_ ? Tensor::Empty({layers * nd, b, hd}, DType::kF32) : Tensor();
  std::vector<float> act(static_cast<size_t>(g * hd)), extra(static_cast<size_t>(hd)),
      c_next(static_cast<size_t>(hd));
  Tensor input = x;
  for (int64_t l = 0; l < layers; ++l) {
    Tensor y = Tensor::Zeros({b, t_max, nd * hd}, DType::kF32);  // padded steps stay zero
    float* yp = y.data<float>();
    for (int d = 0; d < nd; ++d) {
      const size_t slot = static_cast<size_t>(l * nd + d);
      const Tensor xp = ih_[slot].Forward(input);  // [B, T, G*H]: every step at once
      const float* xpp = xp.data<float>();
      // Running states; a sequence's rows move only while it is active at step t, so the
      // reverse direction starts from zero at each sequence's own last step.
      Tensor h = Tensor::Zeros({b, hd}, DType::kF32);
      std::vector<float> c(lstm_ ? static_cast<size_t>(b * hd) : 0, 0.0f);
      for (int64_t step = 0; step < t_max; ++step) {
        const int64_t t = d == 0 ? step : t_max - 1 - step;
        const Tensor hp = hh_[slot].Forward(h);  // [B, G*H]
        const float* hpp = hp.data<float>();
        float* hs = h.data<float>();
        for (int64_t i = 0; i < b; ++i) {
          if (t >= len[static_cast<size_t>(i)]) continue;
          float* out = yp + (i * t_max + t) * nd * hd + d * hd;
          const float* xrow = xpp + (i * t_max + t) * g * hd;
          if (lstm_) {
            float* ci = c.data() + i * hd;
            cpu::simd::LstmForwardRow(xrow, hpp + i * g * hd, nullptr, ci, act.data(),
                                      c_next.data(), extra.data(), out, hd);
            std::copy(c_next.begin(), c_next.end(), ci);
          } else {
            cpu::simd::GruForwardRow(xrow, hpp + i * g * hd, nullptr, nullptr, hs + i * hd,
                                     act.data(), extra.data(), out, hd);
          }
          std::copy_n(out, hd, hs + i * hd);
        }
      }
      std::copy_n(h.data<float>(), b * hd, hn.data<float>() + slot * b * hd);
      if (lstm_) std::copy(c.begin(), c.end(), cn.data<float>() + slot * b * hd);
    }
    input = y;
  }
  if (h_n) *h_n = hn;
  if (c_n && lstm_) *c_n = cn;
  return input;
}

}  // namespace attend::nn
