// Vectorised small-batch GEMM on a weight packed once (layout and scalar twin in
// backend/cpu/reference/gemm_kernels.h, with PackWeight). Highway, dispatched at run time.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

// y [m x n] (row stride ldy) = x [m x k] (row stride ldx) @ w^T + bias (nullable). Panels are
// shared among OpenMP threads when the product is large enough to pay for a parallel region.
void PackedGemm(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed, int64_t n,
                const float* bias, float* y, int64_t ldy);

}  // namespace attend::cpu::simd
