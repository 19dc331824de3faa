// Scalar reference kernels: the readable definition of each CPU kernel, used for f64 and for
// strided operands, and the oracle the SIMD kernels are tested against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "backend/cpu/kernels.h"

namespace attend::cpu::ref {

template <typename T>
inline T ApplyBinary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
  }
  return T(0);
}

// out[i] = a[i*sa] op b[i*sb]
template <typename T>
void Binary(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t so,
            int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i * so] = ApplyBinary(op, a[i * sa], b[i * sb]);
}

template <typename T>
inline T Gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
}
template <typename T>
inline T GeluGrad(T x) {
  T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
  T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);
  return cdf + x * pdf;
}
template <typename T>
inline T Sigmoid(T x) {
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

template <typename T>
inline T ApplyUnary(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kAbs: return std::abs(x);
    case UnaryOp::kExp: return std::exp(x);
    case UnaryOp::kLog: return std::log(x);
    case UnaryOp::kSqrt: return std::sqrt(x);
    case UnaryOp::kRsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::kTanh: return std::tanh(x);
    case UnaryOp::kSigmoid: return Sigmoid(x);
    case UnaryOp::kRelu: return x > T(0) ? x : T(0);
    case UnaryOp::kGelu: return Gelu(x);
    case UnaryOp::kPow: return std::pow(x, p0);
    case UnaryOp::kClamp: return std::min(std::max(x, p0), p1);
    case UnaryOp::kAddScalar: return x + p0;
    case UnaryOp::kMulScalar: return x * p0;
  }
  return T(0);
}

template <typename T>
void Unary(UnaryOp op, const T* x, int64_t sx, T* y, int64_t sy, int64_t n, T p0, T p1) {
  for (int64_t i = 0; i < n; ++i) y[i * sy] = ApplyUnary(op, x[i * sx], p0, p1);
}

template <typename T>
inline T ApplyUnaryGrad(UnaryGradOp op, T x, T y, T g, T p0, T p1) {
  switch (op) {
    case UnaryGradOp::kAbs: return x > 0 ? g : (x < 0 ? -g : T(0));
    case UnaryGradOp::kExp: return g * y;
    case UnaryGradOp::kLog: return g / x;
    case UnaryGradOp::kSqrt: return g / (T(2) * y);
    case UnaryGradOp::kRsqrt: return g * T(-0.5) * y * y * y;
    case UnaryGradOp::kTanh: return g * (T(1) - y * y);
    case UnaryGradOp::kSigmoid: return g * y * (T(1) - y);
    case UnaryGradOp::kRelu: return x > T(0) ? g : T(0);
    case UnaryGradOp::kGelu: return g * GeluGrad(x);
    case UnaryGradOp::kPow: return p0 == T(0) ? T(0) : g * p0 * std::pow(x, p0 - T(1));
    case UnaryGradOp::kClamp: return (x >= p0 && x <= p1) ? g : T(0);
  }
  return T(0);
}

// dx[i] = g[i] * f'(x[i] or y[i]); x or y may be null when the op does not use it.
template <typename T>
void UnaryGrad(UnaryGradOp op, const T* x, const T* y, const T* g, T* dx, int64_t n, T p0, T p1) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] = ApplyUnaryGrad(op, x ? x[i] : T(0), y ? y[i] : T(0), g[i], p0, p1);
}

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
// out[i] += x[i]
template <typename T>
void Accumulate(T* out, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += x[i];
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
// normaliser, minus label smoothing's uniform share).
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
