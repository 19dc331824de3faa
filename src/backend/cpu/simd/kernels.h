// Vectorised f32 kernels (Highway, dispatched once per call to the best target of this CPU).
// Each has the same contract as its scalar twin in backend/cpu/reference/kernels.h.
#pragma once

#include <cstdint>

#include "backend/cpu/kernels.h"

namespace attend::cpu::simd {

// out[i] = a[a_scalar ? 0 : i] op b[b_scalar ? 0 : i]
void Binary(BinaryOp op, const float* a, bool a_scalar, const float* b, bool b_scalar, float* out,
            int64_t n);
void Unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1);
void UnaryGrad(UnaryGradOp op, const float* x, const float* y, const float* g, float* dx, int64_t n,
               float p0, float p1);
float Sum(const float* x, int64_t n);
float Max(const float* x, int64_t n);
float Min(const float* x, int64_t n);
void Accumulate(float* out, const float* x, int64_t n);
void SoftmaxRow(const float* x, float* y, int64_t n, bool log);
void SoftmaxGradRow(const float* y, const float* g, float* dx, int64_t n, bool log);
float LogSumExpRow(const float* x, int64_t n);
void ExpAffineRow(const float* x, float shift, float scale, float offset, float* y, int64_t n);
void LayerNormRow(const float* x, const float* gamma, const float* beta, float* y, int64_t n,
                  float eps, float* mean_out, float* rstd_out);
void LayerNormGradRow(const float* x, const float* g, const float* gamma, float mean, float rstd,
                      float* dx, float* dgamma, float* dbeta, int64_t n);
// The name of the instruction set the dispatcher picked (for benchmarks and logs).
const char* TargetName();

}  // namespace attend::cpu::simd
