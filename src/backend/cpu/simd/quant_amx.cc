// int8 and bf16 decoding GEMMs on AMX tiles. Eight tile registers of 16 rows x 64 bytes: four
// accumulators (a block of 32 output rows x 32 columns), two activation tiles (16 rows x 64
// features' bytes) and two weight tiles (one panel each, 16 groups). Panel pairs are the outer
// loop (a pair at k = 256 is 8 KB of int8, L1-sized); row blocks of 32 stream past it; per 16
// groups of features 2 + 2 tile loads feed 4 tile products (each 16 x 16 x 64 multiply-adds for
// int8, 16 x 16 x 32 for bf16). The sums leave the tiles through a 16 x 16 buffer, where the
// AVX-512 epilogue finishes them with the same instructions as the AVX-512 kernels.
#include "backend/cpu/simd/quant_amx.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ATTEND_HAVE_AMX 1
#endif

namespace attend::cpu::simd::amx {
namespace {

#if defined(ATTEND_HAVE_AMX)
// A parallel region costs microseconds: only for large products (as the other kernels).
bool Threaded(int64_t m, int64_t n, int64_t k) { return m * n * k >= (int64_t{1} << 22); }

#define ATTEND_AMX __attribute__((target("amx-tile,amx-int8,amx-bf16,avx512f,avx512bw")))

// CPUID leaf 7: EDX bit 22 AMX-BF16, 24 AMX-TILE, 25 AMX-INT8. Then Linux must grant the tile
// data state (XFEATURE_XTILEDATA = 18) to the process, once, before any thread touches a tile.
bool Probe(unsigned bit) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!(d & (1u << 24)) || !(d & (1u << bit))) return false;
  if (!__builtin_cpu_supports("avx512bw")) return false;  // the epilogue's
  constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
  static const bool granted = syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  return granted;
}

// The 64-byte tile configuration (palette 1): every tile 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

ATTEND_AMX void LoadConfig() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
}

inline __mmask16 ColumnMask(int64_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1);
}

// Rows [0, rows) x columns [0, cols) of one 16 x 16 block of int32 sums, as Int8Tile's epilogue.
ATTEND_AMX void FinishInt8(const int32_t* sums, int64_t rows, int64_t cols, const float* xscale,
                           const float* wscale, const int32_t* colsum, const float* bias, float* y,
                           int64_t ldy) {
  const __mmask16 mask = ColumnMask(cols);
  const __m512 ws = _mm512_maskz_loadu_ps(mask, wscale);
  const __m512i shift = _mm512_maskz_slli_epi32(0xffff, _mm512_maskz_loadu_epi32(mask, colsum), 7);
  const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const __m512i acc = _mm512_loadu_si512(sums + r * 16);
    const __m512 v = _mm512_maskz_cvtepi32_ps(0xffff, _mm512_sub_epi32(acc, shift));
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(xscale[r]), ws);
    _mm512_mask_storeu_ps(y + r * ldy, mask, _mm512_fmadd_ps(v, scale, b));
  }
}

ATTEND_AMX void FinishBf16(const float* sums, int64_t rows, int64_t cols, const float* bias,
                           float* y, int64_t ldy) {
  const __mmask16 mask = ColumnMask(cols);
  const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 acc = _mm512_loadu_ps(sums + r * 16);
    _mm512_mask_storeu_ps(y + r * ldy, mask, bias ? _mm512_add_ps(acc, b) : acc);
  }
}

// The block's products: tiles 0..3 = C[rt][ct] (row tile rt, column tile ct), A in 4 and 5,
// B in 6 and 7. kInt8 picks TDPBUSD (u8 x s8 into int32) or TDPBF16PS (bf16 pairs into f32).
// a: the block's first activation row (stride lda bytes); b0, b1: the panels' first groups.
template <bool kInt8, int RT, int CT>
ATTEND_AMX inline void Block(const uint8_t* a, int64_t lda, const uint8_t* b0, const uint8_t* b1,
                             int64_t tiles, void* out) {
  _tile_zero(0);
  if constexpr (CT == 2) _tile_zero(1);
  if constexpr (RT == 2) _tile_zero(2);
  if constexpr (RT == 2 && CT == 2) _tile_zero(3);
  for (int64_t t = 0; t < tiles; ++t) {
    _tile_loadd(4, a + t * 64, lda);
    _tile_loadd(6, b0 + t * 1024, 64);
    if constexpr (CT == 2) _tile_loadd(7, b1 + t * 1024, 64);
    if constexpr (RT == 2) _tile_loadd(5, a + 16 * lda + t * 64, lda);
    if constexpr (kInt8) {
      _tile_dpbusd(0, 4, 6);
      if constexpr (CT == 2) _tile_dpbusd(1, 4, 7);
      if constexpr (RT == 2) _tile_dpbusd(2, 5, 6);
      if constexpr (RT == 2 && CT == 2) _tile_dpbusd(3, 5, 7);
    } else {
      _tile_dpbf16ps(0, 4, 6);
      if constexpr (CT == 2) _tile_dpbf16ps(1, 4, 7);
      if constexpr (RT == 2) _tile_dpbf16ps(2, 5, 6);
      if constexpr (RT == 2 && CT == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  // out: [RT * CT][16][16] 4-byte sums, C[rt][ct] at (rt * 2 + ct) * 256.
  auto* o = static_cast<uint8_t*>(out);
  _tile_stored(0, o, 64);
  if constexpr (CT == 2) _tile_stored(1, o + 1024, 64);
  if constexpr (RT == 2) _tile_stored(2, o + 2048, 64);
  if constexpr (RT == 2 && CT == 2) _tile_stored(3, o + 3072, 64);
}

// Pairs [first, last) of panels, row blocks of 32 (16 at the end) inside; finish(sums, row0,
// rows, col0, cols) writes one 16 x 16 block of y. One thread's share: the tile configuration is
// the thread's state, loaded here and released at the end. (A function of its own, not the
// body of the parallel region: clang does not give OpenMP's outlined body the target attribute.)
template <bool kInt8, class Finish>
ATTEND_AMX void Pairs(const uint8_t* a, int64_t lda, int64_t m, const uint8_t* packed,
                      int64_t panel_bytes, int64_t tiles, int64_t n, int64_t first, int64_t last,
                      const Finish& finish) {
  LoadConfig();
  alignas(64) uint8_t sums[4 * 1024];
  const int64_t panels = (n + 15) / 16;
  for (int64_t pi = first; pi < last; ++pi) {
    const int64_t p0 = pi * 2;
    const bool two = p0 + 1 < panels;
    const uint8_t* b0 = packed + p0 * panel_bytes;
    const uint8_t* b1 = b0 + panel_bytes;
    for (int64_t i = 0; i < m; i += 32) {
      const uint8_t* ai = a + i * lda;
      const bool rows2 = i + 16 < m;
      if (rows2 && two) Block<kInt8, 2, 2>(ai, lda, b0, b1, tiles, sums);
      else if (rows2) Block<kInt8, 2, 1>(ai, lda, b0, b1, tiles, sums);
      else if (two) Block<kInt8, 1, 2>(ai, lda, b0, b1, tiles, sums);
      else Block<kInt8, 1, 1>(ai, lda, b0, b1, tiles, sums);
      for (int rt = 0; rt < (rows2 ? 2 : 1); ++rt)
        for (int ct = 0; ct < (two ? 2 : 1); ++ct) {
          const int64_t r0 = i + rt * 16, c0 = (p0 + ct) * 16;
          finish(sums + (rt * 2 + ct) * 1024, r0, std::min<int64_t>(16, m - r0), c0,
                 std::min<int64_t>(16, n - c0));
        }
    }
  }
  _tile_release();
}

// Both kernels: the panel pairs split evenly among the threads.
template <bool kInt8, class Finish>
void Run(const uint8_t* a, int64_t lda, int64_t m, const uint8_t* packed, int64_t panel_bytes,
         int64_t tiles, int64_t n, bool threaded, const Finish& finish) {
  const int64_t pairs = ((n + 15) / 16 + 1) / 2;
#pragma omp parallel if (threaded)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t first = pairs * t / threads, last = pairs * (t + 1) / threads;
    if (first < last) Pairs<kInt8>(a, lda, m, packed, panel_bytes, tiles, n, first, last, finish);
  }
}
#endif  // ATTEND_HAVE_AMX

}  // namespace

bool HasInt8() {
#if defined(ATTEND_HAVE_AMX)
  static const bool has = Probe(25);
  return has;
#else
  return false;
#endif
}

bool HasBf16() {
#if defined(ATTEND_HAVE_AMX)
  static const bool has = Probe(22);
  return has;
#else
  return false;
#endif
}

void Int8Gemm(const uint8_t* u, const float* xscale, int64_t m, int64_t k4, const int8_t* packed,
              const float* wscale, const int32_t* colsum, int64_t n, const float* bias, float* y,
              int64_t ldy) {
#if defined(ATTEND_HAVE_AMX)
  const int64_t kp = k4 * 4;
  Run<true>(u, kp, m, reinterpret_cast<const uint8_t*>(packed), k4 * 64, k4 / kTileGroups, n,
            Threaded(m, n, kp),
            [&](const uint8_t* sums, int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
              FinishInt8(reinterpret_cast<const int32_t*>(sums), rows, cols, xscale + r0,
                         wscale + c0, colsum + c0, bias ? bias + c0 : nullptr, y + r0 * ldy + c0,
                         ldy);
            });
#else
  (void)u, (void)xscale, (void)m, (void)k4, (void)packed, (void)wscale, (void)colsum, (void)n,
      (void)bias, (void)y, (void)ldy;
#endif
}

void Bf16Gemm(const uint16_t* x, int64_t m, int64_t k2, const uint16_t* packed, int64_t n,
              const float* bias, float* y, int64_t ldy) {
#if defined(ATTEND_HAVE_AMX)
  const int64_t kp = k2 * 2;
  Run<false>(reinterpret_cast<const uint8_t*>(x), kp * 2, m,
             reinterpret_cast<const uint8_t*>(packed), k2 * 64, k2 / kTileGroups, n,
             Threaded(m, n, kp),
             [&](const uint8_t* sums, int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
               FinishBf16(reinterpret_cast<const float*>(sums), rows, cols,
                          bias ? bias + c0 : nullptr, y + r0 * ldy + c0, ldy);
             });
#else
  (void)x, (void)m, (void)k2, (void)packed, (void)n, (void)bias, (void)y, (void)ldy;
#endif
}

}  // namespace attend::cpu::simd::amx
