// The one place that picks a CPU kernel by element type: f32 runs the Highway kernels
// (backend/cpu/simd/, dispatched at run time to the best instruction set), f64 the scalar
// references (backend/cpu/reference/), which are also the oracles the SIMD kernels are tested
// against. Ops call cpu::Sum<T>(...) and never choose for themselves. Every function has the
// contract of its two twins.
#pragma once

#include <cstdint>
#include <type_traits>

#include "backend/cpu/reference/elementwise_kernels.h"
#include "backend/cpu/reference/pool_kernels.h"
#include "backend/cpu/reference/rnn_kernels.h"
#include "backend/cpu/reference/row_kernels.h"
#include "backend/cpu/simd/elementwise_kernels.h"
#include "backend/cpu/simd/pool_kernels.h"
#include "backend/cpu/simd/rnn_kernels.h"
#include "backend/cpu/simd/row_kernels.h"

namespace attend::cpu {

// Whether T has Highway kernels (f32 only; f64 keeps the exact scalar path).
template <typename T>
inline constexpr bool kHasSimd = std::is_same_v<T, float>;

// ---- elementwise (contiguous) ----
template <typename T>
void Unary(UnaryOp op, const T* x, T* y, int64_t n, T p0, T p1) {
  if constexpr (kHasSimd<T>) simd::Unary(op, x, y, n, p0, p1);
  else ref::Unary(op, x, 1, y, 1, n, p0, p1);
}
template <typename T>
void UnaryGrad(UnaryGradOp op, const T* x, const T* y, const T* g, T* dx, int64_t n, T p0, T p1) {
  if constexpr (kHasSimd<T>) simd::UnaryGrad(op, x, y, g, dx, n, p0, p1);
  else ref::UnaryGrad(op, x, y, g, dx, n, p0, p1);
}
template <typename T>
void Accumulate(T* out, const T* x, int64_t n) {  // out[i] += x[i]
  if constexpr (kHasSimd<T>) simd::Accumulate(out, x, n);
  else ref::Accumulate(out, x, n);
}

// ---- reductions over a row: T Name(const T* x, int64_t n) ----
#define ATTEND_ROW_REDUCTION(Name)                      \
  template <typename T>                                 \
  T Name(const T* x, int64_t n) {                       \
    if constexpr (kHasSimd<T>) return simd::Name(x, n); \
    else return ref::Name(x, n);                        \
  }
ATTEND_ROW_REDUCTION(Sum)
ATTEND_ROW_REDUCTION(Max)
ATTEND_ROW_REDUCTION(Min)
ATTEND_ROW_REDUCTION(LogSumExpRow)
#undef ATTEND_ROW_REDUCTION

// ---- row kernels: softmax, layer norm ----
template <typename T>
void SoftmaxRow(const T* x, T* y, int64_t n, bool log) {
  if constexpr (kHasSimd<T>) simd::SoftmaxRow(x, y, n, log);
  else ref::SoftmaxRow(x, y, n, log);
}
template <typename T>
void SoftmaxGradRow(const T* y, const T* g, T* dx, int64_t n, bool log) {
  if constexpr (kHasSimd<T>) simd::SoftmaxGradRow(y, g, dx, n, log);
  else ref::SoftmaxGradRow(y, g, dx, n, log);
}
template <typename T>
void ExpAffineRow(const T* x, T shift, T scale, T offset, T* y, int64_t n) {
  if constexpr (kHasSimd<T>) simd::ExpAffineRow(x, shift, scale, offset, y, n);
  else ref::ExpAffineRow(x, shift, scale, offset, y, n);
}
template <typename T>
void LayerNormRow(const T* x, const T* gamma, const T* beta, T* y, int64_t n, T eps, T* mean_out,
                  T* rstd_out) {
  if constexpr (kHasSimd<T>) simd::LayerNormRow(x, gamma, beta, y, n, eps, mean_out, rstd_out);
  else ref::LayerNormRow(x, gamma, beta, y, n, eps, mean_out, rstd_out);
}
template <typename T>
void LayerNormGradRow(const T* x, const T* g, const T* gamma, T mean, T rstd, T* dx, T* dgamma,
                      T* dbeta, int64_t n) {
  if constexpr (kHasSimd<T>) simd::LayerNormGradRow(x, g, gamma, mean, rstd, dx, dgamma, dbeta, n);
  else ref::LayerNormGradRow(x, g, gamma, mean, rstd, dx, dgamma, dbeta, n);
}

// ---- recurrent gates: one row of a GRU or LSTM step ----
template <typename T>
void LstmForwardRow(const T* xp, const T* hp, const T* bias, const T* c_prev, T* act, T* c_new,
                    T* tanh_c, T* h_new, int64_t h) {
  if constexpr (kHasSimd<T>)
    simd::LstmForwardRow(xp, hp, bias, c_prev, act, c_new, tanh_c, h_new, h);
  else ref::LstmForwardRow(xp, hp, bias, c_prev, act, c_new, tanh_c, h_new, h);
}
template <typename T>
void LstmBackwardRow(const T* act, const T* c_prev, const T* tanh_c, const T* dy, T* dh, T* dc,
                     T* dgates, int64_t h) {
  if constexpr (kHasSimd<T>) simd::LstmBackwardRow(act, c_prev, tanh_c, dy, dh, dc, dgates, h);
  else ref::LstmBackwardRow(act, c_prev, tanh_c, dy, dh, dc, dgates, h);
}
template <typename T>
void GruForwardRow(const T* xp, const T* hp, const T* bias_x, const T* bias_hn, const T* h_prev,
                   T* act, T* hn, T* h_new, int64_t h) {
  if constexpr (kHasSimd<T>)
    simd::GruForwardRow(xp, hp, bias_x, bias_hn, h_prev, act, hn, h_new, h);
  else ref::GruForwardRow(xp, hp, bias_x, bias_hn, h_prev, act, hn, h_new, h);
}
template <typename T>
void GruBackwardRow(const T* act, const T* hn, const T* h_prev, const T* dy, T* dh, T* dgx, T* dgh,
                    int64_t h) {
  if constexpr (kHasSimd<T>) simd::GruBackwardRow(act, hn, h_prev, dy, dh, dgx, dgh, h);
  else ref::GruBackwardRow(act, hn, h_prev, dy, dh, dgx, dgh, h);
}

// ---- 2x2 / stride-2 max pooling of one output row (outputs [0, n)) ----
template <typename T>
void MaxPool2x2Row(const T* r0, const T* r1, T* y, int64_t n) {
  if constexpr (kHasSimd<T>) simd::MaxPool2x2Row(r0, r1, y, n);
  else ref::MaxPool2x2RowScalar(r0, r1, y, 0, n);
}
template <typename T>
void MaxPool2x2GradRow(const T* r0, const T* r1, const T* g, T* d0, T* d1, int64_t n) {
  if constexpr (kHasSimd<T>) simd::MaxPool2x2GradRow(r0, r1, g, d0, d1, n);
  else ref::MaxPool2x2GradRowScalar(r0, r1, g, d0, d1, 0, n);
}

}  // namespace attend::cpu
