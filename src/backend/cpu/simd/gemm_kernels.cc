// Highway implementations of the f32 GEMMs: PackedGemm (decoding: a weight packed once, a few
// rows per call) and Gemm (everything else: op(B) packed per call, block by block). Both run the
// same tile: MR rows of the output x NV vectors of a panel (kPackPanel = 32 columns) held in
// registers while k is walked once; per k, NV loads of the panel and MR broadcasts of A feed
// MR * NV fused multiply-adds (12 x 2 with AVX-512: 24 accumulators, the whole panel; with AVX2
// Gemm's tile is 6 x 2, a 16-column strip of the panel, and PackedGemm's 3 x 4). The panel loop
// is outermost within a row block, so a panel (or strip: 32 or 16 KB at 256 features) stays in
// L1 while the rows of A stream from L2; the panels packed at a time (kNc columns) stay in L2
// while every row block passes over them.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/gemm_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/cache_control.h"
#include "hwy/highway.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/simd/gemm_kernels.h"
#include "backend/cpu/simd/transpose-inl.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr size_t kLanes = hn::MaxLanes(DF());
constexpr size_t kNV = kPackPanel / kLanes;  // vectors per panel row
// Accumulators per tile: 24 of AVX-512's 32 registers (a panel row and a broadcast need 3 more),
// 12 of AVX2's 16.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kAccumulators = 24;
#else
constexpr size_t kAccumulators = 12;
#endif
// PackedGemm's tile spans a whole panel (kNV vectors); Gemm's spans kGemmNV vectors, a strip of
// the panel. With AVX2 a whole-panel tile (3 rows x 4 vectors) needs 12 + 4 + 1 = 17 registers:
// the compiler reads the fourth vector from memory in every row's multiply-add, and the 32 KB
// panel (256 features) fills Zen 3's whole L1 beside A's rows. A strip of 2 vectors, 6 rows (15
// registers; 16 KB of panel) is the tile that BLIS and others run on AVX2. AVX-512 keeps 12 rows
// x 2 vectors, the whole panel.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kGemmNV = kNV;
#else
constexpr size_t kGemmNV = kNV >= 2 ? 2 : kNV;
#endif
// Gemm's rows per tile, and the rows of a tile of the packed A.
constexpr size_t kMR = kGemmNV >= kAccumulators ? 1 : kAccumulators / kGemmNV;

// How a tile's accumulators start: from zero, the bias, beta * C (the first block of k) or C
// (the later blocks).
enum class Init { kZero, kBias, kScaleC, kAddC };

// A panel of B read in place (a recurrent decoder's weight at each step: Gemm's in_place) has
// its rows a whole row of B apart, 128 bytes each, a stream the hardware prefetchers did not
// follow on a Zen 4 with the AVX-512 tile (the whole panel per row: two lines); the weight is in
// L3 or memory at each step. So the panel's first tile requests the rows 16 ahead of the one it
// multiplies (prefetch_b), and the tiles after it find the panel in L1 or L2. Zen 4, one thread:
// bench_gemm's gemm_cold/step_dx_dYW/64x512x768 13-17 % faster, 64 x 256 rows within noise, the
// warm rows unchanged; in an RNN training step that product (the GRU's input weight) went from
// 75 to 91-93 GFLOP/s. The AVX2 tile (a strip of one line per row) gained nothing cold and lost
// 5-7 % warm on the same core: not there.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr bool kPrefetchInPlaceB = true;
#else
constexpr bool kPrefetchInPlaceB = false;
#endif

// Rows [0, MR) of A against one panel of kb input features: a(r, kk) = a[r * sr + kk * sk], so
// one code path reads A as it is or transposed; the panel's row kk (32 floats) at panel + kk *
// ps (kPackPanel when packed, B's own row stride when read in place). Writes `cols` (<= 32)
// columns of y.
template <size_t MR, size_t NV, bool kPackedA, bool kPrefetchC>
HWY_INLINE void Tile(const float* HWY_RESTRICT a, int64_t sr, int64_t sk, int64_t kb,
                     const float* HWY_RESTRICT panel, int64_t ps, Init init, const float* bias,
                     float beta, float* y, int64_t ldy, int64_t cols, bool prefetch_b = false,
                     bool stream = false) {
  const DF d;
  constexpr int64_t kWidth = static_cast<int64_t>(NV * kLanes);
  const bool full = cols == kWidth;
  const bool reads_c = init == Init::kScaleC || init == Init::kAddC;
  HWY_ALIGN float buf[kPackPanel];
  // C is added after the products, not loaded before them: its rows (often not in cache: the
  // later blocks of k come back to a C that the whole block has since passed over) are
  // prefetched here and arrive while the products run. Gemm (kPrefetchC) also asks for the lines
  // it only writes: a large C (the output layer's logits, 65 MB) is in no cache, and each store
  // would otherwise wait for its line's read-for-ownership (that product, 2048 x 8000 x 256:
  // 141-144 -> 150-152 GFLOP/s on an Intel VM; the other shapes of bench_gemm unchanged).
  // PackedGemm (decoding: a few rows, outputs that stay cached) does not prefetch them.
  if ((kPrefetchC && !stream) || reads_c) {
    for (size_t r = 0; r < MR; ++r)
      for (int64_t c = 0; c < cols; c += 16) __builtin_prefetch(y + r * ldy + c, 1);
  }
  // The accumulators live in registers only when these constant loops are unrolled, which -O2
  // alone does not do.
  VF acc[MR][NV];
  HWY_UNROLL(32)
  for (size_t r = 0; r < MR; ++r) {
    const float* src = nullptr;  // what this row starts from, when not zero
    if (init == Init::kBias) {
      src = bias;
      if (!full) {
        for (int64_t c = 0; c < kWidth; ++c) buf[c] = c < cols ? src[c] : 0.0f;
        src = buf;
      }
    }
    HWY_UNROLL(32)
    for (size_t v = 0; v < NV; ++v) acc[r][v] = src ? hn::LoadU(d, src + v * kLanes) : hn::Zero(d);
  }
  for (int64_t kk = 0; kk < kb; ++kk) {
    VF w[NV];
    if (prefetch_b) {
      HWY_UNROLL(32)
      for (int64_t c = 0; c < kWidth; c += 16) __builtin_prefetch(panel + (kk + 16) * ps + c);
    }
    HWY_UNROLL(32)
    for (size_t v = 0; v < NV; ++v) w[v] = hn::LoadU(d, panel + kk * ps + v * kLanes);
    HWY_UNROLL(32)
    for (size_t r = 0; r < MR; ++r) {
      // Packed A (Rows): the offsets are constants, no index register per row.
      const VF xr = hn::Set(d, kPackedA ? a[kk * kMR + r] : a[r * sr + kk * sk]);
      HWY_UNROLL(32)
      for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(xr, w[v], acc[r][v]);
    }
  }
  for (size_t r = 0; r < MR; ++r) {
    float* row = y + r * ldy;
    // The last, partial panel goes through the buffer: C's `cols` columns are copied in and added
    // by the same vector operations as a full panel's (the same rounding; a scalar std::fma here
    // was a libm call per element under clang).
    float* out_row = full ? row : buf;
    if (!full && reads_c)
      for (int64_t c = 0; c < kWidth; ++c) buf[c] = c < cols ? row[c] : 0.0f;
    for (size_t v = 0; v < NV; ++v) {
      VF out = acc[r][v];
      if (init == Init::kAddC) out = hn::Add(out, hn::LoadU(d, out_row + v * kLanes));
      if (init == Init::kScaleC)
        out = hn::MulAdd(hn::Set(d, beta), hn::LoadU(d, out_row + v * kLanes), out);
      if (stream && full) hn::Stream(out, d, out_row + v * kLanes);
      else hn::StoreU(out, d, out_row + v * kLanes);
    }
    if (!full)
      for (int64_t c = 0; c < cols; ++c) row[c] = buf[c];
  }
}

// Rows [0, m) of one panel, MR at a time, the remainder with smaller tiles. Tile t starts at
// a + t * MR * st: st = sr when A is read as it is, kb when it is packed (tiles of MR rows, each
// kb x MR, row r of a tile at + r, feature kk at + kk * MR: sr = 1, sk = MR). The remainder
// (< MR rows) lies within one tile, so it steps by sr.
template <size_t MR, size_t NV, bool kPackedA, bool kPrefetchC>
HWY_INLINE void Rows(int64_t m, const float* a, int64_t sr, int64_t sk, int64_t st, int64_t kb,
                     const float* panel, int64_t ps, Init init, const float* bias, float beta,
                     float* y, int64_t ldy, int64_t cols, bool stream = false) {
  int64_t i = 0;
  for (; i + static_cast<int64_t>(MR) <= m; i += MR)
    Tile<MR, NV, kPackedA, kPrefetchC>(a + i * st, sr, sk, kb, panel, ps, init, bias, beta,
                                       y + i * ldy, ldy, cols,
                                       // B's own row stride: a panel read in place (packed
                                       // panels, PackedGemm's included, have kPackPanel)
                                       kPrefetchInPlaceB && i == 0 && ps != kPackPanel, stream);
  if constexpr (MR > 1) {
    if (i < m)
      Rows<MR - 1, NV, kPackedA, kPrefetchC>(m - i, a + i * st, sr, sk, sr, kb, panel, ps, init,
                                             bias, beta, y + i * ldy, ldy, cols, stream);
  }
}

// Clang compiles the body of an OpenMP parallel region into a function of its own that lacks the
// target attributes of the function around it: tiles inlined there were built for the baseline
// instruction set (each 512-bit multiply-add as 16 calls to libm's fmaf, 20-40 times slower).
// Under clang, parallel regions therefore call the tiles through this function, which keeps its
// attributes. GCC copies them into the region's function, and there the tiles stay inlined (a
// call per panel measured 2 % slower on the decoder's 64 x 256 x 768 product).
#if HWY_COMPILER_CLANG
#define ATTEND_IN_PARALLEL_REGION HWY_NOINLINE
#else
#define ATTEND_IN_PARALLEL_REGION HWY_INLINE
#endif
// A panel's `cols` columns, NV vectors (a strip) at a time, each strip over all m rows.
template <size_t NV, bool kPackedA, bool kPrefetchC>
ATTEND_IN_PARALLEL_REGION void PanelRows(int64_t m, const float* a, int64_t sr, int64_t sk,
                                         int64_t st, int64_t kb, const float* panel, int64_t ps,
                                         Init init, const float* bias, float beta, float* y,
                                         int64_t ldy, int64_t cols, bool stream = false) {
  constexpr size_t MR = NV >= kAccumulators ? 1 : kAccumulators / NV;
  constexpr int64_t kWidth = static_cast<int64_t>(NV * kLanes);
  for (int64_t c0 = 0; c0 < cols; c0 += kWidth)
    Rows<MR, NV, kPackedA, kPrefetchC>(m, a, sr, sk, st, kb, panel + c0, ps, init,
                                       bias ? bias + c0 : nullptr, beta, y + c0, ldy,
                                       std::min(kWidth, cols - c0), stream);
}

void PackedGemmImpl(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed,
                    int64_t n, const float* bias, float* y, int64_t ldy) {
  const int64_t panels = (n + kPackPanel - 1) / kPackPanel;
  // A parallel region costs microseconds (far more under load): only for large products.
  const bool threads = m * n * k >= (int64_t{1} << 22);
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t c0 = p * kPackPanel;
    PanelRows<kNV, false, false>(m, x, ldx, 1, ldx, k, packed + p * k * kPackPanel, kPackPanel,
                                 bias ? Init::kBias : Init::kZero, bias ? bias + c0 : nullptr, 0.0f,
                                 y + c0, ldy, std::min<int64_t>(kPackPanel, n - c0));
  }
}

// Blocks: kKc input features per packed block (one panel's block is 32 KB, L1-sized), kMc rows of
// A per pass over the panels (~256 KB of A at kKc, kept in L2; whole tiles) and kNc columns of
// op(B) packed at a time (512 KB at kKc, kept in L2 beside A's block). With AVX2, half the rows
// (~128 KB of A): on a Zen 3 (512 KB of L2) the products that read A in place over more than one
// block of k (x W with k = 768-8000: a layer's input gradient) ran 2-3.5 % faster, the others
// within 1 %; since such an A is packed a row block at a time (block_a in GemmImpl), 128 and
// 256 rows measure the same (docs/results.md, issue 20, sixteenth pass). The sums and their
// order are the same whatever the row blocks: only the blocks of k decide them.
constexpr int64_t kKc = 256, kNc = 512;
constexpr int64_t kMc = (HWY_TARGET == HWY_AVX2 ? 128 : 256) / kMR * kMR;
// Up to this many rows of A, Gemm reads an unscaled, untransposed B in place (see GemmImpl).
constexpr int64_t kInPlaceRows = 96;
// Outputs of at least this many floats (32 MB: an L3's worth) are written with streaming stores
// when nothing reads them back within the product (see GemmImpl's stream_c).
constexpr int64_t kStreamFloats = int64_t{8} << 20;
// Stored rows of a transposed A packed together (PackATransposedRows).
constexpr int64_t kPackGroup = 16;

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// r[i][j] <- r[j][i]: a 16 x 16 block of floats transposed in registers (unpacks of 32- then
// 64-bit elements within 128-bit lanes, then two rounds of 128-bit lane shuffles).
HWY_INLINE void Transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] =
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(
        _mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(
        _mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // r[4q + c] now holds column c of rows 4q..4q+3 in each 128-bit lane (lane l: columns of
  // 4-column group l). Gather lanes: first pairs of row groups, then pairs of pairs.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
#endif

// Panel p (columns 32 p .. 32 p + 31) of alpha * op(B)[k0 .. k0 + kb, :] into dst (kb x 32).
void PackB(bool tb, const float* b, int64_t ldb, int64_t n, int64_t k0, int64_t kb, float alpha,
           int64_t p, float* dst) {
  const int64_t c0 = p * kPackPanel, cols = std::min<int64_t>(kPackPanel, n - c0);
  if (!tb) {  // op(B)[kk][c] = b[kk * ldb + c]: rows of 32 contiguous floats
    for (int64_t kk = 0; kk < kb; ++kk) {
      const float* src = b + (k0 + kk) * ldb + c0;
      __builtin_prefetch(src + 16 * ldb);  // 16 rows ahead (2048 x 256 x 768: +1-2 %)
      __builtin_prefetch(src + 16 * ldb + 16);
      float* row = dst + kk * kPackPanel;
      for (int64_t j = 0; j < cols; ++j) row[j] = alpha * src[j];
      for (int64_t j = cols; j < kPackPanel; ++j) row[j] = 0.0f;
    }
  } else {  // op(B)[kk][c] = b[c * ldb + kk]: each row of b scatters into a column
    int64_t j0 = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    // 16 rows of b at a time, transposed 16 x 16 in registers (the same products as below).
    const __m512 va = _mm512_set1_ps(alpha);
    for (; j0 + 16 <= cols; j0 += 16) {
      int64_t kk = 0;
      for (; kk + 16 <= kb; kk += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i)
          r[i] = _mm512_mul_ps(va, _mm512_loadu_ps(b + (c0 + j0 + i) * ldb + k0 + kk));
        Transpose16(r);
        for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + (kk + i) * kPackPanel + j0, r[i]);
      }
      for (; kk < kb; ++kk)
        for (int64_t j = j0; j < j0 + 16; ++j)
          dst[kk * kPackPanel + j] = alpha * b[(c0 + j) * ldb + k0 + kk];
    }
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    // 8 rows of b at a time, transposed 8 x 8 in registers (the same products as below): with
    // AVX2 this pass over B, one element at a time, was 4-5 % of an RNN training step (the
    // decoder's recurrent weight, packed at every step).
    for (; j0 + 8 <= cols; j0 += 8)
      TransposeRows8(b + (c0 + j0) * ldb + k0, ldb, kb, alpha, dst + j0, kPackPanel);
#endif
    for (int64_t j = j0; j < kPackPanel; ++j) {
      if (j >= cols) {
        for (int64_t kk = 0; kk < kb; ++kk) dst[kk * kPackPanel + j] = 0.0f;
        continue;
      }
      const float* src = b + (c0 + j) * ldb + k0;
      for (int64_t kk = 0; kk < kb; ++kk) dst[kk * kPackPanel + j] = alpha * src[kk];
    }
  }
}

// Rows [r0, r0 + rows) of A, read as it is (rows <= MR: one tile), for features [k0, k0 + kb)
// into dst, feature kk's values side by side at dst + kk * MR (Rows' packed layout). With AVX2
// (MR = 6) a whole tile goes 8 features at a time: its 6 rows (and row 5 twice more) transposed
// 8 x 8 in registers, each feature's 8 floats stored over the next feature's first 2, which that
// feature's own store then writes; the last 8 or fewer features one at a time, so that nothing is
// written past the tile (other threads pack the tiles beside it).
void PackATile(const float* a, int64_t lda, int64_t r0, int64_t rows, int64_t k0, int64_t kb,
               float* dst) {
  const float* src = a + r0 * lda + k0;  // a(r, kk) = a[r * lda + kk]
  int64_t kk = 0;
#if HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
  if (kMR == 6 && rows == 6) {
    for (; kk + 8 < kb; kk += 8) {
      __m256 r[8];
      for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * lda + kk);
      r[6] = r[7] = r[5];
      Transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (kk + i) * 6, r[i]);
    }
  }
#endif
  for (; kk < kb; ++kk)
    for (int64_t r = 0; r < rows; ++r) dst[kk * kMR + r] = src[r * lda + kk];
}

// Rows [r0, r0 + rows) of A into consecutive tiles (kb x MR each), as PackATile.
void PackABlock(const float* a, int64_t lda, int64_t r0, int64_t rows, int64_t k0, int64_t kb,
                float* dst) {
  const int64_t mr = static_cast<int64_t>(kMR);
  for (int64_t t0 = 0; t0 < rows; t0 += mr)
    PackATile(a, lda, r0 + t0, std::min(mr, rows - t0), k0, kb, dst + t0 * kb);
}

// Features [k0 + kk, k0 + kk + g) of a transposed A (rows of the stored matrix: m contiguous
// floats each) into every tile of the packed A (PackA's layout, tiles kb x MR apart). Reading A
// in its own order, g stored rows side by side, lets the hardware prefetcher stream it (a weight
// gradient's A is an activation written long before and no longer in cache), and each tile
// receives g x MR contiguous floats, whole cache lines: one row at a time wrote MR floats into a
// different line per tile, lines that left the cache before they were complete. A tile's MR
// floats are one fixed-size copy (plain loads and stores: AVX2's masked store, vmaskmovps, is
// microcoded on AMD's cores). Zen 3, one thread, bench_gemm's dw_dYtX: 768 x 256 x 2048 66 ->
// 72 GFLOP/s with plain copies, -> 87-92 with groups of 16 rows; 8000 x 256 x 2048 58 -> 85-86
// (OpenBLAS 89-91 in the same runs).
void PackATransposedRows(const float* a, int64_t lda, int64_t m, int64_t k0, int64_t kk, int64_t g,
                         int64_t kb, float* apacked) {
  const float* src = a + (k0 + kk) * lda;
  const int64_t mr = static_cast<int64_t>(kMR), full = m / mr * mr;
  for (int64_t r0 = 0; r0 < full; r0 += mr) {
    float* dst = apacked + r0 * kb + kk * mr;
    for (int64_t j = 0; j < g; ++j)
      std::memcpy(dst + j * mr, src + j * lda + r0, kMR * sizeof(float));
  }
  float* dst = apacked + full * kb + kk * mr;
  for (int64_t j = 0; j < g; ++j)
    for (int64_t r = 0; r < m - full; ++r) dst[j * mr + r] = src[j * lda + full + r];
}

// dst [m, n] (row stride ldd) <- src [n, m] transposed (contiguous): 8 of src's rows at a time
// through TransposeRows8 where the target has it.
void TransposeInto(const float* src, int64_t n, int64_t m, float* dst, int64_t ldd) {
  int64_t j0 = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  for (; j0 + 8 <= n; j0 += 8) TransposeRows8(src + j0 * m, m, m, 1.0f, dst + j0, ldd);
#endif
  for (int64_t j = j0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) dst[i * ldd + j] = src[j * m + i];
}

// The stored rows [k0 + kk, k0 + kk + g) of a transposed A (m floats each, one group of
// ref::kGemmSumGroup features, just packed: in L1 or L2) summed from zero in order into sum, or,
// with `add`, that group's sum then added to sum (ref::SumRowsOfOpA's step per group).
void SumStoredRows(const float* a, int64_t lda, int64_t m, int64_t k0, int64_t kk, int64_t g,
                   float* sum, bool add = false) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const float* src = a + (k0 + kk) * lda;
  int64_t i = 0;
  for (; i + N <= m; i += N) {
    VF s = hn::Zero(d);
    for (int64_t j = 0; j < g; ++j) s = hn::Add(s, hn::LoadU(d, src + j * lda + i));
    hn::StoreU(add ? hn::Add(hn::LoadU(d, sum + i), s) : s, d, sum + i);
  }
  for (; i < m; ++i) {
    float s = 0.0f;
    for (int64_t j = 0; j < g; ++j) s += src[j * lda + i];
    sum[i] = add ? sum[i] + s : s;
  }
}

// Returns whether it formed the sums of op(A)'s rows into sum_a (a transposed A packed whole).
bool GemmImpl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
              const float* bias, float* sum_a) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // A few rows times a transposed B (x W^T with few rows: the RNN decoder's input and recurrent
  // weights at every step of training) as C^T = B A^T: packing op(B) transposes all of W (n x k),
  // while this packs A's m x k and transposes C's m x n, 3-4x less data for 64 rows of a
  // 768 x 256 weight. Each output is the same sum in the same order of k (alpha 1, nothing added
  // to C), so the results are the same bits. One thread: Zen 3 (AVX2), an RNN training step 1-2 %
  // faster (docs/results.md, issue 20, thirteenth pass); Zen 4 (AVX-512), bench_gemm's
  // step_fwd_xWt/64x768x256 8-13 % faster (87 -> 100-103 GFLOP/s; OpenBLAS 94); with the
  // in-place prefetch above, an RNN training step 2.4-2.9 % (seventeenth pass).
  if (!ta && tb && alpha == 1.0f && beta == 0.0f && !bias && m <= kInPlaceRows && n >= 4 * m) {
    static thread_local std::vector<float> ct;  // C^T; GemmImpl's own buffers are separate
    if (static_cast<int64_t>(ct.size()) < n * m) ct.resize(n * m);
    GemmImpl(false, true, n, m, k, 1.0f, b, ldb, a, lda, 0.0f, ct.data(), m, nullptr, nullptr);
    TransposeInto(ct.data(), n, m, c, ldc);
    return false;
  }
#endif
  const int64_t panels = (n + kPackPanel - 1) / kPackPanel;
  const int64_t kc = std::min(k, kKc);
  // The panels packed at a time: a chunk of op(B) (kNc columns, 512 KB at kKc) stays in L2 while
  // every row block of A passes over it; all of a wide B at once (8,000 columns: 8 MB) would be
  // fetched from L3 again for each row block.
  const int64_t chunk = std::min(panels, kNc / kPackPanel);
  // One buffer per calling thread, kept: no allocation (or page faults) per call.
  static thread_local std::vector<float> buffer, abuffer;
  if (static_cast<int64_t>(buffer.size()) < chunk * kc * kPackPanel)
    buffer.resize(chunk * kc * kPackPanel);
  float* packed = buffer.data();
  const int64_t sr = ta ? 1 : lda, sk = ta ? lda : 1;  // a(r, kk) = a[r * sr + kk * sk]
  // A is packed (Rows' layout: a tile's A one contiguous run, its offsets constants) when it is
  // read transposed (a feature, i.e. a row of the stored matrix, at a time: MR floats of a cache
  // line per feature) or when many panels reuse it; otherwise the tile reads its MR rows as MR
  // streams. Packing every A measured slower on the decoder's 64-row products (few panels).
  const bool pack_a = panels > 1 && (ta || panels >= 64);
  const int64_t tiles = (m + kMR - 1) / kMR;
  // With AVX2, an A read as it is over more than one block of k is copied a row block at a time
  // (PackABlock, by the thread whose tiles read it) instead of read in place: its kMc x kKc block
  // is then one contiguous run in L2, where in place it was kMc pieces of kKc floats, a row
  // stride apart. Zen 3, one thread: bench_gemm's dx_dYW 2048 x 256 x 768 and 2048 x 256 x 8000
  // 1.6-5 % faster (3.5-4 % on two threads); a training step ~1 %, below that machine's noise.
  // With one block of k (the forward products) A is one contiguous run already.
  const bool block_a = HWY_TARGET == HWY_AVX2 && !pack_a && !ta && k > kKc && panels > 1;
  // The same for a transposed A (a weight gradient's activations) when its packed block of k
  // (m x kKc floats) would not fit in a Zen 3's 512 KB L2 beside the rest: packed whole before
  // the tiles ran, it was read back from L3. The output layer's gradient, dw_dYtX 8000 x 256 x
  // 2048, 2.8-3.1 % faster (768 x 256 x 2048 within noise); with 256 rows (the packed block
  // 256 KB, in L2 anyway) 1-2 % slower, so those stay packed whole.
  const bool block_at = HWY_TARGET == HWY_AVX2 && pack_a && ta && m >= 512;
  if (pack_a && !block_at &&
      static_cast<int64_t>(abuffer.size()) < tiles * static_cast<int64_t>(kMR) * kc)
    abuffer.resize(tiles * kMR * kc);
  float* apacked = abuffer.data();
  // The sums of op(A)'s rows, asked for with a transposed A packed whole: each group of
  // ref::kGemmSumGroup stored rows (kPackGroup, the packing's own groups: a block of k starts on
  // one) summed by the thread that packs it, into its own row of `partial`; the rows summed in
  // order after the product. Those are ref::SumRowsOfOpA's sums in its order, whoever packs what.
  static_assert(kPackGroup == ref::kGemmSumGroup && kKc % kPackGroup == 0);
  const bool sums = sum_a != nullptr && pack_a && ta && !block_at;
  static thread_local std::vector<float> sbuffer;
  const int64_t groups = (k + kPackGroup - 1) / kPackGroup;
  if (sums && static_cast<int64_t>(sbuffer.size()) < groups * m) sbuffer.resize(groups * m);
  float* partial = sbuffer.data();
  // Row blocks of (nearly) equal size, whole tiles each: threads take contiguous runs of
  // (row block, panel) items, so 1,344 rows as 5 x 252 + 84 would leave one thread a fifth idle.
  const int64_t mr = static_cast<int64_t>(kMR), blocks = (m + kMc - 1) / kMc;
  const int64_t even = (m + blocks - 1) / blocks;  // rows per block, before rounding to tiles
  const int64_t mc = (even + mr - 1) / mr * mr, mblocks = (m + mc - 1) / mc;
  const bool threads = m * n * k >= (int64_t{1} << 22) && omp_get_max_threads() > 1;
  // Few rows and op(B) = B unscaled: B's rows already hold each panel's 32 columns side by side,
  // so full panels are read in place (row stride ldb) instead of copied; with few rows a panel
  // serves few tiles, and the copy (a pass over all of B) would cost as much as the arithmetic.
  // The last, partial panel is packed (zero padded) as usual.
  const bool in_place = !tb && alpha == 1.0f && m <= kInPlaceRows;
  const int64_t full_panels = in_place ? n / kPackPanel : 0;
  // C written once (one block of k, nothing of it read) and larger than the last-level cache: the
  // tiles store it with streaming stores, which skip the read of each line before its write (a
  // third of this product's memory traffic: the output layer's logits, [tokens, vocabulary]) and
  // leave the caches to the operands; whoever reads C next finds it in memory either way.
  const bool stream_c = k <= kc && beta == 0.0f && m * n >= kStreamFloats && ldc % 16 == 0 &&
                        reinterpret_cast<uintptr_t>(c) % 64 == 0;
#pragma omp parallel if (threads)
  {
    // block_a / block_at: this thread's copy of the row block its tiles read (which, which k0).
    static thread_local std::vector<float> ablock;
    int64_t block_mb = -1, block_k0 = -1;
    for (int64_t k0 = 0; k0 < k; k0 += kc) {
      const int64_t kb = std::min(kc, k - k0);
      const Init init = k0 > 0         ? Init::kAddC
                        : bias         ? Init::kBias
                        : beta == 0.0f ? Init::kZero
                                       : Init::kScaleC;
      if (block_at) {
        // (each thread packs its row blocks in the tiles' loop)
      } else if (pack_a && ta) {
#pragma omp for schedule(static) nowait
        for (int64_t kk = 0; kk < kb; kk += kPackGroup) {
          const int64_t g = std::min(kPackGroup, kb - kk);
          PackATransposedRows(a, lda, m, k0, kk, g, kb, apacked);
          if (sums) SumStoredRows(a, lda, m, k0, kk, g, partial + (k0 + kk) / kPackGroup * m);
        }
      } else if (pack_a) {
#pragma omp for schedule(static) nowait
        for (int64_t t = 0; t < tiles; ++t)
          PackATile(a, lda, t * mr, std::min(mr, m - t * mr), k0, kb, apacked + t * mr * kb);
      }
      // (the first chunk's barrier below comes before any tile reads the packed A)
      for (int64_t q0 = 0; q0 < panels; q0 += chunk) {
        const int64_t q1 = std::min(panels, q0 + chunk), items = mblocks * (q1 - q0);
        // Nothing to pack (every panel read in place, A as it is): no barrier. Each thread's
        // tiles are the same (row block, panel) items at every block of k (a static schedule
        // of as many items in the same region), so a thread adds only to the C it wrote.
        const bool packs = pack_a || q1 > full_panels;
        if (packs) {
#pragma omp for schedule(static)
          for (int64_t p = std::max(q0, full_panels); p < q1; ++p)
            PackB(tb, b, ldb, n, k0, kb, alpha, p, packed + (p - q0) * kb * kPackPanel);
          // (implicit barrier: the chunk is packed before any thread reads it)
        }
        auto tile = [&](int64_t it) {
          const int64_t mb = it / (q1 - q0), p = q0 + it % (q1 - q0);
          if ((block_a || block_at) && (mb != block_mb || k0 != block_k0)) {
            const int64_t r0b = mb * mc, rowsb = std::min(mc, m - r0b);
            const int64_t need = (rowsb + mr - 1) / mr * mr * kb;
            if (static_cast<int64_t>(ablock.size()) < need) ablock.resize(need);
            if (block_at) {  // the block's rows are columns of the stored matrix
              for (int64_t kk = 0; kk < kb; kk += kPackGroup)
                PackATransposedRows(a + r0b, lda, rowsb, k0, kk, std::min(kPackGroup, kb - kk), kb,
                                    ablock.data());
            } else {
              PackABlock(a, lda, r0b, rowsb, k0, kb, ablock.data());
            }
            block_mb = mb, block_k0 = k0;
          }
          const int64_t r0 = mb * mc, rows = std::min(mc, m - r0), c0 = p * kPackPanel;
          const bool direct = p < full_panels;
          const float* pbias = init == Init::kBias ? bias + c0 : nullptr;
          const float* panel = direct ? b + k0 * ldb + c0 : packed + (p - q0) * kb * kPackPanel;
          const int64_t ps = direct ? ldb : kPackPanel,
                        cols = std::min<int64_t>(kPackPanel, n - c0);
          if (pack_a || block_a) {
            const float* ap = block_a || block_at ? ablock.data() : apacked + r0 * kb;
            PanelRows<kGemmNV, true, true>(rows, ap, 1, kMR, kb, kb, panel, ps, init, pbias, beta,
                                           c + r0 * ldc + c0, ldc, cols, stream_c);
          } else {
            PanelRows<kGemmNV, false, true>(rows, a + r0 * sr + k0 * sk, sr, sk, sr, kb, panel, ps,
                                            init, pbias, beta, c + r0 * ldc + c0, ldc, cols,
                                            stream_c);
          }
        };
        // The tiles between two barriers go out in shrinking runs (guided: each grab is the
        // remaining items over the threads), so a thread whose core runs slower (a shared host's
        // other tenants, its interrupts) leaves the last runs to the others instead of holding
        // every thread at the barrier; the runs stay contiguous, so a thread still walks the
        // panels of one block of A's rows. Each tile is the same sums whoever runs it: the same
        // bits. Zen 4 VM, two threads, CPU 0 7-8 % slower than CPU 1 that hour: training steps
        // 4.4 % (RNN) and 2.3 % (Transformer) faster at the minima over 10 rounds, the output
        // layer's weight gradient 20 %; one item at a time (schedule(dynamic)) was 6 % slower
        // (docs/results.md, issue 20, twentieth pass). AVX2's per-thread row blocks (block_a,
        // block_at) keep the static runs they are cached for.
        if (packs && !block_a && !block_at) {
#pragma omp for schedule(guided)
          for (int64_t it = 0; it < items; ++it) tile(it);
        } else if (packs) {
#pragma omp for schedule(static)
          for (int64_t it = 0; it < items; ++it) tile(it);
          // (implicit barrier: every tile is done before the next chunk overwrites the buffer)
        } else {
#pragma omp for schedule(static) nowait
          for (int64_t it = 0; it < items; ++it) tile(it);
        }
      }
    }
    // Streaming stores are weakly ordered: this thread's reach memory before the region ends
    // (its closing barrier), so whoever reads C next sees them.
    if (stream_c) hwy::FlushStream();
    if (sums) {
      // Every group is summed: the last tiles' loop ended in a barrier (packs is true when A is
      // packed). The groups' sums added in order, from zero, a run of rows per thread.
#pragma omp for schedule(static)
      for (int64_t i0 = 0; i0 < m; i0 += 512) {
        const int64_t i1 = std::min(m, i0 + 512);
        for (int64_t i = i0; i < i1; ++i) sum_a[i] = 0.0f;
        for (int64_t q = 0; q < groups; ++q)
          for (int64_t i = i0; i < i1; ++i) sum_a[i] += partial[q * m + i];
      }
    }
  }
  return sums;
}

// Small products (attention heads: 20 x 21 x 32 and the like, dims up to kSmallGemmMax): op(B)
// times alpha into a zero-padded buffer on the stack, rows a whole number of vectors, then tiles
// of two vectors (6 rows with AVX2, 12 with AVX-512) and one of one vector for the remainder (8
// rows), each reading A in place and adding beta * C after the products. No threads, no blocking
// of k, no thread-local buffers: at this size OpenBLAS's fixed costs per call (its copies and its
// pass that scales C) were most of its time.
void SmallGemmImpl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  constexpr int64_t kN = static_cast<int64_t>(kLanes);
  const int64_t npad = (n + kN - 1) / kN * kN;
  HWY_ALIGN float bp[kSmallGemmMax * ((kSmallGemmMax + kN - 1) / kN * kN)];
  if (tb) {  // op(B)[kk][j] = b[j * ldb + kk]: B's rows become bp's columns
    int64_t j0 = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    // 8 rows of B at a time, transposed 8 x 8 in registers (element by element, the copy took
    // longer than the products: 20 x 20 x 64 in 2.0 us, OpenBLAS 1.4).
    for (; j0 + 8 <= n; j0 += 8) TransposeRows8(b + j0 * ldb, ldb, k, alpha, bp + j0, npad);
#endif
    for (int64_t j = j0; j < n; ++j)
      for (int64_t kk = 0; kk < k; ++kk) bp[kk * npad + j] = alpha * b[j * ldb + kk];
  } else {
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < n; ++j) bp[kk * npad + j] = alpha * b[kk * ldb + j];
  }
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t j = n; j < npad; ++j) bp[kk * npad + j] = 0.0f;
  const int64_t sr = ta ? 1 : lda, sk = ta ? lda : 1;  // a(r, kk) = a[r * sr + kk * sk]
  const Init init = beta == 0.0f ? Init::kZero : Init::kScaleC;
  constexpr size_t kMR2 = kAccumulators / 2, kMR1 = 8;
  int64_t c0 = 0;
  for (; c0 + 2 * kN <= npad; c0 += 2 * kN)
    Rows<kMR2, 2, false, false>(m, a, sr, sk, sr, k, bp + c0, npad, init, nullptr, beta, c + c0,
                                ldc, std::min(2 * kN, n - c0));
  if (c0 < npad)
    Rows<kMR1, 1, false, false>(m, a, sr, sk, sr, k, bp + c0, npad, init, nullptr, beta, c + c0,
                                ldc, n - c0);
}

// C's rows [0, R) over `n` columns for FewRowsGemm with op(B) = B: per feature kk, a row of B
// (two vectors, then one, then the columns past the last whole vector one at a time) times R
// broadcasts of A. C = alpha * sum + beta * C after the products; beta 0 never reads C.
template <size_t R>
HWY_INLINE void FewRowsAxpy(const float* HWY_RESTRICT a, int64_t sr, int64_t sk, int64_t n,
                            int64_t k, float alpha, const float* HWY_RESTRICT b, int64_t ldb,
                            float beta, float* c, int64_t ldc) {
  const DF d;
  constexpr int64_t kN = static_cast<int64_t>(kLanes);
  const VF va = hn::Set(d, alpha), vb = hn::Set(d, beta);
  auto finish = [&](VF acc, float* out) {
    VF v = hn::Mul(va, acc);
    if (beta != 0.0f) v = hn::MulAdd(vb, hn::LoadU(d, out), v);
    hn::StoreU(v, d, out);
  };
  int64_t j = 0;
  for (; j + 2 * kN <= n; j += 2 * kN) {
    VF acc[R][2];
    HWY_UNROLL(32)
    for (size_t r = 0; r < R; ++r) acc[r][0] = acc[r][1] = hn::Zero(d);
    for (int64_t kk = 0; kk < k; ++kk) {
      const VF w0 = hn::LoadU(d, b + kk * ldb + j), w1 = hn::LoadU(d, b + kk * ldb + j + kN);
      HWY_UNROLL(32)
      for (size_t r = 0; r < R; ++r) {
        const VF x = hn::Set(d, a[r * sr + kk * sk]);
        acc[r][0] = hn::MulAdd(x, w0, acc[r][0]);
        acc[r][1] = hn::MulAdd(x, w1, acc[r][1]);
      }
    }
    for (size_t r = 0; r < R; ++r) {
      finish(acc[r][0], c + r * ldc + j);
      finish(acc[r][1], c + r * ldc + j + kN);
    }
  }
  for (; j + kN <= n; j += kN) {
    VF acc[R];
    HWY_UNROLL(32)
    for (size_t r = 0; r < R; ++r) acc[r] = hn::Zero(d);
    for (int64_t kk = 0; kk < k; ++kk) {
      const VF w = hn::LoadU(d, b + kk * ldb + j);
      HWY_UNROLL(32)
      for (size_t r = 0; r < R; ++r)
        acc[r] = hn::MulAdd(hn::Set(d, a[r * sr + kk * sk]), w, acc[r]);
    }
    for (size_t r = 0; r < R; ++r) finish(acc[r], c + r * ldc + j);
  }
  for (; j < n; ++j)
    for (size_t r = 0; r < R; ++r) {
      float sum = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) sum += a[r * sr + kk * sk] * b[kk * ldb + j];
      float* out = c + r * ldc + j;
      *out = alpha * sum + (beta == 0.0f ? 0.0f : beta * *out);
    }
}

// Products too thin for the tiles: few rows (m < kFewRows: a decoder's single query against its
// keys or values) or, with op(B) = B, few features (a rank-k update: an attention's keys'
// gradient, weights^T x the context's gradient). Nothing is copied: with op(B) = B each row of B
// is read as it lies (R <= 4 rows of C at a time); with op(B) = B^T (and A as it is) each output
// is a dot product of two contiguous rows, four columns of C at a time. OpenBLAS spent about
// half of its time on these in copies (an RNN training step, Zen 3).
void FewRowsGemmImpl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const DF d;
  constexpr int64_t kN = static_cast<int64_t>(kLanes);
  const int64_t sr = ta ? 1 : lda, sk = ta ? lda : 1;  // a(r, kk) = a[r * sr + kk * sk]
  if (!tb) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4)
      FewRowsAxpy<4>(a + i * sr, sr, sk, n, k, alpha, b, ldb, beta, c + i * ldc, ldc);
    const float* ai = a + i * sr;
    float* ci = c + i * ldc;
    switch (m - i) {
      case 3: FewRowsAxpy<3>(ai, sr, sk, n, k, alpha, b, ldb, beta, ci, ldc); break;
      case 2: FewRowsAxpy<2>(ai, sr, sk, n, k, alpha, b, ldb, beta, ci, ldc); break;
      case 1: FewRowsAxpy<1>(ai, sr, sk, n, k, alpha, b, ldb, beta, ci, ldc); break;
      default: break;
    }
    return;
  }
  // C[i][j] = alpha * dot(A's row i, B's row j) + beta * C[i][j] (the caller never sends a
  // transposed A here).
  const int64_t kv = k / kN * kN;
  for (int64_t i = 0; i < m; ++i) {
    const float* ai = a + i * lda;
    float* ci = c + i * ldc;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      VF acc[4];
      HWY_UNROLL(32)
      for (int q = 0; q < 4; ++q) acc[q] = hn::Zero(d);
      for (int64_t kk = 0; kk < kv; kk += kN) {
        const VF x = hn::LoadU(d, ai + kk);
        HWY_UNROLL(32)
        for (int q = 0; q < 4; ++q)
          acc[q] = hn::MulAdd(x, hn::LoadU(d, b + (j + q) * ldb + kk), acc[q]);
      }
      for (int q = 0; q < 4; ++q) {
        float sum = hn::GetLane(hn::SumOfLanes(d, acc[q]));
        for (int64_t kk = kv; kk < k; ++kk) sum += ai[kk] * b[(j + q) * ldb + kk];
        ci[j + q] = alpha * sum + (beta == 0.0f ? 0.0f : beta * ci[j + q]);
      }
    }
    for (; j < n; ++j) {
      VF acc = hn::Zero(d);
      for (int64_t kk = 0; kk < kv; kk += kN)
        acc = hn::MulAdd(hn::LoadU(d, ai + kk), hn::LoadU(d, b + j * ldb + kk), acc);
      float sum = hn::GetLane(hn::SumOfLanes(d, acc));
      for (int64_t kk = kv; kk < k; ++kk) sum += ai[kk] * b[j * ldb + kk];
      ci[j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * ci[j]);
    }
  }
}

// ref::SumRowsOfOpA with a transposed A, as its own pass (the sums when the product did not pack
// A whole: AVX2's row blocks, OpenBLAS's and the small kernels' products): op(A)'s rows are the
// stored matrix's columns, so a lane is a column and every group of kGemmSumGroup stored rows is
// added from zero, then to the column's sum (SumStoredRows, the fused path's group sum), as the
// reference does one column at a time: the same operations in the same order, the same bits. The
// threads take runs of columns (each reads its stripe of every stored row once). One column at a
// time, strided, on one thread, the reference's loop over the output layer's [tokens, vocabulary]
// gradient took ~17 ms of a ~320 ms RNN training step with the AVX2 kernels (a Zen 4 with its
// AVX-512 targets disabled; docs/results.md, issue 20, twenty-second pass).
void SumColumnsImpl(int64_t m, int64_t k, const float* a, int64_t lda, float* sum) {
  const int64_t chunk = 512;
  const bool threads = m * k >= (int64_t{1} << 20) && m > chunk && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t i0 = 0; i0 < m; i0 += chunk) {
    const int64_t cols = std::min(chunk, m - i0);
    std::fill(sum + i0, sum + i0 + cols, 0.0f);
    for (int64_t k0 = 0; k0 < k; k0 += ref::kGemmSumGroup)
      SumStoredRows(a + i0, lda, cols, k0, 0, std::min(ref::kGemmSumGroup, k - k0), sum + i0,
                    /*add=*/true);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(PackedGemmImpl);
HWY_EXPORT(GemmImpl);
HWY_EXPORT(SmallGemmImpl);
HWY_EXPORT(FewRowsGemmImpl);
HWY_EXPORT(SumColumnsImpl);

void SumRowsOfOpA(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda, float* sum) {
  if (trans_a && m > 0 && k > 0) HWY_DYNAMIC_DISPATCH(SumColumnsImpl)(m, k, a, lda, sum);
  else ref::SumRowsOfOpA(trans_a, m, k, a, lda, sum);
}

void SmallGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || m > kSmallGemmMax || n > kSmallGemmMax || k > kSmallGemmMax) {
    Gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  HWY_DYNAMIC_DISPATCH(SmallGemmImpl)
  (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

bool FewRowsGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  if (trans_b ? trans_a || m >= kFewRows : m >= kFewRows && k >= kFewRows) return false;
  if (m <= 0 || n <= 0) return true;
  HWY_DYNAMIC_DISPATCH(FewRowsGemmImpl)
  (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return true;
}

void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          const float* bias, float* sum_a) {
  if (m <= 0) return;
  if (n <= 0 || k <= 0) {  // nothing to multiply: the sums (of no features, zeros) and beta * C
    if (sum_a) ref::SumRowsOfOpA(trans_a, m, k, a, lda, sum_a);
    sum_a = nullptr;
    if (n <= 0) return;
  }
  if (bias && beta != 0.0f) {  // the tile starts from the bias or from C, not from both
    Gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, sum_a);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] += bias[j];
    return;
  }
  if (k <= 0) {  // C = beta * C (+ bias); beta 0 never reads C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]) + (bias ? bias[j] : 0.0f);
    return;
  }
  if (!HWY_DYNAMIC_DISPATCH(GemmImpl)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                                      ldc, bias, sum_a) &&
      sum_a)
    SumRowsOfOpA(trans_a, m, k, a, lda, sum_a);
}

void PackedGemm(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed, int64_t n,
                const float* bias, float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(PackedGemmImpl)(x, m, k, ldx, packed, n, bias, y, ldy);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
