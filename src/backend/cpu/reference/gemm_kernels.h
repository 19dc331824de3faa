// Scalar reference of the small-batch GEMM on a packed weight (simd/gemm_kernels.cc).
//
// Decoding multiplies a few rows (the live hypotheses) by a large, fixed weight (the output
// layer, 8000 x 256 in the default model) once per step. A BLAS copies ("packs") that weight into
// its own layout on every call, which costs as much as the arithmetic when the batch is small, so
// the weight is packed once instead: panels of kPackPanel output features, each panel holding the
// k input features of its kPackPanel rows column by column (packed[p][kk][j] = w[p*P + j][kk]),
// zero-padded past the last row.
#pragma once

#include <cstdint>

namespace attend::cpu {

inline constexpr int64_t kPackPanel = 32;

// Floats a packed [n x k] weight takes.
inline int64_t PackedSize(int64_t n, int64_t k) {
  return (n + kPackPanel - 1) / kPackPanel * kPackPanel * k;
}

// packed <- w [n x k] (row stride ldw): a layout change only, the same on every target.
inline void PackWeight(const float* w, int64_t n, int64_t k, int64_t ldw, float* packed) {
  for (int64_t p = 0; p * kPackPanel < n; ++p)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < kPackPanel; ++j) {
        const int64_t row = p * kPackPanel + j;
        packed[(p * k + kk) * kPackPanel + j] = row < n ? w[row * ldw + kk] : 0.0f;
      }
}

namespace ref {

// y [m x n] (row stride ldy) = x [m x k] (row stride ldx) @ w^T + bias (nullable), with w packed.
// Accumulates in double: the oracle for the f32 kernel.
inline void PackedGemm(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed,
                       int64_t n, const float* bias, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < n; ++c) {
      const float* panel = packed + (c / kPackPanel) * k * kPackPanel + c % kPackPanel;
      double s = bias ? bias[c] : 0.0;
      for (int64_t kk = 0; kk < k; ++kk)
        s += static_cast<double>(x[i * ldx + kk]) * panel[kk * kPackPanel];
      y[i * ldy + c] = static_cast<float>(s);
    }
}

// The sums of op(A)'s rows, sum[i] = sum over kk of op(A)[i][kk] (op = transpose when ta; A is
// [k x m] then), in the one order that every GEMM path that forms them keeps: kGemmSumGroup
// features at a time, each group summed from zero in order, then the groups' sums in order, from
// zero. simd::Gemm forms them while it packs a transposed A (a weight gradient's g^T, whose sums
// are the bias's gradient) in that order, so they are these bits for any number of threads.
inline constexpr int64_t kGemmSumGroup = 16;
template <typename T>
void SumRowsOfOpA(bool ta, int64_t m, int64_t k, const T* a, int64_t lda, T* sum) {
  for (int64_t i = 0; i < m; ++i) sum[i] = T(0);
  for (int64_t k0 = 0; k0 < k; k0 += kGemmSumGroup) {
    const int64_t k1 = k0 + kGemmSumGroup < k ? k0 + kGemmSumGroup : k;
    for (int64_t i = 0; i < m; ++i) {
      T group = T(0);
      for (int64_t kk = k0; kk < k1; ++kk) group += ta ? a[kk * lda + i] : a[i * lda + kk];
      sum[i] += group;
    }
  }
}

// Row-major C [m x n] = alpha * op(A) @ op(B) + beta * C (+ bias[j], when given) in double: the
// oracle for simd::Gemm. beta 0 never reads C.
inline void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                 const float* bias = nullptr) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t kk = 0; kk < k; ++kk)
        s += static_cast<double>(ta ? a[kk * lda + i] : a[i * lda + kk]) *
             static_cast<double>(tb ? b[j * ldb + kk] : b[kk * ldb + j]);
      const double prev = beta == 0.0f ? 0.0 : static_cast<double>(beta) * c[i * ldc + j];
      const double add = bias ? static_cast<double>(bias[j]) : 0.0;
      c[i * ldc + j] = static_cast<float>(static_cast<double>(alpha) * s + prev + add);
    }
}

}  // namespace ref
}  // namespace attend::cpu
