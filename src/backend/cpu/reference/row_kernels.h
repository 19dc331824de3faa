// Scalar reference kernels over one contiguous row: reductions (sum, max, min, log-sum-exp),
// softmax and its gradient, layer norm and its gradient. The readable definition of each, used
// for f64, and the oracle the SIMD twins (backend/cpu/simd/row_kernels.h) are tested against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace attend::cpu::ref {

template <typename T>
T Sum(const T* x, int64_t n) {
  double acc = 0;  // the oracle accumulates in double
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  return static_cast<T>(acc);
}
template <typename T>
T Max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}
template <typename T>
T Min(const T* x, int64_t n) {
  T m = std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::min(m, x[i]);
  return m;
}

// One row of softmax (or log-softmax). A row whose max is -inf (every position masked) gives
// zeros (softmax) or -inf (log-softmax).
template <typename T>
void SoftmaxRow(const T* x, T* y, int64_t n, bool log) {
  T m = Max(x, n);
  if (m == -std::numeric_limits<T>::infinity()) {
    for (int64_t i = 0; i < n; ++i) y[i] = log ? m : T(0);
    return;
  }
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
  if (log) {
    T lse = m + static_cast<T>(std::log(s));
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] - lse;
  } else {
    for (int64_t i = 0; i < n; ++i)
      y[i] = static_cast<T>(std::exp(static_cast<double>(x[i] - m)) / s);
  }
}

// log(sum_i exp(x_i)) of one row, shifted by its max (-inf when every x_i is -inf): the
// normaliser of cross-entropy.
template <typename T>
T LogSumExpRow(const T* x, int64_t n) {
  const T m = Max(x, n);
  if (m == -std::numeric_limits<T>::infinity()) return m;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
  return m + static_cast<T>(std::log(s));
}

// y_i = scale * (exp(x_i - shift) - offset): cross-entropy's gradient row (softmax from the saved
// normaliser, minus label smoothing's uniform share). y may be x.
template <typename T>
void ExpAffineRow(const T* x, T shift, T scale, T offset, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = scale * (std::exp(x[i] - shift) - offset);
}

// Softmax: dx = y * (g - sum(g*y)); log-softmax: dx = g - exp(y) * sum(g). Positions with y == 0
// (softmax) or y == -inf (log-softmax) get zero.
template <typename T>
void SoftmaxGradRow(const T* y, const T* g, T* dx, int64_t n, bool log) {
  double s = 0;
  if (log) {
    for (int64_t i = 0; i < n; ++i) s += g[i];
    for (int64_t i = 0; i < n; ++i)
      dx[i] = y[i] == -std::numeric_limits<T>::infinity()
                  ? T(0)
                  : g[i] - std::exp(y[i]) * static_cast<T>(s);
  } else {
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * y[i];
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (g[i] - static_cast<T>(s));
  }
}

// One row of layer norm: y = (x - mean) * rstd * gamma + beta (gamma/beta may be null).
template <typename T>
void LayerNormRow(const T* x, const T* gamma, const T* beta, T* y, int64_t n, T eps, T* mean_out,
                  T* rstd_out) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= n;
  T rstd = static_cast<T>(1.0 / std::sqrt(var + eps));
  T m = static_cast<T>(mean);
  for (int64_t i = 0; i < n; ++i) {
    T v = (x[i] - m) * rstd;
    if (gamma) v *= gamma[i];
    if (beta) v += beta[i];
    y[i] = v;
  }
  *mean_out = m;
  *rstd_out = rstd;
}

// Backward of one layer-norm row. dgamma/dbeta (may be null) are accumulated into.
template <typename T>
void LayerNormGradRow(const T* x, const T* g, const T* gamma, T mean, T rstd, T* dx, T* dgamma,
                      T* dbeta, int64_t n) {
  double sum_gg = 0, sum_ggx = 0;
  for (int64_t i = 0; i < n; ++i) {
    T xhat = (x[i] - mean) * rstd;
    T gg = gamma ? g[i] * gamma[i] : g[i];
    sum_gg += gg;
    sum_ggx += gg * xhat;
    if (dgamma) dgamma[i] += g[i] * xhat;
    if (dbeta) dbeta[i] += g[i];
  }
  T a = static_cast<T>(sum_gg / n), b = static_cast<T>(sum_ggx / n);
  for (int64_t i = 0; i < n; ++i) {
    T xhat = (x[i] - mean) * rstd;
    T gg = gamma ? g[i] * gamma[i] : g[i];
    dx[i] = rstd * (gg - a - xhat * b);
  }
}

}  // namespace attend::cpu::ref
