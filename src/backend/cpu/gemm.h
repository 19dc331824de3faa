// The GEMM entry point, row-major C = alpha * op(A) @ op(B) + beta * C: f32 runs the project's
// own kernels (simd/gemm_kernels.cc) on large, small (attention heads) and thin (fewer than 8
// rows) products, the remaining mid-sized f32 ones and all f64 OpenBLAS (gemm.cc).
#pragma once

#include <cstdint>

namespace attend::cpu {

// With `bias` (n values, nullable) every row of C also gets bias added (x W^T + b in one call).
// With `sum_a` (m values, nullable) the sums of op(A)'s rows, unscaled, in
// ref::SumRowsOfOpA's order (the same bits on every path): g^T x with sum_a is a linear layer's
// weight gradient and its bias's, the f32 kernel summing g while it packs it.
template <typename T>
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias = nullptr,
          T* sum_a = nullptr);

}  // namespace attend::cpu
