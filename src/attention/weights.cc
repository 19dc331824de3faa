// From scores to weights: soft (softmax), top-k sparse, sparsemax, and hard attention (argmax,
// REINFORCE sampling with a moving-average baseline, straight-through Gumbel-softmax).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "autograd/node.h"

namespace attend::attention {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

void CheckScores(const Tensor& s, const char* op) {
  ATTEND_CHECK(s.defined() && IsFloating(s.dtype()) && s.dim() >= 1, op,
               ": scores must be a floating tensor [.., Tk], got ", s.str());
}

// The full exclusion mask, materialised at the scores' shape (bool, contiguous).
Tensor ExpandMask(const Tensor& scores, const Tensor& mask, const char* op) {
  Tensor out = Tensor::Zeros(scores.shape(), DType::kBool);
  if (mask.defined()) {
    CheckMask(mask, scores.shape(), op);
    out.CopyFrom(mask);
  }
  return out;
}
}  // namespace

void CheckMask(const Tensor& mask, const Shape& scores_shape, const char* op) {
  ATTEND_CHECK(mask.dtype() == DType::kBool, op, ": mask must be bool, got ", mask.str());
  bool ok = mask.dim() <= scores_shape.size();
  for (int i = 0; ok && i < mask.dim(); ++i) {
    const int64_t m = mask.size(mask.dim() - 1 - i), s = scores_shape[scores_shape.size() - 1 - i];
    ok = m == s || m == 1;
  }
  ATTEND_CHECK(ok, op, ": mask ", mask.str(), " does not broadcast to the scores ",
               scores_shape.str());
}

Tensor SoftWeights(const Tensor& scores, const Tensor& mask) {
  CheckScores(scores, "SoftWeights");
  if (mask.defined()) CheckMask(mask, scores.shape(), "SoftWeights");
  return Softmax(scores, -1, mask);
}

Tensor TopKWeights(const Tensor& scores, int64_t k, const Tensor& mask) {
  CheckScores(scores, "TopKWeights");
  ATTEND_CHECK(k >= 1, "TopKWeights: k must be at least 1, got ", k);
  const int64_t tk = scores.size(-1);
  Tensor excluded = ExpandMask(scores, mask, "TopKWeights");
  Tensor s = scores.Detach().To(DType::kF64).Contiguous();
  bool* ex = excluded.data<bool>();
  const double* ps = s.data<double>();
  const int64_t rows = tk == 0 ? 0 : s.numel() / tk;
  std::vector<int64_t> order(tk);
  for (int64_t r = 0; r < rows; ++r) {
    // Keep the k largest unmasked scores (ties: lower index first); exclude the rest.
    int64_t n = 0;
    for (int64_t j = 0; j < tk; ++j)
      if (!ex[r * tk + j]) order[n++] = j;
    if (n <= k) continue;
    const double* row = ps + r * tk;
    std::partial_sort(
        order.begin(), order.begin() + k, order.begin() + n,
        [&](int64_t a, int64_t b) { return row[a] != row[b] ? row[a] > row[b] : a < b; });
    for (int64_t i = k; i < n; ++i) ex[r * tk + order[i]] = true;
  }
  return Softmax(scores, -1, excluded);
}

namespace {
// Sparsemax of one row; excluded entries (ex) get 0. Returns nothing; writes p.
template <typename T>
void SparsemaxRow(const T* z, const bool* ex, T* p, int64_t n, std::vector<T>& sorted) {
  sorted.clear();
  for (int64_t j = 0; j < n; ++j)
    if (!ex[j]) sorted.push_back(z[j]);
  if (sorted.empty()) {
    for (int64_t j = 0; j < n; ++j) p[j] = T(0);
    return;
  }
  std::sort(sorted.begin(), sorted.end(), std::greater<T>());
  // Support size k: the largest k with 1 + k z_(k) > sum_{i<=k} z_(i).
  T cum = 0, tau_sum = 0;
  int64_t k = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    cum += sorted[i];
    if (T(1) + static_cast<T>(i + 1) * sorted[i] > cum) {
      k = static_cast<int64_t>(i + 1);
      tau_sum = cum;
    }
  }
  const T tau = (tau_sum - T(1)) / static_cast<T>(k);
  for (int64_t j = 0; j < n; ++j) p[j] = ex[j] ? T(0) : std::max(z[j] - tau, T(0));
}
}  // namespace

Tensor Sparsemax(const Tensor& scores, const Tensor& mask) {
  CheckScores(scores, "Sparsemax");
  const int64_t n = scores.size(-1);
  Tensor excluded = ExpandMask(scores, mask, "Sparsemax");
  Tensor z = scores.Detach().Contiguous();
  Tensor p = Tensor::Empty(scores.shape(), scores.dtype());
  const int64_t rows = n == 0 ? 0 : z.numel() / n;
  const bool* ex = excluded.data<bool>();
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> buf;
    for (int64_t r = 0; r < rows; ++r)
      SparsemaxRow<T>(z.data<T>() + r * n, ex + r * n, p.data<T>() + r * n, n, buf);
  };
  if (scores.dtype() == DType::kF32) run(float{});
  else run(double{});
  Tensor saved = p.Detach();
  RecordOp("Sparsemax", p, {&scores}, [saved, n, rows](const Tensor& g_in) {
    // On the support S (p > 0): dz = g - mean_S(g); elsewhere 0.
    Tensor g = g_in.Contiguous();
    Tensor dz = Tensor::Empty(g.shape(), g.dtype());
    auto run_b = [&](auto tag) {
      using T = decltype(tag);
      const T* pp = saved.data<T>();
      const T* pg = g.data<T>();
      T* pd = dz.data<T>();
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        int64_t k = 0;
        for (int64_t j = 0; j < n; ++j)
          if (pp[r * n + j] > T(0)) {
            s += pg[r * n + j];
            ++k;
          }
        const T mean = k ? static_cast<T>(s / k) : T(0);
        for (int64_t j = 0; j < n; ++j)
          pd[r * n + j] = pp[r * n + j] > T(0) ? pg[r * n + j] - mean : T(0);
      }
    };
    if (g.dtype() == DType::kF32) run_b(float{});
    else run_b(double{});
    return std::vector<Tensor>{dz};
  });
  return p;
}

namespace {
// One-hot [.., Tk] of the given indices [..] (i64).
Tensor OneHot(const Tensor& idx, int64_t tk, DType dtype) {
  Shape s = idx.shape();
  s.push_back(tk);
  Tensor out = Tensor::Zeros(s, DType::kF64);
  Tensor ic = idx.Contiguous();
  const int64_t* pi = ic.data<int64_t>();
  double* po = out.data<double>();
  for (int64_t r = 0; r < ic.numel(); ++r) po[r * tk + pi[r]] = 1.0;
  return out.To(dtype);
}
}  // namespace

Tensor HardAttention::Weights(const Tensor& scores, const Tensor& mask) {
  CheckScores(scores, "HardAttention");
  const int64_t tk = scores.size(-1);
  if (mask.defined()) CheckMask(mask, scores.shape(), "HardAttention");
  Tensor masked = mask.defined() ? MaskedFill(scores.Detach(), mask, -kInf) : scores.Detach();
  // A row with every position excluded has no position to pick.
  Tensor row_max = Max(masked, {-1});
  for (double m : row_max.To(DType::kF64).ToVector<double>())
    ATTEND_CHECK(m > -kInf, "HardAttention: a row of scores ", scores.str(),
                 " has every position masked; hard attention needs one position to pick");
  switch (mode) {
    case Mode::kArgmax: return OneHot(Argmax(masked, -1), tk, scores.dtype());
    case Mode::kReinforce: {
      Tensor logp = LogSoftmax(scores, -1, mask);  // [.., Tk], differentiable
      Tensor probs = Exp(logp.Detach()).To(DType::kF64).Contiguous();
      const double* pp = probs.data<double>();
      const int64_t rows = probs.numel() / tk;
      std::vector<int64_t> picks(rows);
      const uint64_t base = gen.Reserve(rows);
      for (int64_t r = 0; r < rows; ++r) {
        // Inverse-CDF sampling from the row's distribution.
        double u = Generator::UniformD(gen.seed(), base + r), c = 0;
        int64_t pick = -1;
        for (int64_t j = 0; j < tk; ++j) {
          if (pp[r * tk + j] <= 0) continue;
          pick = j;
          c += pp[r * tk + j];
          if (u < c) break;
        }
        picks[r] = pick;
      }
      Shape is = scores.shape();
      is.erase(is.size() - 1);
      Tensor idx = Tensor::FromVector(picks, is);
      log_probs_.push_back(Gather(logp, -1, idx.Unsqueeze(-1)).Squeeze(-1));  // [..]
      return OneHot(idx, tk, scores.dtype());
    }
    case Mode::kGumbelStraightThrough: {
      Tensor u = Tensor::Rand(scores.shape(), gen, DType::kF64);
      // Gumbel(0, 1) noise; u is clamped away from 0 so the logs stay finite.
      Tensor gumbel = Neg(Log(Neg(Log(Clamp(u, 1e-20, 1.0 - 1e-12))))).To(scores.dtype());
      Tensor soft = Softmax(MulScalar(Add(scores, gumbel), 1.0 / tau), -1, mask);
      Tensor hard = OneHot(Argmax(soft.Detach(), -1), tk, scores.dtype());
      // Forward value: hard; gradient: that of soft.
      return Add(Sub(hard, soft.Detach()), soft);
    }
  }
  return Tensor();
}

Tensor HardAttention::ReinforceLoss(const Tensor& reward) {
  ATTEND_CHECK(mode == Mode::kReinforce, "HardAttention: ReinforceLoss needs Mode::kReinforce");
  ATTEND_CHECK(!log_probs_.empty(), "HardAttention: ReinforceLoss before any Weights call");
  const int64_t b = log_probs_[0].dim() == 0 ? 1 : log_probs_[0].size(0);
  ATTEND_CHECK(reward.defined() && reward.dim() == 1 && reward.size(0) == b,
               "HardAttention: reward ", reward.str(), " must be [", b, "] for log-probabilities ",
               log_probs_[0].str());
  // Sum of log p over every sample of each batch row: [B].
  Tensor total;
  for (const Tensor& lp : log_probs_) {
    ATTEND_CHECK(lp.dim() >= 1 && lp.size(0) == b, "HardAttention: samples ", lp.str(),
                 " do not share the batch size ", b);
    Tensor per_row = Sum(lp.Reshape({b, -1}), {1});
    total = total.defined() ? Add(total, per_row) : per_row;
  }
  Tensor r = reward.Detach().To(total.dtype());
  const double mean_reward = Mean(r.To(DType::kF64)).item();
  if (!baseline_initialized) {
    baseline = mean_reward;
    baseline_initialized = true;
  }
  Tensor advantage = AddScalar(r, -baseline);  // [B]
  Tensor loss = Neg(Mean(Mul(total, advantage)));
  baseline = baseline_decay * baseline + (1.0 - baseline_decay) * mean_reward;
  log_probs_.clear();
  return loss;
}

}  // namespace attend::attention
