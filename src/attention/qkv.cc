// Query-key-value attention: scaled dot-product attention with padding/causal masks and dropout.
// Multi-head attention is in multihead_attention.cc.
#include <cmath>

#include "attend/attention.h"

namespace attend::attention {

Tensor CausalMask(int64_t tq, int64_t tk) {
  ATTEND_CHECK(tq >= 0 && tk >= 0, "CausalMask: sizes must be non-negative");
  Tensor m = Tensor::Empty({tq, tk}, DType::kBool);
  bool* p = m.data<bool>();
  const int64_t shift = tk - tq;  // queries line up with the last keys
  for (int64_t i = 0; i < tq; ++i)
    for (int64_t j = 0; j < tk; ++j) p[i * tk + j] = j > i + shift;
  return m;
}

namespace {
// a | b for bool masks that broadcast together.
Tensor OrMasks(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return LogicalOr(a, b);
}
}  // namespace

Attended ScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const Tensor& mask, bool causal, double dropout, bool training,
                                   Generator* gen) {
  ATTEND_CHECK(q.defined() && k.defined() && v.defined() && q.dim() >= 2 && q.dim() == k.dim() &&
                   k.dim() == v.dim(),
               "ScaledDotProductAttention: q, k, v must have the same number of dims (>= 2), got ",
               q.str(), ", ", k.str(), ", ", v.str());
  ATTEND_CHECK(q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
               "ScaledDotProductAttention: q ", q.str(), " k ", k.str(), " v ", v.str(),
               " do not fit (expected [.., Tq, D], [.., Tk, D], [.., Tk, Dv])");
  for (int d = 0; d < q.dim() - 2; ++d)
    ATTEND_CHECK(q.size(d) == k.size(d) && k.size(d) == v.size(d),
                 "ScaledDotProductAttention: batch dims of q ", q.str(), ", k ", k.str(), " and v ",
                 v.str(), " differ");
  const int64_t tq = q.size(-2), tk = k.size(-2);
  if (mask.defined()) {
    Shape sshape = q.shape();
    sshape[q.dim() - 1] = tk;
    CheckMask(mask, sshape, "ScaledDotProductAttention");
  }
  Tensor scores =
      MulScalar(Matmul(q, k.Transpose(-2, -1)), 1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  Tensor m = mask;
  if (causal) m = OrMasks(m, CausalMask(tq, tk));
  Attended out;
  out.weights = Softmax(scores, -1, m);  // fully masked rows: zeros, so the context is zero there
  Tensor w = out.weights;
  if (training && dropout > 0.0) {
    ATTEND_CHECK(gen != nullptr, "ScaledDotProductAttention: dropout needs a Generator");
    w = Dropout(w, dropout, true, *gen);
  }
  out.context = Matmul(w, v);
  return out;
}

}  // namespace attend::attention
