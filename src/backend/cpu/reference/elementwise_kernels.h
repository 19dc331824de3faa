// Scalar reference kernels, elementwise: binary and unary functions, their derivatives and
// accumulation. The readable definition of each, used for f64 and for strided operands, and the
// oracle the SIMD twins (backend/cpu/simd/elementwise_kernels.h) are tested against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "backend/cpu/op_codes.h"

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

// out[i] += x[i]
template <typename T>
void Accumulate(T* out, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += x[i];
}

}  // namespace attend::cpu::ref
