// 8 x 8 blocks of floats transposed in AVX registers, shared by the GEMM's packing of transposed
// operands and the fused attention's packing of k^T and v^T. Included by each kernel .cc after
// hwy/highway.h, once per target (Highway's -inl.h convention, as math-inl.h).

// Per-target include guard: toggled by foreach_target.h for each target it compiles.
#if defined(ATTEND_BACKEND_CPU_SIMD_TRANSPOSE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTEND_BACKEND_CPU_SIMD_TRANSPOSE_INL_H_
#undef ATTEND_BACKEND_CPU_SIMD_TRANSPOSE_INL_H_
#else
#define ATTEND_BACKEND_CPU_SIMD_TRANSPOSE_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// r[i][j] <- r[j][i]: an 8 x 8 block of floats transposed in registers (unpacks of 32-bit
// elements, shuffles of 64-bit pairs within 128-bit lanes, then the lanes exchanged).
HWY_INLINE void Transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // u[c] (c < 4) holds, in 128-bit lane l, column 4 l + c of rows 0-3; u[4 + c] that of rows 4-7.
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// dst[kk * ldd + j] = alpha * src[j * lds + kk] for j < 8, kk < kb: 8 stored rows become 8
// columns, 8 x 8 blocks transposed in registers, the last kb % 8 features one at a time.
HWY_INLINE void TransposeRows8(const float* src, int64_t lds, int64_t kb, float alpha, float* dst,
                               int64_t ldd) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t kk = 0;
  for (; kk + 8 <= kb; kk += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(va, _mm256_loadu_ps(src + i * lds + kk));
    Transpose8(r);
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (kk + i) * ldd, r[i]);
  }
  for (; kk < kb; ++kk)
    for (int64_t j = 0; j < 8; ++j) dst[kk * ldd + j] = alpha * src[j * lds + kk];
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#endif  // ATTEND_BACKEND_CPU_SIMD_TRANSPOSE_INL_H_ (per target)
