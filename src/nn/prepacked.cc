// Decoding-time layers on weights packed once: PrepackedLinear (attend/nn.h) and
// PrepackedRecurrentStep (attend/nn/rnn.h).
#include <vector>

#include "attend/autograd.h"
#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/simd/gemm_kernels.h"
#include "backend/cpu/simd/rnn_kernels.h"

namespace attend::nn {
namespace {

// Beyond this many rows the weight is used as it is, through Matmul. The packed kernel led
// OpenBLAS as this environment runs it (Haswell sgemm) by 2x or more up to 256 rows of the
// 8000 x 256 output layer, one thread (bench/bench_gemm, packed/ vs sgemm_bt/ rows).
constexpr int64_t kMaxPackedRows = 256;

}  // namespace

PrepackedLinear::PrepackedLinear(const Tensor& weight, const Tensor& bias) {
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
  weight_ = weight.Detach().Clone();
  if (bias.defined()) bias_ = bias.Detach().Clone();
  packed_ = Tensor::Empty({cpu::PackedSize(out_, in_)}, DType::kF32);
  cpu::PackWeight(weight_.data<float>(), out_, in_, in_, packed_.data<float>());
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
  if (rows > kMaxPackedRows) {
    Tensor y = Matmul(x, weight_.T());
    return bias_.defined() ? Add(y, bias_) : y;
  }
  const Tensor xc = x.Contiguous();
  Tensor y = Tensor::Empty(shape, DType::kF32);
  cpu::simd::PackedGemm(xc.data<float>(), rows, in_, in_, packed_.data<float>(), out_,
                        bias_.defined() ? bias_.data<float>() : nullptr, y.data<float>(), out_);
  return y;
}

}  // namespace attend::nn

namespace attend::nn {

PrepackedRecurrentStep::PrepackedRecurrentStep(const RnnBase& rnn) {
  ATTEND_CHECK(rnn.num_directions() == 1,
               "PrepackedRecurrentStep: the recurrent module must be "
               "unidirectional (a decoder), it has ",
               rnn.num_directions(), " directions");
  hidden_ = rnn.hidden_size();
  const int64_t layers = rnn.options().num_layers;
  lstm_ = rnn.weight_ih(0, 0).size(0) == 4 * hidden_;
  for (int64_t l = 0; l < layers; ++l) {
    ih_.emplace_back(rnn.weight_ih(l, 0), rnn.bias_ih(l, 0));
    hh_.emplace_back(rnn.weight_hh(l, 0), rnn.bias_hh(l, 0));
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

}  // namespace attend::nn
