// Vectorised f32 elementwise kernels (Highway, dispatched once per call to the best target of
// this CPU). Each has the contract of its scalar twin in
// backend/cpu/reference/elementwise_kernels.h.
#pragma once

#include <cstdint>

#include "backend/cpu/op_codes.h"

namespace attend::cpu::simd {

// out[i] = a[a_scalar ? 0 : i] op b[b_scalar ? 0 : i]
void Binary(BinaryOp op, const float* a, bool a_scalar, const float* b, bool b_scalar, float* out,
            int64_t n);
void Unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1);
void UnaryGrad(UnaryGradOp op, const float* x, const float* y, const float* g, float* dx, int64_t n,
               float p0, float p1);
void Accumulate(float* out, const float* x, int64_t n);
// The name of the instruction set the dispatcher picked (for benchmarks and logs).
const char* TargetName();

}  // namespace attend::cpu::simd
