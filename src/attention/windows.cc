// Where to look: Luong's local-m window mask and local-p predicted centre with Gaussian weighting.
#include <cmath>
#include <cstdlib>

#include "attend/attention.h"

namespace attend::attention {

Tensor LocalMonotonicMask(int64_t tq, int64_t tk, int64_t window) {
  ATTEND_CHECK(tq >= 0 && tk >= 0 && window >= 0,
               "LocalMonotonicMask: sizes and window must be "
               "non-negative, got Tq ",
               tq, ", Tk ", tk, ", D ", window);
  Tensor m = Tensor::Empty({tq, tk}, DType::kBool);
  bool* p = m.data<bool>();
  for (int64_t t = 0; t < tq; ++t)
    for (int64_t j = 0; j < tk; ++j) p[t * tk + j] = std::llabs(j - t) > window;
  return m;
}

LocalPredictive::LocalPredictive(int64_t query_dim, int64_t hidden_dim, int64_t window_in,
                                 Generator& gen, DType dtype)
    : window(window_in) {
  ATTEND_CHECK(window >= 1, "LocalPredictive: window D must be at least 1, got ", window);
  proj = RegisterModule("proj",
                        std::make_shared<nn::Linear>(query_dim, hidden_dim, false, gen, dtype));
  Tensor vp = Tensor::Empty({hidden_dim}, dtype);
  nn::init::Uniform(vp, -1.0 / std::sqrt(hidden_dim), 1.0 / std::sqrt(hidden_dim), gen);
  v = RegisterParameter("v", vp);
}

Tensor LocalPredictive::Weights(const Tensor& scores, const Tensor& query,
                                const Tensor& source_lengths, Tensor* centers) const {
  ATTEND_CHECK(scores.defined() && scores.dim() == 3 && query.defined() && query.dim() == 3 &&
                   scores.size(0) == query.size(0) && scores.size(1) == query.size(1),
               "LocalPredictive: scores ", scores.str(), " and query ", query.str(),
               " must be [B, Tq, Tk] and [B, Tq, Dq]");
  ATTEND_CHECK(query.size(2) == proj->weight.size(1), "LocalPredictive: query ", query.str(),
               " must be [B, Tq, ", proj->weight.size(1), "]");
  const int64_t b = scores.size(0), tk = scores.size(2);
  const DType dt = scores.dtype();
  // S: each sentence's length (positions beyond it are padding and also excluded).
  Tensor lengths = Tensor::Full({b}, static_cast<double>(tk), DType::kI64);
  if (source_lengths.defined()) {
    ATTEND_CHECK(source_lengths.dtype() == DType::kI64 && source_lengths.dim() == 1 &&
                     source_lengths.size(0) == b,
                 "LocalPredictive: source_lengths ", source_lengths.str(), " must be i64 [", b,
                 "]");
    lengths = source_lengths.Contiguous();
    for (int64_t l : lengths.ToVector<int64_t>())
      ATTEND_CHECK(l >= 1 && l <= tk, "LocalPredictive: source length ", l, " is out of range 1..",
                   tk);
  }
  // Luong's p_t = S * sigmoid(v_p^T tanh(W_p h_t)); positions are 0-based here, so the centre
  // ranges over [0, S] like Luong's 1-based [0, S] does.
  Tensor s = lengths.To(dt).View({b, 1});                             // [B, 1]
  Tensor p = Mul(s, Sigmoid(Matmul(Tanh(proj->Forward(query)), v)));  // [B, Tq]
  if (centers) *centers = p;
  Tensor pos = Tensor::Arange(tk, dt).View({1, 1, tk});  // [1, 1, Tk]
  Tensor dist = Sub(pos, p.Unsqueeze(2));                // [B, Tq, Tk]
  // Outside the window [p_t - D, p_t + D] or beyond the sentence: excluded.
  Tensor outside = Gt(Abs(dist.Detach()), Tensor::Scalar(static_cast<double>(window), dt));
  Tensor padding = Ge(pos.Detach(), s.Detach().Unsqueeze(2));  // [B, 1, Tk]
  Tensor excluded = Tensor::Empty(scores.shape(), DType::kBool);
  {
    Tensor o = outside.Contiguous(), pd = padding.Expand(scores.shape()).Contiguous();
    bool* pe = excluded.data<bool>();
    const bool* po = o.data<bool>();
    const bool* pp = pd.data<bool>();
    for (int64_t i = 0; i < excluded.numel(); ++i) pe[i] = po[i] || pp[i];
  }
  const double sigma = static_cast<double>(window) / 2.0;
  Tensor gauss = Exp(MulScalar(Mul(dist, dist), -1.0 / (2.0 * sigma * sigma)));  // [B, Tq, Tk]
  return Mul(Softmax(scores, -1, excluded), gauss);
}

}  // namespace attend::attention
