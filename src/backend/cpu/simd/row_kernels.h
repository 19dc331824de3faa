// Vectorised f32 kernels over one contiguous row (Highway, dispatched once per call to the best
// target of this CPU). Each has the contract of its scalar twin in
// backend/cpu/reference/row_kernels.h.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

float Sum(const float* x, int64_t n);
float Max(const float* x, int64_t n);
float Min(const float* x, int64_t n);
// The softmax family (SoftmaxRow, SoftmaxGradRow's log branch, LogSumExpRow, ExpAffineRow) takes
// its exponentials with FastExp (math-inl.h; attention_kernels.h states its bound: within 1.5e-7
// relative of exp, 0 below e^-87): their arguments are x - max, x - lse or a log-probability, all
// <= 0. ExpAffineRow requires x - shift <= 88; y may be x (cross-entropy's gradient over its
// logits).
void SoftmaxRow(const float* x, float* y, int64_t n, bool log);
void SoftmaxGradRow(const float* y, const float* g, float* dx, int64_t n, bool log);
float LogSumExpRow(const float* x, int64_t n);
void ExpAffineRow(const float* x, float shift, float scale, float offset, float* y, int64_t n);
void LayerNormRow(const float* x, const float* gamma, const float* beta, float* y, int64_t n,
                  float eps, float* mean_out, float* rstd_out);
void LayerNormGradRow(const float* x, const float* g, const float* gamma, float mean, float rstd,
                      float* dx, float* dgamma, float* dbeta, int64_t n);

}  // namespace attend::cpu::simd
