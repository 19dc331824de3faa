// FusedScaledDotProductAttention: the op around the fused kernels (checks, dtype dispatch,
// dropout counters, autograd). Saves q, k, v, the output and the log-sum-exp per query row;
// backward recomputes the weights block by block.
#include <atomic>
#include <cmath>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attention/fused_internal.h"
#include "autograd/node.h"
#include "backend/cpu/reference/attention_kernels.h"
#include "backend/cpu/simd/attention_kernels.h"

namespace attend::attention {

namespace internal {
namespace {
std::atomic<uint64_t> fused_calls{0};
}  // namespace
uint64_t FusedSdpaCalls() { return fused_calls.load(); }
}  // namespace internal

namespace {

// The kernel reads rows of q, k, v in place when their last dim is contiguous.
Tensor RowContiguous(const Tensor& t) {
  Tensor d = t.Detach();
  return d.stride(-1) == 1 || d.size(-1) <= 1 ? d : d.Contiguous();
}

void SetStrides(const Tensor& t, int64_t* s) {
  for (int i = 0; i < 3; ++i) s[i] = t.stride(i);
}

// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv]; or with `rows` (i64 [B], inference only)
// k, v [B', H, Tk, D(v)] and the mask [B', Tk], query batch b reading batch rows[b] of them.
Tensor Fused4d(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
               double dropout, bool training, Generator* gen, const Tensor& rows = Tensor()) {
  cpu::SdpaArgs a{.batch = q.size(0),
                  .heads = q.size(1),
                  .tq = q.size(2),
                  .tk = k.size(2),
                  .d = q.size(3),
                  .dv = v.size(3),
                  .causal = causal,
                  .scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)))};
  Tensor qd = RowContiguous(q), kd = RowContiguous(k), vd = RowContiguous(v);
  SetStrides(qd, a.q_stride);
  SetStrides(kd, a.k_stride);
  SetStrides(vd, a.v_stride);
  Tensor md = mask.defined() ? mask.Detach().Contiguous() : Tensor();
  if (training && dropout > 0.0) {
    ATTEND_CHECK(gen != nullptr, "FusedScaledDotProductAttention: dropout ", dropout,
                 " in training needs a Generator");
    a.dropout = dropout;
    a.seed = gen->seed();
    // The counters attend::Dropout would draw for the weights [B, H, Tq, Tk].
    a.offset = gen->Reserve(static_cast<uint64_t>(a.batch * a.heads * a.tq * a.tk));
  }
  Tensor out = Tensor::Empty({a.batch, a.heads, a.tq, a.dv}, q.dtype());
  Tensor lse = Tensor::Empty({a.batch, a.heads, a.tq}, q.dtype());
  a.key_padding = md.defined() ? md.data<bool>() : nullptr;
  const Tensor rd = rows.defined() ? rows.Contiguous() : Tensor();
  a.kv_batch = rd.defined() ? rd.data<int64_t>() : nullptr;
  if (q.dtype() == DType::kF32)
    cpu::simd::SdpaForward(a, qd.data<float>(), kd.data<float>(), vd.data<float>(),
                           out.data<float>(), lse.data<float>());
  else
    cpu::ref::SdpaForward(a, qd.data<double>(), kd.data<double>(), vd.data<double>(),
                          out.data<double>(), lse.data<double>());
  internal::fused_calls.fetch_add(1);
  if (rd.defined()) return out;  // inference only: no graph (checked by the caller)
  a.key_padding = nullptr;       // re-pointed at the saved mask in backward
  Tensor saved_out = out.Detach();
  RecordOp("FusedScaledDotProductAttention", out, {&q, &k, &v},
           [a, qd, kd, vd, md, saved_out, lse](const Tensor& g) {
             cpu::SdpaArgs b = a;
             b.key_padding = md.defined() ? md.data<bool>() : nullptr;
             Tensor gc = g.Contiguous();
             Tensor dq = Tensor::Empty(qd.shape(), qd.dtype());
             Tensor dk = Tensor::Empty(kd.shape(), kd.dtype());
             Tensor dv = Tensor::Empty(vd.shape(), vd.dtype());
             if (qd.dtype() == DType::kF32)
               cpu::simd::SdpaBackward(b, qd.data<float>(), kd.data<float>(), vd.data<float>(),
                                       saved_out.data<float>(), gc.data<float>(), lse.data<float>(),
                                       dq.data<float>(), dk.data<float>(), dv.data<float>());
             else
               cpu::ref::SdpaBackward(b, qd.data<double>(), kd.data<double>(), vd.data<double>(),
                                      saved_out.data<double>(), gc.data<double>(),
                                      lse.data<double>(), dq.data<double>(), dk.data<double>(),
                                      dv.data<double>());
             return std::vector<Tensor>{dq, dk, dv};
           });
  return out;
}

}  // namespace

Tensor FusedScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor& key_padding_mask, bool causal, double dropout,
                                      bool training, Generator* gen) {
  const char* op = "FusedScaledDotProductAttention";
  ATTEND_CHECK(q.defined() && k.defined() && v.defined(), op, ": q, k and v must be defined");
  ATTEND_CHECK((q.dim() == 3 || q.dim() == 4) && k.dim() == q.dim() && v.dim() == q.dim(), op,
               ": q, k, v must all be [B, H, T, D] or all [B, T, D], got ", q.str(), ", ", k.str(),
               ", ", v.str());
  ATTEND_CHECK(IsFloating(q.dtype()) && k.dtype() == q.dtype() && v.dtype() == q.dtype(), op,
               ": q, k, v must share one floating dtype (f32 or f64), got ", q.str(), ", ", k.str(),
               ", ", v.str());
  const int n = q.dim();
  ATTEND_CHECK(q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2) && q.size(0) == k.size(0) &&
                   k.size(0) == v.size(0) &&
                   (n == 3 || (q.size(1) == k.size(1) && k.size(1) == v.size(1))),
               op, ": q ", q.str(), " k ", k.str(), " v ", v.str(),
               " do not fit (expected [B, H, Tq, D], [B, H, Tk, D], [B, H, Tk, Dv])");
  ATTEND_CHECK(q.size(-1) > 0, op, ": the head dim of q ", q.str(), " must be positive");
  const int64_t b = q.size(0), tk = k.size(-2);
  if (key_padding_mask.defined())
    ATTEND_CHECK(key_padding_mask.dtype() == DType::kBool && key_padding_mask.dim() == 2 &&
                     key_padding_mask.size(0) == b && key_padding_mask.size(1) == tk,
                 op, ": key_padding_mask ", key_padding_mask.str(), " must be bool [", b, ", ", tk,
                 "] for keys ", k.str());
  ATTEND_CHECK(dropout >= 0.0 && dropout <= 1.0, op, ": dropout must be in [0, 1], got ", dropout);
  if (n == 4) return Fused4d(q, k, v, key_padding_mask, causal, dropout, training, gen);
  return Fused4d(q.Unsqueeze(1), k.Unsqueeze(1), v.Unsqueeze(1), key_padding_mask, causal, dropout,
                 training, gen)
      .Squeeze(1);
}

Tensor GatheredScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& key_padding_mask, const Tensor& rows) {
  const char* op = "GatheredScaledDotProductAttention";
  ATTEND_CHECK(q.defined() && k.defined() && v.defined(), op, ": q, k and v must be defined");
  ATTEND_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op,
               ": q, k, v must be [N, H, Tq, D], [B, H, Tk, D], [B, H, Tk, Dv], got ", q.str(),
               ", ", k.str(), ", ", v.str());
  ATTEND_CHECK(IsFloating(q.dtype()) && k.dtype() == q.dtype() && v.dtype() == q.dtype(), op,
               ": q, k, v must share one floating dtype (f32 or f64), got ", q.str(), ", ", k.str(),
               ", ", v.str());
  ATTEND_CHECK(q.size(-1) > 0 && q.size(-1) == k.size(-1) && k.size(2) == v.size(2) &&
                   k.size(0) == v.size(0) && q.size(1) == k.size(1) && k.size(1) == v.size(1),
               op, ": q ", q.str(), " k ", k.str(), " v ", v.str(),
               " do not fit (expected [N, H, Tq, D], [B, H, Tk, D], [B, H, Tk, Dv])");
  const int64_t n = q.size(0), b = k.size(0), tk = k.size(2);
  ATTEND_CHECK(
      rows.defined() && rows.dtype() == DType::kI64 && rows.dim() == 1 && rows.size(0) == n, op,
      ": rows must be i64 [", n, "] (one per query batch), got ",
      rows.defined() ? rows.str() : std::string("undefined"));
  const std::vector<int64_t> r = rows.ToVector<int64_t>();
  for (size_t i = 0; i < r.size(); ++i)
    ATTEND_CHECK(r[i] >= 0 && r[i] < b, op, ": rows[", i, "] = ", r[i], " is outside [0, ", b,
                 ") (the batches of k and v)");
  if (key_padding_mask.defined())
    ATTEND_CHECK(key_padding_mask.dtype() == DType::kBool && key_padding_mask.dim() == 2 &&
                     key_padding_mask.size(0) == b && key_padding_mask.size(1) == tk,
                 op, ": key_padding_mask ", key_padding_mask.str(), " must be bool [", b, ", ", tk,
                 "] for keys ", k.str());
  ATTEND_CHECK(
      !GradMode::enabled() || !(q.requires_grad() || k.requires_grad() || v.requires_grad()), op,
      ": inference only (no gradient flows through it); run it under NoGradGuard");
  return Fused4d(q, k, v, key_padding_mask, false, 0.0, false, nullptr, rows);
}

}  // namespace attend::attention
