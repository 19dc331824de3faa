// The GEMM entry point. f32 runs the project's own kernel (backend/cpu/simd/gemm_kernels.cc),
// which dispatches to the CPU's widest vectors; Debian's OpenBLAS 0.3.21 may run a narrower
// kernel family than the CPU has (Haswell's AVX2 sgemm on AVX-512 parts; the measured ratios
// are in docs/results.md). f64 (gradient checks, references) stays with OpenBLAS, so
// no other file includes cblas.h.
#include "backend/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>

#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/simd/gemm_kernels.h"

namespace attend::cpu {

namespace {
// OpenBLAS has no bias: with beta 0, C starts as the bias in every row and beta becomes 1
// (returns false); otherwise the caller adds the bias after the product (returns true).
template <typename T>
bool BiasBefore(int64_t m, int64_t n, const T* bias, T* beta, T* c, int64_t ldc) {
  if (!bias) return false;
  if (*beta != T(0)) return true;
  for (int64_t i = 0; i < m; ++i) std::copy(bias, bias + n, c + i * ldc);
  *beta = T(1);
  return false;
}
template <typename T>
void AddBias(int64_t m, int64_t n, const T* bias, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] += bias[j];
}
}  // namespace

template <>
void Gemm<float>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc, const float* bias, float* sum_a) {
  // Small products (attention heads of ~20 x 20 x 64, thin outputs) do not run it: its packing
  // and 32-column panels cost more than they save there (bench/bench_gemm: 0.2x OpenBLAS at
  // 20 x 20 x 64, 0.8x at 64^3, 1.6x at 128^3, one thread).
  if (n >= 16 && m * n * k >= (int64_t{1} << 19)) {
    simd::Gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, sum_a);
    return;
  }
  if (sum_a) simd::SumRowsOfOpA(trans_a, m, k, a, lda, sum_a);
  const bool bias_after = BiasBefore(m, n, bias, &beta, c, ldc);
  // Attention heads' products (8 or more rows, every dim at most 64: 20 x 21 x 32 in the
  // quickstart Transformer, tens of thousands per step) run the small kernel: OpenBLAS's fixed
  // costs per call were most of its time there (docs/results.md, issue 20, thirteenth pass).
  // Fewer rows (a decoder's single query) and rank-k updates of fewer than 8 features run a kernel
  // that copies nothing (copying op(B) would cost more than the product); OpenBLAS spent about
  // half its time on these in its copies (docs/results.md, issue 20, fourteenth pass).
  if (m >= 8 && m <= simd::kSmallGemmMax && n <= simd::kSmallGemmMax && k <= simd::kSmallGemmMax &&
      k > 0) {
    simd::SmallGemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else if (!simd::FewRowsGemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                beta, c, static_cast<int>(ldc));
  }
  if (bias_after) AddBias(m, n, bias, c, ldc);
}

template <>
void Gemm<double>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                  double* c, int64_t ldc, const double* bias, double* sum_a) {
  if (sum_a) ref::SumRowsOfOpA(trans_a, m, k, a, lda, sum_a);
  const bool bias_after = BiasBefore(m, n, bias, &beta, c, ldc);
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
  if (bias_after) AddBias(m, n, bias, c, ldc);
}

}  // namespace attend::cpu
