// Multi-head attention (Vaswani et al. 2017), the one implementation: torch's module API, and the
// self-attention, cross-attention and cached decoding steps the Transformer is built from. Every
// path reaches the heads through AttendHeads, so one rule decides when the fused kernel runs.
#include <cstring>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "core/tensor_impl.h"

namespace attend::attention {

// ---- KVCache ----

KVCache KVCache::Empty(int64_t n, int64_t heads, int64_t capacity, int64_t head_dim, DType dtype) {
  KVCache c;
  c.k = Tensor::Empty({n, heads, capacity, head_dim}, dtype);
  c.v = Tensor::Empty({n, heads, capacity, head_dim}, dtype);
  return c;
}

namespace {

// Rows `rows` of the first `length` positions of a cache [N, H, cap, hd], into a fresh
// [N', H, new_cap, hd]: one memcpy per (row, head), no temporaries.
Tensor CopyCacheRows(const Tensor& cache, const std::vector<int64_t>& rows, int64_t length,
                     int64_t new_cap) {
  const Tensor src_t = cache.Contiguous();
  const int64_t h = src_t.size(1), cap = src_t.size(2), hd = src_t.size(3);
  const int64_t n_out = static_cast<int64_t>(rows.size());
  Tensor out = Tensor::Empty({n_out, h, new_cap, hd}, src_t.dtype());
  const size_t elem = DTypeSize(src_t.dtype());
  const auto* src = static_cast<const uint8_t*>(src_t.raw_data());
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  const size_t bytes = static_cast<size_t>(length * hd) * elem;
  if (bytes == 0) return out;
  for (int64_t i = 0; i < n_out; ++i)
    for (int64_t j = 0; j < h; ++j)
      std::memcpy(dst + static_cast<size_t>((i * h + j) * new_cap * hd) * elem,
                  src + static_cast<size_t>((rows[i] * h + j) * cap * hd) * elem, bytes);
  return out;
}

// Greedy search dropping finished sentences keeps rows in order (rows[i] >= i, increasing): row
// i can take row rows[i] in place, ascending, since no row still to be read has been written.
// Only for a contiguous cache that nothing else holds (a view of it elsewhere would change).
bool CompactsInPlace(const Tensor& cache, const std::vector<int64_t>& rows) {
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i] <= rows[i - 1]) return false;
  return cache.is_contiguous() && cache.impl_ptr().use_count() == 1 &&
         cache.impl()->storage.use_count() == 1;
}

// rows[i] -> row i of the first `length` positions of each head, then the first N' rows.
Tensor CompactCacheRows(Tensor& cache, const std::vector<int64_t>& rows, int64_t length) {
  const int64_t h = cache.size(1), cap = cache.size(2), hd = cache.size(3);
  const size_t elem = DTypeSize(cache.dtype());
  auto* base = static_cast<uint8_t*>(cache.raw_data());
  const size_t bytes = static_cast<size_t>(length * hd) * elem;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    if (r == static_cast<int64_t>(i) || bytes == 0) continue;
    for (int64_t j = 0; j < h; ++j)
      std::memcpy(base + static_cast<size_t>((static_cast<int64_t>(i) * h + j) * cap * hd) * elem,
                  base + static_cast<size_t>((r * h + j) * cap * hd) * elem, bytes);
  }
  return cache.Narrow(0, 0, static_cast<int64_t>(rows.size()));
}

}  // namespace

void KVCache::Reorder(const std::vector<int64_t>& rows, int64_t new_capacity) {
  ATTEND_CHECK(new_capacity >= length, "KVCache::Reorder: capacity ", new_capacity,
               " is below the ", length, " positions filled");
  const int64_t n = k.size(0);
  for (int64_t r : rows)
    ATTEND_CHECK(r >= 0 && r < n, "KVCache::Reorder: row ", r, " is out of range [0, ", n, ")");
  if (length == capacity() && new_capacity == capacity()) {
    // A full cache (cross-attention's keys and values) keeps its size: a row gather.
    const Tensor index = Tensor::FromVector(rows, {static_cast<int64_t>(rows.size())});
    k = IndexSelect(k, 0, index);
    v = IndexSelect(v, 0, index);
    return;
  }
  if (new_capacity == capacity() && CompactsInPlace(k, rows) && CompactsInPlace(v, rows)) {
    k = CompactCacheRows(k, rows, length);
    v = CompactCacheRows(v, rows, length);
    return;
  }
  k = CopyCacheRows(k, rows, length, new_capacity);
  v = CopyCacheRows(v, rows, length, new_capacity);
}

// ---- MultiHeadAttention ----

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

Tensor MultiHeadAttention::Project(const Tensor& x, int64_t first, int64_t count) const {
  // One GEMM whose tiles start from the bias (Linear), not a product and then a pass adding it.
  return Linear(x, in_proj_weight.Narrow(0, first, count),
                in_proj_bias.defined() ? in_proj_bias.Narrow(0, first, count) : Tensor());
}

Tensor MultiHeadAttention::SplitHeads(const Tensor& x) const {
  const int64_t b = x.size(0), t = x.size(1);
  return x.Reshape({b, t, num_heads, head_dim}).Transpose(1, 2);
}

Tensor MultiHeadAttention::MergeHeads(const Tensor& x) {
  const int64_t b = x.size(0), h = x.size(1), t = x.size(2), hd = x.size(3);
  return x.Transpose(1, 2).Reshape({b, t, h * hd});
}

bool MultiHeadAttention::UsesFusedKernel(int64_t tq, int64_t tk, bool need_weights) const {
  return !need_weights && FusedKernels() && (tq * tk >= kFusedMinPairs || (tq == 1 && !training()));
}

Tensor MultiHeadAttention::AttendHeads(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& pad_mask, bool causal, Tensor* weights,
                                       const nn::PrepackedLinear* out_proj_packed,
                                       bool average_weights) {
  Tensor context;  // [B, H, Tq, hd]
  Generator& g = DropoutGenerator();
  if (UsesFusedKernel(q.size(2), k.size(2), weights != nullptr)) {
    context = FusedScaledDotProductAttention(q, k, v, pad_mask, causal, dropout, training(), &g);
  } else {
    Tensor mask = pad_mask.defined() ? pad_mask.View({pad_mask.size(0), 1, 1, pad_mask.size(1)})
                                     : Tensor();  // broadcasts over heads and queries
    Attended a = ScaledDotProductAttention(q, k, v, mask, causal, dropout, training(), &g);
    if (weights) *weights = average_weights ? Mean(a.weights, {1}) : a.weights;
    context = a.context;
  }
  RecordDropoutGenerator();
  if (out_proj_packed) return out_proj_packed->Forward(MergeHeads(context));
  return out_proj->Forward(MergeHeads(context));
}

Tensor MultiHeadAttention::SelfAttention(const Tensor& x, const Tensor& pad_mask, bool causal,
                                         Tensor* weights, bool average_weights,
                                         const PrepackedAttention* packed) {
  const int64_t e = embed_dim;
  Tensor qkv = packed ? packed->in_proj.Forward(x) : Project(x, 0, 3 * e);  // [B, T, 3E]
  return AttendHeads(SplitHeads(qkv.Narrow(2, 0, e)), SplitHeads(qkv.Narrow(2, e, e)),
                     SplitHeads(qkv.Narrow(2, 2 * e, e)), pad_mask, causal, weights,
                     packed ? &packed->out_proj : nullptr, average_weights);
}

KVCache MultiHeadAttention::CrossKeysValues(const Tensor& memory,
                                            const nn::PrepackedLinear* packed) const {
  const int64_t e = embed_dim;
  Tensor kv = packed ? packed->Forward(memory) : Project(memory, e, 2 * e);  // [B, S, 2E]
  KVCache c;
  c.k = SplitHeads(kv.Narrow(2, 0, e));
  c.v = SplitHeads(kv.Narrow(2, e, e));
  c.length = memory.size(1);
  return c;
}

Tensor MultiHeadAttention::CrossAttention(const Tensor& x, const KVCache& memory,
                                          const Tensor& pad_mask, Tensor* weights,
                                          const PrepackedAttention* packed, bool average_weights,
                                          const Tensor& memory_rows) {
  Tensor q = SplitHeads(packed ? packed->in_proj.Forward(x) : Project(x, 0, embed_dim));
  Tensor k = memory.length == memory.capacity() ? memory.k : memory.k.Narrow(2, 0, memory.length);
  Tensor v = memory.length == memory.capacity() ? memory.v : memory.v.Narrow(2, 0, memory.length);
  Tensor mask = pad_mask;
  if (memory_rows.defined()) {
    if (weights == nullptr && FusedKernels() && !GradMode::enabled() &&
        (!training() || dropout == 0.0)) {
      const Tensor merged =
          MergeHeads(GatheredScaledDotProductAttention(q, k, v, pad_mask, memory_rows));
      return packed ? packed->out_proj.Forward(merged) : out_proj->Forward(merged);
    }
    k = IndexSelect(k, 0, memory_rows);  // weights asked for (or a graph): the rows gathered
    v = IndexSelect(v, 0, memory_rows);
    if (mask.defined()) mask = IndexSelect(mask, 0, memory_rows);
  }
  return AttendHeads(q, k, v, mask, false, weights, packed ? &packed->out_proj : nullptr,
                     average_weights);
}

Tensor MultiHeadAttention::SelfAttentionStep(const Tensor& x, KVCache& cache,
                                             const PrepackedAttention* packed) {
  const int64_t e = embed_dim, pos = cache.length;
  ATTEND_CHECK(x.dim() == 3 && x.size(1) == 1,
               "MultiHeadAttention::SelfAttentionStep: x must be "
               "[N, 1, E] (one position), got ",
               x.str());
  ATTEND_CHECK(pos < cache.capacity(), "MultiHeadAttention::SelfAttentionStep: the cache is full (",
               cache.capacity(), " positions); Reorder it into a larger one first");
  Tensor qkv = packed ? packed->in_proj.Forward(x) : Project(x, 0, 3 * e);  // [N, 1, 3E]
  cache.k.Narrow(2, pos, 1).CopyFrom(SplitHeads(qkv.Narrow(2, e, e)));
  cache.v.Narrow(2, pos, 1).CopyFrom(SplitHeads(qkv.Narrow(2, 2 * e, e)));
  cache.length = pos + 1;
  // Every cached position precedes this one: no causal mask is needed.
  return AttendHeads(SplitHeads(qkv.Narrow(2, 0, e)), cache.k.Narrow(2, 0, pos + 1),
                     cache.v.Narrow(2, 0, pos + 1), Tensor(), false, nullptr,
                     packed ? &packed->out_proj : nullptr);
}

PrepackedAttention MultiHeadAttention::Pack(bool query_only, nn::Precision precision) const {
  const int64_t rows = query_only ? embed_dim : 3 * embed_dim;
  PrepackedAttention p;
  p.in_proj = nn::PrepackedLinear(
      in_proj_weight.Narrow(0, 0, rows),
      in_proj_bias.defined() ? in_proj_bias.Narrow(0, 0, rows) : Tensor(), precision);
  p.out_proj = nn::PrepackedLinear(*out_proj, precision);
  return p;
}

nn::PrepackedLinear MultiHeadAttention::PackKeysValues(nn::Precision precision) const {
  const int64_t e = embed_dim;
  return nn::PrepackedLinear(in_proj_weight.Narrow(0, e, 2 * e),
                             in_proj_bias.defined() ? in_proj_bias.Narrow(0, e, 2 * e) : Tensor(),
                             precision);
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
  const int64_t e = embed_dim;
  if (key_padding_mask.defined())
    ATTEND_CHECK(key_padding_mask.dtype() == DType::kBool && key_padding_mask.dim() == 2 &&
                     key_padding_mask.size(0) == b && key_padding_mask.size(1) == tk,
                 "MultiHeadAttention: key_padding_mask ", key_padding_mask.str(), " must be bool [",
                 b, ", ", tk, "]");
  Tensor am;
  if (attn_mask.defined()) {
    ATTEND_CHECK(attn_mask.dtype() == DType::kBool,
                 "MultiHeadAttention: attn_mask must be bool, got ", attn_mask.str());
    if (attn_mask.dim() == 2 && attn_mask.size(0) == tq && attn_mask.size(1) == tk) am = attn_mask;
    else if (attn_mask.dim() == 3 && attn_mask.size(0) == b * num_heads &&
             attn_mask.size(1) == tq && attn_mask.size(2) == tk)
      am = attn_mask.View({b, num_heads, tq, tk});
    ATTEND_CHECK(am.defined(), "MultiHeadAttention: attn_mask ", attn_mask.str(), " must be [", tq,
                 ", ", tk, "] or [", b * num_heads, ", ", tq, ", ", tk, "]");
  }
  Tensor q = SplitHeads(Project(query, 0, e)), k = SplitHeads(Project(key, e, e)),
         v = SplitHeads(Project(value, 2 * e, e));
  Attended out;
  if (!am.defined()) {
    out.context = AttendHeads(q, k, v, key_padding_mask, causal,
                              need_weights ? &out.weights : nullptr, nullptr, average_weights);
    return out;
  }
  // An arbitrary attn_mask: the composition, with the padding mask or'ed in.
  const Tensor mask =
      key_padding_mask.defined() ? LogicalOr(key_padding_mask.View({b, 1, 1, tk}), am) : am;
  Generator& g = DropoutGenerator();
  Attended a = ScaledDotProductAttention(q, k, v, mask, causal, dropout, training(), &g);
  RecordDropoutGenerator();
  out.context = out_proj->Forward(MergeHeads(a.context));
  if (need_weights) out.weights = average_weights ? Mean(a.weights, {1}) : a.weights;
  return out;
}

}  // namespace attend::attention
