// FusedAdditiveScores: the fused additive (Bahdanau) score op, its checks, threading decision and
// backward rule. The kernels are in backend/cpu/{simd,reference}/additive_kernels.*.
#include "attend/additive_attention.h"

#include "backend/cpu/reference/additive_kernels.h"
#include "backend/cpu/simd/additive_kernels.h"
#include "ops/op_helpers.h"

namespace attend::attention {

namespace {

constexpr const char* kOp = "FusedAdditiveScores";

struct Sizes {
  int64_t nb, nq, nk, na;
  // One tanh per (query, key, a); below 2^18 of them a parallel region costs more than it saves
  // (the threshold and its measurement: docs/results.md).
  int Threads() const {
    const int64_t work = nb * nq * nk * na;
    return work >= (int64_t{1} << 18) ? GetNumThreads() : 1;
  }
};

// Runs the forward kernel on contiguous q [B, Tq, A], k [B, Tk, A], v [A].
Tensor Forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sizes& z) {
  Tensor s = Tensor::Empty(Shape{z.nb, z.nq, z.nk}, q.dtype());  // [B, Tq, Tk]
  if (q.dtype() == DType::kF32) {
    cpu::simd::AdditiveScoresForward(q.data<float>(), k.data<float>(), v.data<float>(),
                                     s.data<float>(), z.nb, z.nq, z.nk, z.na, z.Threads());
  } else {
    const double *pq = q.data<double>(), *pk = k.data<double>();
    for (int64_t b = 0; b < z.nb; ++b)
      cpu::ref::AdditiveScoresForward(pq + b * z.nq * z.na, pk + b * z.nk * z.na, v.data<double>(),
                                      s.data<double>() + b * z.nq * z.nk, z.nq, z.nk, z.na);
  }
  return s;
}

// Gradients of q, k and v given g [B, Tq, Tk]. Keys that every step of a decoder reads (its
// projected memory) have a running sum of their gradient in the engine after the first step:
// the kernel adds into it, where each step wrote a fresh [B, Tk, A] that the engine then added
// (one pass over [B, Tk, A] per step instead of four: a fill, the kernel, a read and a write of
// the sum; docs/results.md issue 20 nineteenth pass), and the keys' gradient comes back undefined
// (already in the sum).
std::vector<Tensor> Backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                             const Sizes& z) {
  Tensor dq = Tensor::Empty(q.shape(), q.dtype());  // [B, Tq, A]
  Tensor dv = Tensor::Empty(v.shape(), q.dtype());  // [A]
  Tensor* dk_sum = PendingGradient(1, k.shape(), k.dtype());
  Tensor dk = dk_sum ? Tensor() : Tensor::Empty(k.shape(), q.dtype());  // [B, Tk, A]
  Tensor& dk_into = dk_sum ? *dk_sum : dk;
  if (q.dtype() == DType::kF32) {
    cpu::simd::AdditiveScoresBackward(q.data<float>(), k.data<float>(), v.data<float>(),
                                      g.data<float>(), dq.data<float>(), dk_into.data<float>(),
                                      dv.data<float>(), z.nb, z.nq, z.nk, z.na, z.Threads(),
                                      dk_sum != nullptr);
  } else {
    if (!dk_sum) dk.Fill(0);
    dv.Fill(0);
    for (int64_t b = 0; b < z.nb; ++b)
      cpu::ref::AdditiveScoresBackward(
          q.data<double>() + b * z.nq * z.na, k.data<double>() + b * z.nk * z.na, v.data<double>(),
          g.data<double>() + b * z.nq * z.nk, dq.data<double>() + b * z.nq * z.na,
          dk_into.data<double>() + b * z.nk * z.na, dv.data<double>(), z.nq, z.nk, z.na);
  }
  return {dq, dk, dv};
}

}  // namespace

Tensor FusedAdditiveScores(const Tensor& query_proj, const Tensor& key_proj, const Tensor& v) {
  CheckFloating(query_proj, kOp);
  CheckFloating(key_proj, kOp);
  CheckFloating(v, kOp);
  CheckSameDType(query_proj, key_proj, kOp);
  CheckSameDType(query_proj, v, kOp);
  ATTEND_CHECK(query_proj.dim() == 3 && key_proj.dim() == 3 && v.dim() == 1 &&
                   query_proj.size(0) == key_proj.size(0) &&
                   query_proj.size(2) == key_proj.size(2) && v.size(0) == query_proj.size(2),
               kOp,
               ": expected query_proj [B, Tq, A], key_proj [B, Tk, A] and v [A] with the same "
               "B and A, got ",
               query_proj.str(), ", ", key_proj.str(), " and ", v.str());
  const Sizes z{query_proj.size(0), query_proj.size(1), key_proj.size(1), v.size(0)};
  Tensor q = query_proj.Detach().Contiguous();
  Tensor k = key_proj.Detach().Contiguous();
  Tensor w = v.Detach().Contiguous();
  Tensor out = Forward(q, k, w, z);
  // Saved: the three (small) inputs only; backward recomputes tanh.
  RecordOp(kOp, out, {&query_proj, &key_proj, &v},
           [q, k, w, z](const Tensor& g) { return Backward(q, k, w, g.Contiguous(), z); });
  return out;
}

}  // namespace attend::attention
