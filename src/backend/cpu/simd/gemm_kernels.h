// Vectorised small-batch GEMM on a weight packed once (layout and scalar twin in
// backend/cpu/reference/gemm_kernels.h, with PackWeight). Highway, dispatched at run time.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

// y [m x n] (row stride ldy) = x [m x k] (row stride ldx) @ w^T + bias (nullable). Panels are
// shared among OpenMP threads when the product is large enough to pay for a parallel region.
void PackedGemm(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed, int64_t n,
                const float* bias, float* y, int64_t ldy);

// Row-major C [m x n] = alpha * op(A) @ op(B) + beta * C (op = transpose when asked), as BLAS
// sgemm: op(B) is packed block by block (kKc features deep, kNc columns at a time), A is read in
// place (packed too when transposed). Threads share the panels of large products. beta 0 never
// reads C. With `bias` (n floats, nullable) the bias is added to every row: with beta 0 it is
// where each tile's accumulators start (a linear layer without a second pass over C). With
// `sum_a` (m floats, nullable) it also receives the sums of op(A)'s rows, unscaled, the bits of
// ref::SumRowsOfOpA: formed while a transposed A is packed (no second pass over A), otherwise by
// that function.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          const float* bias = nullptr, float* sum_a = nullptr);

// ref::SumRowsOfOpA's sums, the same bits: with a transposed A (a weight gradient's g^T) a
// vector of columns at a time, threaded over runs of columns; otherwise the reference itself.
void SumRowsOfOpA(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda, float* sum);

// The same product for small matrices (every dim at most kSmallGemmMax; larger ones go to Gemm):
// op(B) copied to the stack, no threads, no blocking. Beta 0 never reads C.
inline constexpr int64_t kSmallGemmMax = 64;
void SmallGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);

// Products too thin for the tiles, B read in place, nothing copied, no threads: fewer than
// kFewRows rows of C (A as it is or transposed with op(B) = B, A as it is with op(B) = B^T), or
// fewer than kFewRows features with op(B) = B. Returns false, doing nothing, for any other
// product. Beta 0 never reads C.
inline constexpr int64_t kFewRows = 8;
bool FewRowsGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc);

}  // namespace attend::cpu::simd
