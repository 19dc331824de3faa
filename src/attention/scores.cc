// Score functions: additive (Bahdanau), dot, scaled dot, general, concat and location (Luong),
// cosine (NTM), the MwAN element-wise scores and the ABCNN match score.
#include <cmath>

#include "attend/additive_attention.h"
#include "attend/attention.h"
#include "attend/ops/conv.h"

namespace attend::attention {

namespace {
void CheckQK(const Tensor& q, const Tensor& k, const char* op) {
  ATTEND_CHECK(q.defined() && k.defined(), op, ": query or keys undefined");
  ATTEND_CHECK(q.dim() == 3 && k.dim() == 3 && q.size(0) == k.size(0), op,
               ": expected query [B, Tq, Dq] and keys [B, Tk, Dk], got ", q.str(), " and ",
               k.str());
}
void CheckSameDim(const Tensor& q, const Tensor& k, const char* op) {
  CheckQK(q, k, op);
  ATTEND_CHECK(q.size(2) == k.size(2), op, ": query ", q.str(), " and keys ", k.str(),
               " must have the same feature size");
}
Tensor NewParam(const Shape& s, DType dtype, Generator& gen, double bound) {
  Tensor t = Tensor::Empty(s, dtype);
  nn::init::Uniform(t, -bound, bound, gen);
  return t;
}
// v^T tanh(x) over the last dim: [.., A] -> [..].
Tensor ProjectTanh(const Tensor& x, const Tensor& v) { return Matmul(Tanh(x), v); }
}  // namespace

Tensor ScoreFunction::Forward(const Tensor& query, const Tensor& keys) const {
  ATTEND_CHECK(query.defined() && keys.defined() && query.dim() == 3 && keys.dim() == 3 &&
                   query.size(0) == keys.size(0),
               name(), ": expected query [B, Tq, Dq] and keys [B, Tk, Dk] with the same B, got ",
               query.str(), " and ", keys.str());
  return Scores(query, PrepareKeys(keys));
}

Tensor WeightedSum(const Tensor& weights, const Tensor& values) {
  ATTEND_CHECK(weights.defined() && values.defined() && weights.dim() >= 2 && values.dim() >= 2 &&
                   weights.size(-1) == values.size(-2),
               "WeightedSum: weights ", weights.str(), " do not match values ", values.str(),
               " (expected [.., Tq, Tk] and [.., Tk, Dv])");
  return Matmul(weights, values);
}

AdditiveScore::AdditiveScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, Generator& gen,
                             DType dtype) {
  query_proj = RegisterModule("query_proj",
                              std::make_shared<nn::Linear>(query_dim, attn_dim, false, gen, dtype));
  key_proj =
      RegisterModule("key_proj", std::make_shared<nn::Linear>(key_dim, attn_dim, true, gen, dtype));
  v = RegisterParameter("v", NewParam({attn_dim}, dtype, gen, 1.0 / std::sqrt(attn_dim)));
}

Tensor AdditiveScore::PrepareKeys(const Tensor& keys) const {
  ATTEND_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == key_proj->weight.size(1),
               "AdditiveScore: keys must be [B, Tk, ", key_proj->weight.size(1), "], got ",
               keys.str());
  return key_proj->Forward(keys);  // [B, Tk, A]
}

Tensor AdditiveScore::Scores(const Tensor& query, const Tensor& pk) const {
  return Scores(query, pk, nullptr);
}

Tensor AdditiveScore::Scores(const Tensor& query, const Tensor& pk,
                             const nn::PrepackedLinear* packed_query) const {
  ATTEND_CHECK(query.defined() && query.dim() == 3 && query.size(2) == query_proj->weight.size(1),
               "AdditiveScore: query must be [B, Tq, ", query_proj->weight.size(1), "], got ",
               query.str());
  ATTEND_CHECK(
      pk.defined() && pk.dim() == 3 && pk.size(0) == query.size(0) && pk.size(2) == v.size(0),
      "AdditiveScore: prepared keys ", pk.str(), " must be [", query.size(0), ", Tk, ", v.size(0),
      "] (from keys [B, Tk, Dk] of the same batch as the query ", query.str(), ")");
  Tensor wq = packed_query ? packed_query->Forward(query) : query_proj->Forward(query);  // [B,Tq,A]
  // Fused: v^T tanh(wq + pk) per pair without the [B, Tq, Tk, A] intermediate.
  if (FusedKernels()) return FusedAdditiveScores(wq, pk, v);      // [B, Tq, Tk]
  return Matmul(Tanh(Add(wq.Unsqueeze(2), pk.Unsqueeze(1))), v);  // via [B, Tq, Tk, A]
}

LocationAwareScore::LocationAwareScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim,
                                       int64_t filters_count, int64_t width, Generator& gen,
                                       DType dtype) {
  ATTEND_CHECK(filters_count > 0 && width > 0 && width % 2 == 1,
               "LocationAwareScore: need a positive filter count and an odd width, got ",
               filters_count, " and ", width);
  query_proj = RegisterModule("query_proj",
                              std::make_shared<nn::Linear>(query_dim, attn_dim, false, gen, dtype));
  key_proj =
      RegisterModule("key_proj", std::make_shared<nn::Linear>(key_dim, attn_dim, true, gen, dtype));
  filters = RegisterParameter("filters", NewParam({filters_count, 1, width}, dtype, gen,
                                                  1.0 / std::sqrt(static_cast<double>(width))));
  location_proj = RegisterModule(
      "location_proj", std::make_shared<nn::Linear>(filters_count, attn_dim, false, gen, dtype));
  v = RegisterParameter("v", NewParam({attn_dim}, dtype, gen, 1.0 / std::sqrt(attn_dim)));
}

Tensor LocationAwareScore::PrepareKeys(const Tensor& keys) const {
  ATTEND_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == key_proj->weight.size(1),
               "LocationAwareScore: keys must be [B, Tk, ", key_proj->weight.size(1), "], got ",
               keys.str());
  return key_proj->Forward(keys);  // [B, Tk, A]
}

Tensor LocationAwareScore::Scores(const Tensor& query, const Tensor& pk) const {
  return Scores(query, pk, Tensor());
}

Tensor LocationAwareScore::Scores(const Tensor& query, const Tensor& pk,
                                  const Tensor& previous) const {
  ATTEND_CHECK(query.defined() && query.dim() == 3 && query.size(1) == 1 &&
                   query.size(2) == query_proj->weight.size(1),
               "LocationAwareScore: query must be one step [B, 1, ", query_proj->weight.size(1),
               "], got ", query.defined() ? query.str() : "undefined");
  ATTEND_CHECK(
      pk.defined() && pk.dim() == 3 && pk.size(0) == query.size(0) && pk.size(2) == v.size(0),
      "LocationAwareScore: prepared keys ", pk.str(), " must be [", query.size(0), ", Tk, ",
      v.size(0), "]");
  Tensor keys = pk;
  if (previous.defined()) {
    ATTEND_CHECK(
        previous.dim() == 2 && previous.size(0) == pk.size(0) && previous.size(1) == pk.size(1),
        "LocationAwareScore: previous weights ", previous.str(), " must be [", pk.size(0), ", ",
        pk.size(1), "]");
    const int64_t r = filters.size(2);
    Tensor f = Conv1d(previous.Unsqueeze(1), filters, Tensor(), 1, r / 2);  // [B, k, Tk]
    keys = Add(pk, location_proj->Forward(f.Transpose(1, 2)));              // [B, Tk, A]
  }
  Tensor wq = query_proj->Forward(query);                           // [B, 1, A]
  if (FusedKernels()) return FusedAdditiveScores(wq, keys, v);      // [B, 1, Tk]
  return Matmul(Tanh(Add(wq.Unsqueeze(2), keys.Unsqueeze(1))), v);  // via [B, 1, Tk, A]
}

Tensor DotScore::Scores(const Tensor& q, const Tensor& k) const {
  CheckSameDim(q, k, "DotScore");
  return Matmul(q, k.Transpose(1, 2));
}

Tensor ScaledDotScore::Scores(const Tensor& q, const Tensor& k) const {
  CheckSameDim(q, k, "ScaledDotScore");
  return MulScalar(Matmul(q, k.Transpose(1, 2)), 1.0 / std::sqrt(static_cast<double>(q.size(2))));
}

GeneralScore::GeneralScore(int64_t query_dim, int64_t key_dim, Generator& gen, DType dtype) {
  weight = RegisterParameter("weight", NewParam({query_dim, key_dim}, dtype, gen,
                                                1.0 / std::sqrt(static_cast<double>(key_dim))));
}

Tensor GeneralScore::PrepareKeys(const Tensor& keys) const {
  ATTEND_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == weight.size(1),
               "GeneralScore: keys ", keys.str(), " must be [B, Tk, ", weight.size(1), "]");
  return Matmul(keys, weight.T());  // W k_j: [B, Tk, Dq]
}

Tensor GeneralScore::Scores(const Tensor& q, const Tensor& pk) const {
  CheckSameDim(q, pk, "GeneralScore");
  return Matmul(q, pk.Transpose(1, 2));
}

ConcatScore::ConcatScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, Generator& gen,
                         DType dtype) {
  this->query_dim = query_dim;
  this->key_dim = key_dim;
  weight = RegisterParameter("weight",
                             NewParam({attn_dim, query_dim + key_dim}, dtype, gen,
                                      1.0 / std::sqrt(static_cast<double>(query_dim + key_dim))));
  v = RegisterParameter("v", NewParam({attn_dim}, dtype, gen, 1.0 / std::sqrt(attn_dim)));
}

Tensor ConcatScore::PrepareKeys(const Tensor& keys) const {
  ATTEND_CHECK(keys.defined() && keys.dim() == 3 && keys.size(2) == key_dim, "ConcatScore: keys ",
               keys.str(), " must be [B, Tk, ", key_dim, "]");
  return Matmul(keys, weight.Narrow(1, query_dim, key_dim).T());  // W_k k_j: [B, Tk, A]
}

Tensor ConcatScore::Scores(const Tensor& q, const Tensor& pk) const {
  CheckQK(q, pk, "ConcatScore");
  ATTEND_CHECK(q.size(2) == query_dim && pk.size(2) == weight.size(0), "ConcatScore: query ",
               q.str(), " and prepared keys ", pk.str(), " do not fit [B, Tq, ", query_dim,
               "] and [B, Tk, ", weight.size(0), "]");
  Tensor wq = Matmul(q, weight.Narrow(1, 0, query_dim).T());  // [B, Tq, A]
  return ProjectTanh(Add(wq.Unsqueeze(2), pk.Unsqueeze(1)), v);
}

LocationScore::LocationScore(int64_t query_dim, int64_t max_source_len, Generator& gen,
                             DType dtype) {
  proj = RegisterModule("proj",
                        std::make_shared<nn::Linear>(query_dim, max_source_len, true, gen, dtype));
}

Tensor LocationScore::Scores(const Tensor& q, const Tensor& k) const {
  CheckQK(q, k, "LocationScore");
  ATTEND_CHECK(q.size(2) == proj->weight.size(1), "LocationScore: query ", q.str(),
               " must be [B, Tq, ", proj->weight.size(1), "]");
  ATTEND_CHECK(k.size(1) <= proj->weight.size(0), "LocationScore: source length ", k.size(1),
               " exceeds the maximum ", proj->weight.size(0), " (keys ", k.str(), ")");
  return proj->Forward(q).Narrow(2, 0, k.size(1));  // [B, Tq, Tk]
}

namespace {
Tensor Normalize(const Tensor& x, double eps) {
  return Mul(x, Rsqrt(AddScalar(Sum(Mul(x, x), {-1}, true), eps)));
}
}  // namespace

Tensor CosineScore::Scores(const Tensor& q, const Tensor& k) const {
  CheckSameDim(q, k, "CosineScore");
  return MulScalar(Matmul(Normalize(q, eps), Normalize(k, eps).Transpose(1, 2)), beta);
}

Tensor CosineScore::ScoresWithStrength(const Tensor& q, const Tensor& k, const Tensor& b) const {
  CheckSameDim(q, k, "CosineScore");
  ATTEND_CHECK(b.defined() && b.dim() == 2 && b.size(0) == q.size(0) && b.size(1) == q.size(1),
               "CosineScore: strength ", b.str(), " must be [B, Tq] for query ", q.str());
  return Mul(Matmul(Normalize(q, eps), Normalize(k, eps).Transpose(1, 2)), b.Unsqueeze(2));
}

MwanScore::MwanScore(Kind k, int64_t dim, int64_t attn_dim, Generator& gen, DType dtype) : kind(k) {
  weight = RegisterParameter("weight", NewParam({attn_dim, dim}, dtype, gen, 1.0 / std::sqrt(dim)));
  v = RegisterParameter("v", NewParam({attn_dim}, dtype, gen, 1.0 / std::sqrt(attn_dim)));
}

Tensor MwanScore::Scores(const Tensor& q, const Tensor& k) const {
  CheckSameDim(q, k, "MwanScore");
  ATTEND_CHECK(q.size(2) == weight.size(1), "MwanScore: query ", q.str(), " and keys ", k.str(),
               " must have ", weight.size(1), " features");
  Tensor qe = q.Unsqueeze(2), ke = k.Unsqueeze(1);               // [B, Tq, 1, D], [B, 1, Tk, D]
  Tensor pair = kind == Kind::kDot ? Mul(qe, ke) : Sub(qe, ke);  // [B, Tq, Tk, D]
  return ProjectTanh(Matmul(pair, weight.T()), v);               // [B, Tq, Tk]
}

Tensor MatchScore(const Tensor& q, const Tensor& k) {
  CheckSameDim(q, k, "MatchScore");
  Tensor d = Sub(q.Unsqueeze(2), k.Unsqueeze(1));  // [B, Tq, Tk, D]
  Tensor ss = Sum(Mul(d, d), {-1});                // [B, Tq, Tk]
  // |q - k| has no derivative at q == k; take the zero subgradient there instead of 0/0.
  Tensor zero = Tensor::Scalar(0.0, q.dtype());
  Tensor nonzero = Gt(ss.Detach(), zero);
  Tensor safe = Where(nonzero, ss, Tensor::Scalar(1.0, q.dtype()));
  Tensor dist = Where(nonzero, Sqrt(safe), zero);
  Tensor one = Tensor::Scalar(1.0, q.dtype());
  return Div(one, AddScalar(dist, 1.0));
}

}  // namespace attend::attention
