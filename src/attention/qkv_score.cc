// The query-key-value score over a decoder's query (the encyclopedia's "encoder-decoder QKV"):
// three projections without bias and the scaled dot product between the projected query and
// keys; the context mixes the projected values, so its width is the value projection's.
#include <cmath>

#include "attend/attention.h"

namespace attend::attention {

QkvScore::QkvScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, int64_t value_dim,
                   Generator& gen, DType dtype) {
  ATTEND_CHECK(query_dim > 0 && key_dim > 0 && attn_dim > 0 && value_dim > 0,
               "QkvScore: sizes must be positive, got query ", query_dim, ", key ", key_dim,
               ", attention ", attn_dim, ", value ", value_dim);
  query_proj = RegisterModule("query_proj",
                              std::make_shared<nn::Linear>(query_dim, attn_dim, false, gen, dtype));
  key_proj = RegisterModule("key_proj",
                            std::make_shared<nn::Linear>(key_dim, attn_dim, false, gen, dtype));
  value_proj = RegisterModule("value_proj",
                              std::make_shared<nn::Linear>(key_dim, value_dim, false, gen, dtype));
}

namespace {
void CheckKeys(const Tensor& keys, int64_t key_dim) {
  ATTEND_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == key_dim,
               "QkvScore: keys must be [B, Tk, ", key_dim, "], got ",
               keys.defined() ? keys.str() : "undefined");
}
}  // namespace

Tensor QkvScore::PrepareKeys(const Tensor& keys) const {
  CheckKeys(keys, key_proj->weight.size(1));
  return key_proj->Forward(keys);  // [B, Tk, A]
}

Tensor QkvScore::PrepareValues(const Tensor& keys) const {
  CheckKeys(keys, value_proj->weight.size(1));
  return value_proj->Forward(keys);  // [B, Tk, Dv]
}

Tensor QkvScore::Scores(const Tensor& query, const Tensor& pk) const {
  const int64_t dq = query_proj->weight.size(1), a = query_proj->weight.size(0);
  ATTEND_CHECK(query.defined() && query.dim() == 3 && query.size(2) == dq,
               "QkvScore: query must be [B, Tq, ", dq, "], got ",
               query.defined() ? query.str() : "undefined");
  ATTEND_CHECK(pk.defined() && pk.dim() == 3 && pk.size(0) == query.size(0) && pk.size(2) == a,
               "QkvScore: prepared keys ", pk.defined() ? pk.str() : "undefined", " must be [",
               query.size(0), ", Tk, ", a,
               "] (from keys [B, Tk, Dk] of the same batch as the query ", query.str(), ")");
  Tensor q = query_proj->Forward(query);  // [B, Tq, A]
  // Scaled by sqrt(A) as the Transformer's dot products: the projections' sums grow with A.
  return MulScalar(Matmul(q, pk.Transpose(1, 2)), 1.0 / std::sqrt(static_cast<double>(a)));
}

Attended QkvScore::Attend(const Tensor& query, const Tensor& keys, const Tensor& mask) const {
  ATTEND_CHECK(query.defined() && keys.defined() && query.dim() == 3 && keys.dim() == 3 &&
                   query.size(0) == keys.size(0),
               "QkvScore: expected query [B, Tq, Dq] and keys [B, Tk, Dk] with the same B, got ",
               query.defined() ? query.str() : "undefined", " and ",
               keys.defined() ? keys.str() : "undefined");
  Attended out;
  Tensor scores = Scores(query, PrepareKeys(keys));  // [B, Tq, Tk]
  if (mask.defined()) CheckMask(mask, scores.shape(), "QkvScore");
  out.weights = SoftWeights(scores, mask);
  out.context = WeightedSum(out.weights, PrepareValues(keys));  // [B, Tq, Dv]
  return out;
}

}  // namespace attend::attention
