// Highway implementations of the f32 kernels over one contiguous row: reductions (sum, max, min,
// log-sum-exp), softmax and its gradient, layer norm and its gradient. Compiled once per target
// and dispatched at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/row_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include <algorithm>

#include "backend/cpu/simd/math-inl.h"

#include "backend/cpu/simd/row_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

float SumImpl(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  // Eight independent accumulators hide the add latency and keep two loads in flight per cycle.
  VF a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t i = 0;
  for (; i + 8 * N <= n; i += 8 * N) {
    a0 = hn::Add(a0, hn::LoadU(d, x + i));
    a1 = hn::Add(a1, hn::LoadU(d, x + i + N));
    a2 = hn::Add(a2, hn::LoadU(d, x + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(d, x + i + 3 * N));
    a4 = hn::Add(a4, hn::LoadU(d, x + i + 4 * N));
    a5 = hn::Add(a5, hn::LoadU(d, x + i + 5 * N));
    a6 = hn::Add(a6, hn::LoadU(d, x + i + 6 * N));
    a7 = hn::Add(a7, hn::LoadU(d, x + i + 7 * N));
  }
  for (; i + N <= n; i += N) a0 = hn::Add(a0, hn::LoadU(d, x + i));
  a0 =
      hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  float s = hn::GetLane(hn::SumOfLanes(d, a0));
  for (; i < n; ++i) s += x[i];
  return s;
}

float MaxImpl(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  VF m0 = hn::Set(d, -HUGE_VALF), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    m0 = hn::Max(m0, hn::LoadU(d, x + i));
    m1 = hn::Max(m1, hn::LoadU(d, x + i + N));
  }
  for (; i + N <= n; i += N) m0 = hn::Max(m0, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float MinImpl(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  VF m0 = hn::Set(d, HUGE_VALF);
  int64_t i = 0;
  for (; i + N <= n; i += N) m0 = hn::Min(m0, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MinOfLanes(d, m0));
  for (; i < n; ++i) m = x[i] < m ? x[i] : m;
  return m;
}

void SoftmaxRowImpl(const float* x, float* y, int64_t n, bool log) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const float m = MaxImpl(x, n);
  if (m == -HUGE_VALF) {
    for (int64_t i = 0; i < n; ++i) y[i] = log ? -HUGE_VALF : 0.0f;
    return;
  }
  const VF vm = hn::Set(d, m);
  VF acc = hn::Zero(d);
  int64_t i = 0;
  if (log) {
    for (; i + N <= n; i += N) acc = hn::Add(acc, FastExp(d, hn::Sub(hn::LoadU(d, x + i), vm)));
    float s = hn::GetLane(hn::SumOfLanes(d, acc));
    for (; i < n; ++i) s += std::exp(x[i] - m);
    const float lse = m + std::log(s);
    const VF vl = hn::Set(d, lse);
    for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Sub(hn::LoadU(d, x + i), vl), d, y + i);
    for (; i < n; ++i) y[i] = x[i] - lse;
    return;
  }
  for (; i + N <= n; i += N) {
    const VF e = FastExp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    acc = hn::Add(acc, e);
    hn::StoreU(e, d, y + i);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    s += y[i];
  }
  const float inv = 1.0f / s;
  const VF vinv = hn::Set(d, inv);
  for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, y + i), vinv), d, y + i);
  for (; i < n; ++i) y[i] *= inv;
}

float LogSumExpRowImpl(const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const float m = MaxImpl(x, n);
  if (m == -HUGE_VALF) return m;
  const VF vm = hn::Set(d, m);
  // Four accumulators: the adds of one would wait on each other.
  VF a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, FastExp(d, hn::Sub(hn::LoadU(d, x + i), vm)));
    a1 = hn::Add(a1, FastExp(d, hn::Sub(hn::LoadU(d, x + i + N), vm)));
    a2 = hn::Add(a2, FastExp(d, hn::Sub(hn::LoadU(d, x + i + 2 * N), vm)));
    a3 = hn::Add(a3, FastExp(d, hn::Sub(hn::LoadU(d, x + i + 3 * N), vm)));
  }
  for (; i + N <= n; i += N) a0 = hn::Add(a0, FastExp(d, hn::Sub(hn::LoadU(d, x + i), vm)));
  double s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
  return m + static_cast<float>(std::log(s));
}

void ExpAffineRowImpl(const float* x, float shift, float scale, float offset, float* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF vs = hn::Set(d, shift), vk = hn::Set(d, scale), vo = hn::Set(d, offset);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(vk, hn::Sub(FastExp(d, hn::Sub(hn::LoadU(d, x + i), vs)), vo)), d, y + i);
  for (; i < n; ++i) y[i] = scale * (std::exp(x[i] - shift) - offset);
}

void SoftmaxGradRowImpl(const float* y, const float* g, float* dx, int64_t n, bool log) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  VF acc = hn::Zero(d);
  int64_t i = 0;
  if (log) {
    const float s = SumImpl(g, n);
    const VF vs = hn::Set(d, s), ninf = hn::Set(d, -HUGE_VALF);
    for (; i + N <= n; i += N) {
      const VF vy = hn::LoadU(d, y + i);
      const VF r = hn::NegMulAdd(FastExp(d, vy), vs, hn::LoadU(d, g + i));
      hn::StoreU(hn::IfThenZeroElse(hn::Eq(vy, ninf), r), d, dx + i);
    }
    for (; i < n; ++i) dx[i] = y[i] == -HUGE_VALF ? 0.0f : g[i] - std::exp(y[i]) * s;
    return;
  }
  for (; i + N <= n; i += N) acc = hn::MulAdd(hn::LoadU(d, g + i), hn::LoadU(d, y + i), acc);
  float s = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) s += g[i] * y[i];
  const VF vs = hn::Set(d, s);
  for (i = 0; i + N <= n; i += N) {
    const VF vy = hn::LoadU(d, y + i);
    hn::StoreU(hn::Mul(vy, hn::Sub(hn::LoadU(d, g + i), vs)), d, dx + i);
  }
  for (; i < n; ++i) dx[i] = y[i] * (g[i] - s);
}

void LayerNormRowImpl(const float* x, const float* gamma, const float* beta, float* y, int64_t n,
                      float eps, float* mean_out, float* rstd_out) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  // Corrected two-pass moments (Chan, Golub and LeVeque): the f32 sum of a row far from zero
  // (values around 50) puts the first mean several ulps off, which shifts every output; the sum
  // of the residuals c = x - mean is small and exact enough to correct it, in the same pass as
  // the squares: mean += sum(c) / n, var = (sum(c^2) - sum(c)^2 / n) / n.
  const float mean0 = SumImpl(x, n) / static_cast<float>(n);
  const VF vm0 = hn::Set(d, mean0);
  VF acc = hn::Zero(d), acc_c = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF c = hn::Sub(hn::LoadU(d, x + i), vm0);
    acc = hn::MulAdd(c, c, acc);
    acc_c = hn::Add(acc_c, c);
  }
  float sq = hn::GetLane(hn::SumOfLanes(d, acc));
  float sc = hn::GetLane(hn::SumOfLanes(d, acc_c));
  for (; i < n; ++i) {
    const float c = x[i] - mean0;
    sq += c * c;
    sc += c;
  }
  const float mean = mean0 + sc / static_cast<float>(n);
  const float var = std::max(0.0f, (sq - sc * sc / static_cast<float>(n)) / static_cast<float>(n));
  const VF vm = hn::Set(d, mean);
  const float rstd = 1.0f / std::sqrt(var + eps);
  const VF vr = hn::Set(d, rstd);
  for (i = 0; i + N <= n; i += N) {
    VF v = hn::Mul(hn::Sub(hn::LoadU(d, x + i), vm), vr);
    if (gamma) v = hn::Mul(v, hn::LoadU(d, gamma + i));
    if (beta) v = hn::Add(v, hn::LoadU(d, beta + i));
    hn::StoreU(v, d, y + i);
  }
  for (; i < n; ++i) {
    float v = (x[i] - mean) * rstd;
    if (gamma) v *= gamma[i];
    if (beta) v += beta[i];
    y[i] = v;
  }
  *mean_out = mean;
  *rstd_out = rstd;
}

void LayerNormGradRowImpl(const float* x, const float* g, const float* gamma, float mean,
                          float rstd, float* dx, float* dgamma, float* dbeta, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF vm = hn::Set(d, mean), vr = hn::Set(d, rstd);
  VF sgg = hn::Zero(d), sggx = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF xhat = hn::Mul(hn::Sub(hn::LoadU(d, x + i), vm), vr);
    const VF vg = hn::LoadU(d, g + i);
    const VF gg = gamma ? hn::Mul(vg, hn::LoadU(d, gamma + i)) : vg;
    sgg = hn::Add(sgg, gg);
    sggx = hn::MulAdd(gg, xhat, sggx);
    if (dgamma) hn::StoreU(hn::MulAdd(vg, xhat, hn::LoadU(d, dgamma + i)), d, dgamma + i);
    if (dbeta) hn::StoreU(hn::Add(vg, hn::LoadU(d, dbeta + i)), d, dbeta + i);
  }
  float s_gg = hn::GetLane(hn::SumOfLanes(d, sgg)), s_ggx = hn::GetLane(hn::SumOfLanes(d, sggx));
  for (int64_t j = i; j < n; ++j) {
    const float xhat = (x[j] - mean) * rstd;
    const float gg = gamma ? g[j] * gamma[j] : g[j];
    s_gg += gg;
    s_ggx += gg * xhat;
    if (dgamma) dgamma[j] += g[j] * xhat;
    if (dbeta) dbeta[j] += g[j];
  }
  const float a = s_gg / static_cast<float>(n), b = s_ggx / static_cast<float>(n);
  const VF va = hn::Set(d, a), vb = hn::Set(d, b);
  for (i = 0; i + N <= n; i += N) {
    const VF xhat = hn::Mul(hn::Sub(hn::LoadU(d, x + i), vm), vr);
    const VF vg = hn::LoadU(d, g + i);
    const VF gg = gamma ? hn::Mul(vg, hn::LoadU(d, gamma + i)) : vg;
    hn::StoreU(hn::Mul(vr, hn::NegMulAdd(xhat, vb, hn::Sub(gg, va))), d, dx + i);
  }
  for (; i < n; ++i) {
    const float xhat = (x[i] - mean) * rstd;
    const float gg = gamma ? g[i] * gamma[i] : g[i];
    dx[i] = rstd * (gg - a - xhat * b);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(SumImpl);
HWY_EXPORT(MaxImpl);
HWY_EXPORT(MinImpl);
HWY_EXPORT(SoftmaxRowImpl);
HWY_EXPORT(SoftmaxGradRowImpl);
HWY_EXPORT(LogSumExpRowImpl);
HWY_EXPORT(ExpAffineRowImpl);
HWY_EXPORT(LayerNormRowImpl);
HWY_EXPORT(LayerNormGradRowImpl);

float Sum(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumImpl)(x, n); }
float Max(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MaxImpl)(x, n); }
float Min(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MinImpl)(x, n); }
float LogSumExpRow(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(LogSumExpRowImpl)(x, n);
}
void ExpAffineRow(const float* x, float shift, float scale, float offset, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(ExpAffineRowImpl)(x, shift, scale, offset, y, n);
}
void SoftmaxRow(const float* x, float* y, int64_t n, bool log) {
  HWY_DYNAMIC_DISPATCH(SoftmaxRowImpl)(x, y, n, log);
}
void SoftmaxGradRow(const float* y, const float* g, float* dx, int64_t n, bool log) {
  HWY_DYNAMIC_DISPATCH(SoftmaxGradRowImpl)(y, g, dx, n, log);
}
void LayerNormRow(const float* x, const float* gamma, const float* beta, float* y, int64_t n,
                  float eps, float* mean_out, float* rstd_out) {
  HWY_DYNAMIC_DISPATCH(LayerNormRowImpl)(x, gamma, beta, y, n, eps, mean_out, rstd_out);
}
void LayerNormGradRow(const float* x, const float* g, const float* gamma, float mean, float rstd,
                      float* dx, float* dgamma, float* dbeta, int64_t n) {
  HWY_DYNAMIC_DISPATCH(LayerNormGradRowImpl)(x, g, gamma, mean, rstd, dx, dgamma, dbeta, n);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
