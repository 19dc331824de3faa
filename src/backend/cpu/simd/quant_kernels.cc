// int8 (AVX512-VNNI) and bf16 (AVX512-BF16) decoding GEMMs. A tile is MR rows of the output x
// NP panels of 16 columns, its MR * NP sums in registers while the input features are walked
// once; per group of features (4 for int8, 2 for bf16) NP loads of 64 bytes of weight and MR
// broadcasts of the activations feed MR * NP dot-product instructions. Panel groups are the
// outer loop (a group of 4 panels at k = 256 is 16 KB of int8, L1-sized) and the rows of the
// activations, quantized once per call, stream past it.
#include "backend/cpu/simd/quant_kernels.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstring>
#include <vector>

#include "backend/cpu/reference/quant_kernels.h"
#include "backend/cpu/simd/quant_amx.h"

namespace attend::cpu::simd {
namespace {

constexpr int kMR = 6;  // rows per tile
constexpr int kNP = 4;  // panels per tile: 6 x 4 = 24 accumulators of the 32 registers

std::atomic<bool> force_scalar{false};
std::atomic<bool> avoid_amx{false};

bool CpuHas(bool vnni) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return vnni ? __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")
              : __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#else
  (void)vnni;
  return false;
#endif
}

// A parallel region costs microseconds: only for large products (as the f32 PackedGemm).
bool Threaded(int64_t m, int64_t n, int64_t k) { return m * n * k >= (int64_t{1} << 22); }

#if defined(__x86_64__)
#define ATTEND_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define ATTEND_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

// acc += the dot products, in place. GCC 12 copies the accumulator to a fresh register before
// each vpdpbusd / vdpbf16ps written with the intrinsics (the instructions overwrite their first
// operand), twice the instructions of the inner loop; the asm keeps the sums where they are.
ATTEND_VNNI inline void DotU8S8(__m512i& acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
}
ATTEND_BF16 inline void DotBf16(__m512& acc, __m512i a, __m512i b) {
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

inline __mmask16 ColumnMask(int64_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1);
}

// Rows [0, MR) of u (row stride kp bytes) against panels [0, NP) starting at `panel` (each
// k4 * 64 bytes); writes columns [0, cols) of y.
// QuantizeRowsU8 (reference/quant_kernels.h) with the same bytes: the largest magnitude is
// exact in any order, the scale is computed as there, and the conversion rounds to nearest even
// as nearbyint does (the default MXCSR mode).
ATTEND_VNNI void QuantizeRowsU8Avx512(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* u,
                                      float* scale) {
  const int64_t kp = Int8Groups(k) * 4;
  for (int64_t r = 0; r < m; ++r) {
    const float* row = x + r * ldx;
    __m512 vmax = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= k; c += 16)
      vmax = _mm512_maskz_max_ps(0xffff, vmax, _mm512_abs_ps(_mm512_loadu_ps(row + c)));
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, vmax);
    float amax = 0.0f;
    for (float v : lanes) amax = std::max(amax, v);
    for (; c < k; ++c) amax = std::max(amax, std::fabs(row[c]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127),
                  shift = _mm512_set1_epi32(128);
    uint8_t* out = u + r * kp;
    for (c = 0; c + 16 <= k; c += 16) {
      __m512i q = _mm512_maskz_cvtps_epi32(0xffff, _mm512_mul_ps(_mm512_loadu_ps(row + c), vinv));
      q = _mm512_maskz_min_epi32(0xffff, _mm512_maskz_max_epi32(0xffff, q, lo), hi);
      q = _mm512_add_epi32(q, shift);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), _mm512_maskz_cvtepi32_epi8(0xffff, q));
    }
    for (; c < k; ++c) {
      const float v = std::clamp(std::nearbyint(row[c] * inv), -127.0f, 127.0f);
      out[c] = static_cast<uint8_t>(static_cast<int32_t>(v) + 128);
    }
    for (c = k; c < kp; ++c) out[c] = 128;
    scale[r] = s;
  }
}

template <int MR, int NP>
ATTEND_VNNI inline void Int8Tile(const uint8_t* u, int64_t kp, const float* xscale, int64_t k4,
                                 const int8_t* panel, const float* wscale, const int32_t* colsum,
                                 const float* bias, float* y, int64_t ldy, int64_t cols) {
  __m512i acc[MR][NP];
#pragma GCC unroll 24
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_setzero_si512();
  for (int64_t g = 0; g < k4; ++g) {
    __m512i w[NP];
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) w[q] = _mm512_loadu_si512(panel + (q * k4 + g) * 64);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      int32_t four;
      std::memcpy(&four, u + r * kp + g * 4, 4);
      const __m512i xb = _mm512_set1_epi32(four);
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) DotU8S8(acc[r][q], xb, w[q]);
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < NP; ++q) {
    const int64_t c0 = q * 16;
    const __mmask16 mask = ColumnMask(cols - c0);
    const __m512 ws = _mm512_maskz_loadu_ps(mask, wscale + c0);
    // The maskz forms: GCC 12 warns about the plain ones' undefined source (a false positive).
    const __m512i shift =
        _mm512_maskz_slli_epi32(0xffff, _mm512_maskz_loadu_epi32(mask, colsum + c0), 7);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + c0) : _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m512 v = _mm512_maskz_cvtepi32_ps(0xffff, _mm512_sub_epi32(acc[r][q], shift));
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(xscale[r]), ws);
      _mm512_mask_storeu_ps(y + r * ldy + c0, mask, _mm512_fmadd_ps(v, scale, b));
    }
  }
}

template <int MR, int NP>
ATTEND_VNNI void Int8Rows(int64_t m, const uint8_t* u, int64_t kp, const float* xscale, int64_t k4,
                          const int8_t* panel, const float* wscale, const int32_t* colsum,
                          const float* bias, float* y, int64_t ldy, int64_t cols) {
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    Int8Tile<MR, NP>(u + i * kp, kp, xscale + i, k4, panel, wscale, colsum, bias, y + i * ldy, ldy,
                     cols);
  if constexpr (MR > 1) {
    if (i < m)
      Int8Rows<MR - 1, NP>(m - i, u + i * kp, kp, xscale + i, k4, panel, wscale, colsum, bias,
                           y + i * ldy, ldy, cols);
  }
}

ATTEND_VNNI void Int8GemmVnni(const uint8_t* u, const float* xscale, int64_t m, int64_t k,
                              const int8_t* packed, const float* wscale, const int32_t* colsum,
                              int64_t n, const float* bias, float* y, int64_t ldy) {
  const int64_t k4 = Int8Groups(k), kp = k4 * 4, panels = QuantPanels(n);
  const int64_t groups = (panels + kNP - 1) / kNP;
#pragma omp parallel for schedule(static) if (Threaded(m, n, k))
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t p0 = gi * kNP, np = std::min<int64_t>(kNP, panels - p0), c0 = p0 * 16;
    const int8_t* panel = packed + p0 * k4 * 64;
    const float* b = bias ? bias + c0 : nullptr;
    const int64_t cols = std::min<int64_t>(np * 16, n - c0);
    if (np == kNP) {
      Int8Rows<kMR, kNP>(m, u, kp, xscale, k4, panel, wscale + c0, colsum + c0, b, y + c0, ldy,
                         cols);
    } else {
      for (int64_t q = 0; q < np; ++q)
        Int8Rows<kMR, 1>(m, u, kp, xscale, k4, panel + q * k4 * 64, wscale + c0 + q * 16,
                         colsum + c0 + q * 16, b ? b + q * 16 : nullptr, y + c0 + q * 16, ldy,
                         std::min<int64_t>(16, n - c0 - q * 16));
    }
  }
}

template <int MR, int NP>
ATTEND_BF16 inline void Bf16Tile(const uint16_t* x, int64_t kp, int64_t k2, const uint16_t* panel,
                                 const float* bias, float* y, int64_t ldy, int64_t cols) {
  __m512 acc[MR][NP];
#pragma GCC unroll 24
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_setzero_ps();
  for (int64_t g = 0; g < k2; ++g) {
    __m512i w[NP];
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) w[q] = _mm512_loadu_si512(panel + (q * k2 + g) * 32);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      int32_t two;
      std::memcpy(&two, x + r * kp + g * 2, 4);
      const __m512i xb = _mm512_set1_epi32(two);
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) DotBf16(acc[r][q], xb, w[q]);
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < NP; ++q) {
    const int64_t c0 = q * 16;
    const __mmask16 mask = ColumnMask(cols - c0);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + c0) : _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r)
      _mm512_mask_storeu_ps(y + r * ldy + c0, mask, bias ? _mm512_add_ps(acc[r][q], b) : acc[r][q]);
  }
}

template <int MR, int NP>
ATTEND_BF16 void Bf16Rows(int64_t m, const uint16_t* x, int64_t kp, int64_t k2,
                          const uint16_t* panel, const float* bias, float* y, int64_t ldy,
                          int64_t cols) {
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    Bf16Tile<MR, NP>(x + i * kp, kp, k2, panel, bias, y + i * ldy, ldy, cols);
  if constexpr (MR > 1) {
    if (i < m) Bf16Rows<MR - 1, NP>(m - i, x + i * kp, kp, k2, panel, bias, y + i * ldy, ldy, cols);
  }
}

ATTEND_BF16 void Bf16GemmAvx512(const uint16_t* x, int64_t m, int64_t k, const uint16_t* packed,
                                int64_t n, const float* bias, float* y, int64_t ldy) {
  const int64_t k2 = Bf16Groups(k), kp = k2 * 2, panels = QuantPanels(n);
  const int64_t groups = (panels + kNP - 1) / kNP;
#pragma omp parallel for schedule(static) if (Threaded(m, n, k))
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t p0 = gi * kNP, np = std::min<int64_t>(kNP, panels - p0), c0 = p0 * 16;
    const uint16_t* panel = packed + p0 * k2 * 32;
    const float* b = bias ? bias + c0 : nullptr;
    if (np == kNP) {
      Bf16Rows<kMR, kNP>(m, x, kp, k2, panel, b, y + c0, ldy, std::min<int64_t>(64, n - c0));
    } else {
      for (int64_t q = 0; q < np; ++q)
        Bf16Rows<kMR, 1>(m, x, kp, k2, panel + q * k2 * 32, b ? b + q * 16 : nullptr,
                         y + c0 + q * 16, ldy, std::min<int64_t>(16, n - c0 - q * 16));
    }
  }
}
#endif  // __x86_64__

}  // namespace

bool HasInt8Kernel() {
  static const bool has = CpuHas(true);
  return has;
}

bool HasBf16Kernel() {
  static const bool has = CpuHas(false);
  return has;
}

bool HasAmxInt8Kernel() { return amx::HasInt8(); }
bool HasAmxBf16Kernel() { return amx::HasBf16(); }

bool Int8UsesAmx(int64_t m, int64_t k) {
  return m >= kAmxInt8MinRows && Int8Groups(k) % amx::kTileGroups == 0 && HasInt8Kernel() &&
         amx::HasInt8() && !force_scalar.load(std::memory_order_relaxed) &&
         !avoid_amx.load(std::memory_order_relaxed);
}

bool Bf16UsesAmx(int64_t m, int64_t k) {
  return m >= kAmxBf16MinRows && Bf16Groups(k) % amx::kTileGroups == 0 && HasBf16Kernel() &&
         amx::HasBf16() && !force_scalar.load(std::memory_order_relaxed) &&
         !avoid_amx.load(std::memory_order_relaxed);
}

void Int8Gemm(const float* x, int64_t m, int64_t k, int64_t ldx, const int8_t* packed,
              const float* wscale, const int32_t* colsum, int64_t n, const float* bias, float* y,
              int64_t ldy) {
  static thread_local std::vector<uint8_t> u;
  static thread_local std::vector<float> xscale;
  const int64_t kp = Int8Groups(k) * 4;
#if defined(__x86_64__)
  if (Int8UsesAmx(m, k)) {
    // The tiles read whole tiles of rows: the rows past m hold zeros (128) and are discarded.
    const int64_t rows = amx::AmxRows(m);
    u.resize(static_cast<size_t>(rows * kp));
    xscale.resize(static_cast<size_t>(m));
    QuantizeRowsU8Avx512(x, m, k, ldx, u.data(), xscale.data());
    std::memset(u.data() + m * kp, 128, static_cast<size_t>((rows - m) * kp));
    amx::Int8Gemm(u.data(), xscale.data(), m, kp / 4, packed, wscale, colsum, n, bias, y, ldy);
    return;
  }
#endif
  u.resize(static_cast<size_t>(m * kp));
  xscale.resize(static_cast<size_t>(m));
#if defined(__x86_64__)
  if (HasInt8Kernel() && !force_scalar.load(std::memory_order_relaxed)) {
    QuantizeRowsU8Avx512(x, m, k, ldx, u.data(), xscale.data());
    Int8GemmVnni(u.data(), xscale.data(), m, k, packed, wscale, colsum, n, bias, y, ldy);
    return;
  }
#endif
  QuantizeRowsU8(x, m, k, ldx, u.data(), xscale.data());
  ref::Int8Gemm(u.data(), xscale.data(), m, k, packed, wscale, colsum, n, bias, y, ldy);
}

void Bf16Gemm(const float* x, int64_t m, int64_t k, int64_t ldx, const uint16_t* packed, int64_t n,
              const float* bias, float* y, int64_t ldy) {
  static thread_local std::vector<uint16_t> b;
  const int64_t kp = Bf16Groups(k) * 2;
#if defined(__x86_64__)
  if (Bf16UsesAmx(m, k)) {
    const int64_t rows = amx::AmxRows(m);
    b.resize(static_cast<size_t>(rows * kp));
    RowsToBf16(x, m, k, ldx, b.data());
    std::fill(b.begin() + m * kp, b.begin() + rows * kp, uint16_t{0});
    amx::Bf16Gemm(b.data(), m, kp / 2, packed, n, bias, y, ldy);
    return;
  }
#endif
  b.resize(static_cast<size_t>(m * kp));
  RowsToBf16(x, m, k, ldx, b.data());
#if defined(__x86_64__)
  if (HasBf16Kernel() && !force_scalar.load(std::memory_order_relaxed)) {
    Bf16GemmAvx512(b.data(), m, k, packed, n, bias, y, ldy);
    return;
  }
#endif
  ref::Bf16Gemm(b.data(), m, k, packed, n, bias, y, ldy);
}

ForceScalarQuantKernels::ForceScalarQuantKernels() : previous_(force_scalar.exchange(true)) {}
ForceScalarQuantKernels::~ForceScalarQuantKernels() { force_scalar.store(previous_); }

AvoidAmxKernels::AvoidAmxKernels() : previous_(avoid_amx.exchange(true)) {}
AvoidAmxKernels::~AvoidAmxKernels() { avoid_amx.store(previous_); }

}  // namespace attend::cpu::simd
