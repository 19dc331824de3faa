// int8 and bf16 decoding GEMMs: AVX512-VNNI / AVX512-BF16 where the CPU has them, AVX2 where it
// has only that. A tile is MR rows of the output x NP panels of 16 columns, its MR * NP sums in
// registers while the input features are walked once; per group of features (4 for int8, 2 for
// bf16) NP loads of 64 bytes of weight and MR broadcasts of the activations feed MR * NP
// dot-product instructions (on AVX2, two registers of 8 columns per panel and a short sequence
// each, below). Panel groups are the outer loop (a group of 4 panels at k = 256 is 16 KB of
// int8, L1-sized) and the rows of the activations, converted once per call, stream past it.
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
// A single row (greedy decoding of one sentence) goes through the panels one at a time, as the
// AVX2 kernel does: its product is a read of the weights, and one stream of them is read faster
// than four streams 4 KB apart (Zen 4, int8 1 x 8000 x 256 from L3: 44.3 -> 31.2 us, below the
// AVX2 kernel's 38.5; docs/results.md issue 20). Same sums in the same order either way.

std::atomic<bool> force_scalar{false};
std::atomic<bool> avoid_amx{false};
std::atomic<bool> avx2_only{false};

bool CpuHasAvx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

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
    if (np == kNP && m > 1) {  // one row: panel by panel (see kNP)
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
    if (np == kNP && m > 1) {  // one row: panel by panel (see kNP)
      Bf16Rows<kMR, kNP>(m, x, kp, k2, panel, b, y + c0, ldy, std::min<int64_t>(64, n - c0));
    } else {
      for (int64_t q = 0; q < np; ++q)
        Bf16Rows<kMR, 1>(m, x, kp, k2, panel + q * k2 * 32, b ? b + q * 16 : nullptr,
                         y + c0 + q * 16, ldy, std::min<int64_t>(16, n - c0 - q * 16));
    }
  }
}

// AVX2 (with FMA), for the CPUs without AVX-512: Zen 1-3, Intel's client cores. A 256-bit
// register holds 8 columns' sums, so a 16-column panel is two of them; 16 registers in all.
#define ATTEND_AVX2 __attribute__((target("avx2,fma")))

constexpr int kMR2 = 4;  // rows per AVX2 tile: 4 x 2 sums, 2 weights, 2 activations, 2 products

// Lanes [0, cols) of 8 (cols clamped to [0, 8]), as the mask of the maskload/maskstore forms.
ATTEND_AVX2 inline __m256i LaneMask8(int64_t cols) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(cols, 0, 8))),
                            iota);
}

// round(x[0, 8) * inv) clamped to [lo, hi], in int32 lanes (the conversion rounds to nearest even
// in the default MXCSR mode, as nearbyint).
ATTEND_AVX2 inline __m256i Quantize8(const float* x, __m256 inv, __m256i lo, __m256i hi) {
  const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), inv));
  return _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
}

// AVX2 has no u8 x s8 product summed in int32 (vpdpbusd). vpmaddubsw multiplies u8 by s8 and adds
// pairs into int16, saturating: with u = q + 128 (up to 255) a pair of products can reach 64,770.
// So this kernel takes the signed activation q (|q| <= 127) and moves its sign onto the weight:
// q * w = |q| * (w * sign(q)) (vpsignb; zero where q is), whose pairs stay within 2 * 127 * 127 =
// 32,258, exact in int16; vpmaddwd by ones then sums the pairs into int32. The sum is
// sum_k q * w = sum_k u * w - 128 colsum exactly, the integer the scalar twin finishes with.
// QuantizeRowsS8Avx2 writes q and |q| (the same rounding as QuantizeRowsU8: the largest magnitude
// is exact in any order, the scale computed as there, the conversion to nearest even).
ATTEND_AVX2 void QuantizeRowsS8Avx2(const float* x, int64_t m, int64_t k, int64_t ldx, int8_t* q,
                                    uint8_t* qabs, float* scale) {
  const int64_t kp = Int8Groups(k) * 4;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t r = 0; r < m; ++r) {
    const float* row = x + r * ldx;
    __m256 vmax = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= k; c += 8)
      vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(row + c)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, vmax);
    float amax = 0.0f;
    for (float v : lanes) amax = std::max(amax, v);
    for (; c < k; ++c) amax = std::max(amax, std::fabs(row[c]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    const __m256 vinv = _mm256_set1_ps(inv);
    int8_t* out = q + r * kp;
    for (c = 0; c + 32 <= k; c += 32) {
      // Packing narrows within 128-bit lanes; the permutation puts the four quarters in order.
      const __m256i p01 = _mm256_packs_epi32(Quantize8(row + c, vinv, lo, hi),
                                             Quantize8(row + c + 8, vinv, lo, hi));
      const __m256i p23 = _mm256_packs_epi32(Quantize8(row + c + 16, vinv, lo, hi),
                                             Quantize8(row + c + 24, vinv, lo, hi));
      const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), bytes);
    }
    for (; c < k; ++c) {
      const float v = std::clamp(std::nearbyint(row[c] * inv), -127.0f, 127.0f);
      out[c] = static_cast<int8_t>(v);
    }
    for (c = k; c < kp; ++c) out[c] = 0;
    for (c = 0; c < kp; ++c) qabs[r * kp + c] = static_cast<uint8_t>(out[c] < 0 ? -out[c] : out[c]);
    scale[r] = s;
  }
}

// acc += v in place: as DotU8S8, GCC 12 otherwise adds into a fresh register and copies it back
// (and spilled three of the tile's eight sums to the stack).
ATTEND_AVX2 inline void AddInPlace(__m256i& acc, __m256i v) {
  asm("vpaddd %1, %0, %0" : "+x"(acc) : "x"(v));
}

// Not inlined: each row count gets a register allocation of its own (inlined into the loop
// below, the 1-3 row tiles kept their sums in memory, a store and a load per step).
template <int MR>
ATTEND_AVX2 __attribute__((noinline)) void Int8TileAvx2(const int8_t* q, const uint8_t* qabs,
                                                        int64_t kp, const float* xscale, int64_t k4,
                                                        const int8_t* panel, const float* wscale,
                                                        const float* bias, float* y, int64_t ldy,
                                                        int64_t cols) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < k4; ++g) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * 64));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * 64 + 32));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      int32_t four_q, four_abs;
      std::memcpy(&four_q, q + r * kp + g * 4, 4);
      std::memcpy(&four_abs, qabs + r * kp + g * 4, 4);
      const __m256i sq = _mm256_set1_epi32(four_q), aq = _mm256_set1_epi32(four_abs);
      const __m256i p0 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(w0, sq));
      const __m256i p1 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(w1, sq));
      AddInPlace(acc[r][0], _mm256_madd_epi16(p0, ones));
      AddInPlace(acc[r][1], _mm256_madd_epi16(p1, ones));
    }
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const int64_t c0 = h * 8;
    const __m256i mask = LaneMask8(cols - c0);
    const __m256 ws = _mm256_maskload_ps(wscale + c0, mask);
    const __m256 b = bias ? _mm256_maskload_ps(bias + c0, mask) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256 v = _mm256_cvtepi32_ps(acc[r][h]);
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(xscale[r]), ws);
      _mm256_maskstore_ps(y + r * ldy + c0, mask, _mm256_fmadd_ps(v, scale, b));
    }
  }
}

template <int MR>
ATTEND_AVX2 void Int8RowsAvx2(int64_t m, const int8_t* q, const uint8_t* qabs, int64_t kp,
                              const float* xscale, int64_t k4, const int8_t* panel,
                              const float* wscale, const float* bias, float* y, int64_t ldy,
                              int64_t cols) {
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    Int8TileAvx2<MR>(q + i * kp, qabs + i * kp, kp, xscale + i, k4, panel, wscale, bias,
                     y + i * ldy, ldy, cols);
  if constexpr (MR > 1) {
    if (i < m)
      Int8RowsAvx2<MR - 1>(m - i, q + i * kp, qabs + i * kp, kp, xscale + i, k4, panel, wscale,
                           bias, y + i * ldy, ldy, cols);
  }
}

ATTEND_AVX2 void Int8GemmAvx2(const int8_t* q, const uint8_t* qabs, const float* xscale, int64_t m,
                              int64_t k, const int8_t* packed, const float* wscale, int64_t n,
                              const float* bias, float* y, int64_t ldy) {
  const int64_t k4 = Int8Groups(k), kp = k4 * 4, panels = QuantPanels(n);
#pragma omp parallel for schedule(static) if (Threaded(m, n, k))
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t c0 = p * kQuantPanel;
    Int8RowsAvx2<kMR2>(m, q, qabs, kp, xscale, k4, packed + p * k4 * 64, wscale + c0,
                       bias ? bias + c0 : nullptr, y + c0, ldy,
                       std::min<int64_t>(kQuantPanel, n - c0));
  }
}

// bf16 on AVX2: each 32-bit lane of a panel's group holds a column's two features (the even one
// in the low half), so the odd feature is the lane with its low half cleared and the even one the
// lane shifted up by 16: both exact f32. The activations come as f32 values of their bf16
// (RowsToBf16's rounding). Per group, as vdpbf16ps and the scalar twin: acc += x_odd * w_odd,
// then acc += x_even * w_even, each product of two bf16 exact in f32, so the fused multiply-add
// rounds once where the twin rounds its sum once.
template <int MR>
ATTEND_AVX2 __attribute__((noinline)) void Bf16TileAvx2(const float* x, int64_t kp, int64_t k2,
                                                        const uint16_t* panel, const float* bias,
                                                        float* y, int64_t ldy, int64_t cols) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int64_t g = 0; g < k2; ++g) {
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * 32));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * 32 + 16));
    const __m256 odd0 = _mm256_castsi256_ps(_mm256_and_si256(v0, high));
    const __m256 odd1 = _mm256_castsi256_ps(_mm256_and_si256(v1, high));
    const __m256 even0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));
    const __m256 even1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256 xo = _mm256_broadcast_ss(x + r * kp + g * 2 + 1);
      const __m256 xe = _mm256_broadcast_ss(x + r * kp + g * 2);
      acc[r][0] = _mm256_fmadd_ps(xe, even0, _mm256_fmadd_ps(xo, odd0, acc[r][0]));
      acc[r][1] = _mm256_fmadd_ps(xe, even1, _mm256_fmadd_ps(xo, odd1, acc[r][1]));
    }
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const int64_t c0 = h * 8;
    const __m256i mask = LaneMask8(cols - c0);
    const __m256 b = bias ? _mm256_maskload_ps(bias + c0, mask) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
      _mm256_maskstore_ps(y + r * ldy + c0, mask, bias ? _mm256_add_ps(acc[r][h], b) : acc[r][h]);
  }
}

template <int MR>
ATTEND_AVX2 void Bf16RowsAvx2(int64_t m, const float* x, int64_t kp, int64_t k2,
                              const uint16_t* panel, const float* bias, float* y, int64_t ldy,
                              int64_t cols) {
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    Bf16TileAvx2<MR>(x + i * kp, kp, k2, panel, bias, y + i * ldy, ldy, cols);
  if constexpr (MR > 1) {
    if (i < m) Bf16RowsAvx2<MR - 1>(m - i, x + i * kp, kp, k2, panel, bias, y + i * ldy, ldy, cols);
  }
}

ATTEND_AVX2 void Bf16GemmAvx2(const float* x, int64_t m, int64_t k, const uint16_t* packed,
                              int64_t n, const float* bias, float* y, int64_t ldy) {
  const int64_t k2 = Bf16Groups(k), kp = k2 * 2, panels = QuantPanels(n);
#pragma omp parallel for schedule(static) if (Threaded(m, n, k))
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t c0 = p * kQuantPanel;
    Bf16RowsAvx2<kMR2>(m, x, kp, k2, packed + p * k2 * 32, bias ? bias + c0 : nullptr, y + c0, ldy,
                       std::min<int64_t>(kQuantPanel, n - c0));
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

bool HasAvx2QuantKernels() {
  static const bool has = CpuHasAvx2();
  return has;
}

bool HasAmxInt8Kernel() { return amx::HasInt8(); }

const char* Int8KernelName() {
  if (force_scalar.load(std::memory_order_relaxed)) return "scalar";
  const bool avx2 = avx2_only.load(std::memory_order_relaxed);
  if (HasInt8Kernel() && !avx2)
    return amx::HasInt8() && !avoid_amx.load(std::memory_order_relaxed) ? "AMX-INT8 + AVX512-VNNI"
                                                                        : "AVX512-VNNI";
  return HasAvx2QuantKernels() ? "AVX2" : "scalar";
}

const char* Bf16KernelName() {
  if (force_scalar.load(std::memory_order_relaxed)) return "scalar";
  const bool avx2 = avx2_only.load(std::memory_order_relaxed);
  if (HasBf16Kernel() && !avx2)
    return amx::HasBf16() && !avoid_amx.load(std::memory_order_relaxed) ? "AMX-BF16 + AVX512-BF16"
                                                                        : "AVX512-BF16";
  return HasAvx2QuantKernels() ? "AVX2" : "scalar";
}
bool HasAmxBf16Kernel() { return amx::HasBf16(); }

bool Int8UsesAmx(int64_t m, int64_t k) {
  return m >= kAmxInt8MinRows && Int8Groups(k) % amx::kTileGroups == 0 && HasInt8Kernel() &&
         amx::HasInt8() && !force_scalar.load(std::memory_order_relaxed) &&
         !avoid_amx.load(std::memory_order_relaxed) && !avx2_only.load(std::memory_order_relaxed);
}

bool Bf16UsesAmx(int64_t m, int64_t k) {
  return m >= kAmxBf16MinRows && Bf16Groups(k) % amx::kTileGroups == 0 && HasBf16Kernel() &&
         amx::HasBf16() && !force_scalar.load(std::memory_order_relaxed) &&
         !avoid_amx.load(std::memory_order_relaxed) && !avx2_only.load(std::memory_order_relaxed);
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
  const bool scalar = force_scalar.load(std::memory_order_relaxed);
  if (HasInt8Kernel() && !scalar && !avx2_only.load(std::memory_order_relaxed)) {
    QuantizeRowsU8Avx512(x, m, k, ldx, u.data(), xscale.data());
    Int8GemmVnni(u.data(), xscale.data(), m, k, packed, wscale, colsum, n, bias, y, ldy);
    return;
  }
  if (HasAvx2QuantKernels() && !scalar) {
    // u holds q (signed), then |q|: m * kp bytes each.
    u.resize(static_cast<size_t>(2 * m * kp));
    int8_t* q = reinterpret_cast<int8_t*>(u.data());
    QuantizeRowsS8Avx2(x, m, k, ldx, q, u.data() + m * kp, xscale.data());
    Int8GemmAvx2(q, u.data() + m * kp, xscale.data(), m, k, packed, wscale, n, bias, y, ldy);
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
#if defined(__x86_64__)
  const bool scalar = force_scalar.load(std::memory_order_relaxed);
  if ((!HasBf16Kernel() || avx2_only.load(std::memory_order_relaxed)) && HasAvx2QuantKernels() &&
      !scalar) {
    // The activations as the f32 values of their bf16 (RowsToBf16's rounding, padding zero).
    static thread_local std::vector<float> xf;
    xf.resize(static_cast<size_t>(m * kp));
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < k; ++c) xf[r * kp + c] = FromBf16(ToBf16(x[r * ldx + c]));
      for (int64_t c = k; c < kp; ++c) xf[r * kp + c] = 0.0f;
    }
    Bf16GemmAvx2(xf.data(), m, k, packed, n, bias, y, ldy);
    return;
  }
#endif
  b.resize(static_cast<size_t>(m * kp));
  RowsToBf16(x, m, k, ldx, b.data());
#if defined(__x86_64__)
  if (HasBf16Kernel() && !scalar) {
    Bf16GemmAvx512(b.data(), m, k, packed, n, bias, y, ldy);
    return;
  }
#endif
  ref::Bf16Gemm(b.data(), m, k, packed, n, bias, y, ldy);
}

ForceScalarQuantKernels::ForceScalarQuantKernels() : previous_(force_scalar.exchange(true)) {}
ForceScalarQuantKernels::~ForceScalarQuantKernels() { force_scalar.store(previous_); }

UseAvx2QuantKernels::UseAvx2QuantKernels() : previous_(avx2_only.exchange(true)) {}
UseAvx2QuantKernels::~UseAvx2QuantKernels() { avx2_only.store(previous_); }

AvoidAmxKernels::AvoidAmxKernels() : previous_(avoid_amx.exchange(true)) {}
AvoidAmxKernels::~AvoidAmxKernels() { avoid_amx.store(previous_); }

}  // namespace attend::cpu::simd
