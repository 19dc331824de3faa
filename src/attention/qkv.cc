// Query-key-value attention: scaled dot-product attention with padding/causal masks and dropout,
// and multi-head attention with torch.nn.MultiheadAttention's parameter layout.
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

MultiHeadAttention::MultiHeadAttention(int64_t e, int64_t h, Generator& g, double p, bool bias,
                                       DType dtype)
    : embed_dim(e),
      num_heads(h),
      head_dim(h > 0 ? e / h : 0),
      dropout(p),
      // Each module draws its own dropout seed from `g`, so layers built from one generator
      // drop different positions.
      gen(Generator::Bits(g.seed(), g.Reserve(1))) {
  ATTEND_CHECK(e > 0 && h > 0 && e % h == 0, "MultiHeadAttention: embed_dim ", e,
               " must be a positive multiple of num_heads ", h);
  Tensor w = Tensor::Empty({3 * e, e}, dtype);
  nn::init::XavierUniform(w, g);
  in_proj_weight = RegisterParameter("in_proj_weight", w);
  if (bias) in_proj_bias = RegisterParameter("in_proj_bias", Tensor::Zeros({3 * e}, dtype));
  out_proj = RegisterModule("out_proj", std::make_shared<nn::Linear>(e, e, bias, g, dtype));
  if (bias) out_proj->bias.Fill(0.0);
  rng_state = RegisterBuffer("rng_state", Tensor::Zeros({2}, DType::kI64));
  RecordDropoutGenerator();
}

Generator& MultiHeadAttention::DropoutGenerator() {
  const int64_t* st = rng_state.data<int64_t>();
  if (st[0] != mirrored_[0] || st[1] != mirrored_[1])  // loaded from a checkpoint
    gen.set_state(static_cast<uint64_t>(st[0]), static_cast<uint64_t>(st[1]));
  return gen;
}

void MultiHeadAttention::RecordDropoutGenerator() {
  int64_t* st = rng_state.data<int64_t>();
  st[0] = mirrored_[0] = static_cast<int64_t>(gen.seed());
  st[1] = mirrored_[1] = static_cast<int64_t>(gen.offset());
}

Attended MultiHeadAttention::Forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                     const Tensor& key_padding_mask, const Tensor& attn_mask,
                                     bool causal, bool average_weights, bool need_weights) {
  ATTEND_CHECK(
      query.defined() && key.defined() && value.defined() && query.dim() == 3 && key.dim() == 3 &&
          value.dim() == 3 && query.size(2) == embed_dim && key.size(2) == embed_dim &&
          value.size(2) == embed_dim && key.size(1) == value.size(1) &&
          query.size(0) == key.size(0) && key.size(0) == value.size(0),
      "MultiHeadAttention: expected query [B, Tq, ", embed_dim, "], key and value [B, Tk, ",
      embed_dim, "], got ", query.str(), ", ", key.str(), ", ", value.str());
  const int64_t b = query.size(0), tq = query.size(1), tk = key.size(1);
  auto project = [&](const Tensor& x, int i, int64_t t) {
    Tensor y = Matmul(x, in_proj_weight.Narrow(0, i * embed_dim, embed_dim).T());  // [B, T, E]
    if (in_proj_bias.defined()) y = Add(y, in_proj_bias.Narrow(0, i * embed_dim, embed_dim));
    return y.View({b, t, num_heads, head_dim}).Transpose(1, 2);  // [B, H, T, hd]
  };
  Tensor q = project(query, 0, tq), k = project(key, 1, tk), v = project(value, 2, tk);
  Tensor mask;
  if (key_padding_mask.defined()) {
    ATTEND_CHECK(key_padding_mask.dtype() == DType::kBool && key_padding_mask.dim() == 2 &&
                     key_padding_mask.size(0) == b && key_padding_mask.size(1) == tk,
                 "MultiHeadAttention: key_padding_mask ", key_padding_mask.str(), " must be bool [",
                 b, ", ", tk, "]");
    mask = key_padding_mask.View({b, 1, 1, tk});
  }
  if (attn_mask.defined()) {
    ATTEND_CHECK(attn_mask.dtype() == DType::kBool,
                 "MultiHeadAttention: attn_mask must be bool, got ", attn_mask.str());
    Tensor am;
    if (attn_mask.dim() == 2 && attn_mask.size(0) == tq && attn_mask.size(1) == tk) am = attn_mask;
    else if (attn_mask.dim() == 3 && attn_mask.size(0) == b * num_heads &&
             attn_mask.size(1) == tq && attn_mask.size(2) == tk)
      am = attn_mask.View({b, num_heads, tq, tk});
    ATTEND_CHECK(am.defined(), "MultiHeadAttention: attn_mask ", attn_mask.str(), " must be [", tq,
                 ", ", tk, "] or [", b * num_heads, ", ", tq, ", ", tk, "]");
    mask = OrMasks(mask, am);
  }
  Attended a;
  Generator& g = DropoutGenerator();
  if (!need_weights && !attn_mask.defined() && FusedKernels()) {
    // No weights wanted: the fused kernel never forms them. It takes the padding mask [B, Tk]
    // itself; an arbitrary attn_mask needs the composition below.
    a.context = FusedScaledDotProductAttention(q, k, v, key_padding_mask, causal, dropout,
                                               training(), &g);  // [B, H, Tq, hd]
  } else {
    a = ScaledDotProductAttention(q, k, v, mask, causal, dropout, training(), &g);
  }
  RecordDropoutGenerator();
  Tensor ctx = a.context.Transpose(1, 2).Reshape({b, tq, embed_dim});  // [B, Tq, E]
  Attended out;
  out.context = out_proj->Forward(ctx);
  if (need_weights) out.weights = average_weights ? Mean(a.weights, {1}) : a.weights;
  return out;
}

}  // namespace attend::attention
