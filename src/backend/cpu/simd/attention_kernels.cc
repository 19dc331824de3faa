// Fused scaled dot-product attention in f32, written once with Highway and compiled per target:
// query tiles against streamed key/value blocks with the online softmax (forward), and the
// block-by-block recomputation of the weights (backward). Never an N x N buffer: the scratch of a
// thread is a few blocks plus one head's packed keys and values.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/attention_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "backend/cpu/attention_args.h"
#include "backend/cpu/reference/dropout_kernels.h"
#include "backend/cpu/simd/attention_kernels.h"
#include "backend/cpu/simd/dropout_kernels.h"
#include "backend/cpu/simd/math-inl.h"
#include "backend/cpu/simd/transpose-inl.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr int64_t kBq = kSdpaQueryBlock;
constexpr int64_t kBk = kSdpaKeyBlock;
// Widths of packed rows are padded to 16 floats: a whole number of vectors on every target.
constexpr int64_t kPad = 16;
// Register tile of the micro-kernel: kMainRows rows x kMaxVecs vectors of accumulators. With 32
// vector registers (AVX-512) 6 x 4 = 24 accumulators; with 16 (AVX2, baseline) 6 x 2 = 12, plus
// two of B and a broadcast (4 x 2 left a Zen 3 core's loads per FMA higher: 6-8 % slower fused
// attention, docs/results.md issue 20, eleventh pass). A row's sums keep their order either way.
constexpr int kMaxVecs = HWY_MAX_BYTES >= 64 ? 4 : 2;
constexpr int kMainRows = 6;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// The scores the tiles compute are in base 2: the packed keys carry scale * log2(e), so a weight
// is FastExp2(s - m), the running max m is in the same units, and lse = m ln 2 + ln l.
constexpr double kLog2e = 1.4426950408889634;
constexpr float kLn2 = 0.693147180559945309f;

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// C[r, 0:kVecs*N] (+)= sum_{k < kdim} A(r, k) * B[k, 0:kVecs*N] for r < kRows, where
// A(r, k) = a[r * ar + k * ak] is broadcast and B's rows are contiguous (stride ldb).
template <int kRows, int kVecs, bool kAccumulate>
HWY_INLINE void Tile(const float* HWY_RESTRICT a, int64_t ar, int64_t ak,
                     const float* HWY_RESTRICT b, int64_t ldb, int64_t kdim, float* HWY_RESTRICT c,
                     int64_t ldc) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  VF acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v)
      acc[r][v] = kAccumulate ? hn::LoadU(d, c + r * ldc + v * N) : hn::Zero(d);
  for (int64_t k = 0; k < kdim; ++k) {
    const float* HWY_RESTRICT brow = b + k * ldb;
    VF bv[kVecs];
    for (int v = 0; v < kVecs; ++v) bv[v] = hn::LoadU(d, brow + v * N);
    const float* HWY_RESTRICT ak_ptr = a + k * ak;
    for (int r = 0; r < kRows; ++r) {
      const VF av = hn::Set(d, ak_ptr[r * ar]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) hn::StoreU(acc[r][v], d, c + r * ldc + v * N);
}

template <int kRows, bool kAccumulate>
HWY_INLINE void TileVecs(int vecs, const float* a, int64_t ar, int64_t ak, const float* b,
                         int64_t ldb, int64_t kdim, float* c, int64_t ldc) {
  switch (vecs) {
    case 1: return Tile<kRows, 1, kAccumulate>(a, ar, ak, b, ldb, kdim, c, ldc);
    case 2:
      return Tile<kRows, (kMaxVecs >= 2 ? 2 : 1), kAccumulate>(a, ar, ak, b, ldb, kdim, c, ldc);
    case 3:
      return Tile<kRows, (kMaxVecs >= 3 ? 3 : 1), kAccumulate>(a, ar, ak, b, ldb, kdim, c, ldc);
    default: return Tile<kRows, kMaxVecs, kAccumulate>(a, ar, ak, b, ldb, kdim, c, ldc);
  }
}

// Which products of a causal block are needed. Query row r of the block sees key column jj of
// the block when jj <= r + off (off = i0 + Tk - Tq - j0); a block with off >= kBk - 1 is seen
// whole (kAll). A causal pass at N 1024 computes 72 blocks of 64 x 128, 16 of them diagonal, and
// 11 % of all its products fall past the diagonal: skipping them (to a chunk of columns and a
// tile of rows) leaves every result as it was, since their weights are 0 (Zen 3, one thread,
// B1 H8 N1024: causal forward 10-11 % faster, backward 11-15 %; docs/results.md).
//   kOutCols:    C's columns are keys, its rows queries (S = q k^T, dP = dout v^T): chunk c0 of
//                row r is computed when r + off >= c0, otherwise filled with `fill`.
//   kSumKeys:    the summed index is the key, rows are queries (o += P v, dq += dS k): a tile
//                sums k <= its last row + off.
//   kSumQueries: the summed index is the query, rows are keys (dv += P^T dout, dk += dS^T q): a
//                tile sums k >= its first row - off.
enum class Tri { kAll, kOutCols, kSumKeys, kSumQueries };

// C [rows, width] (+)= A [rows, kdim] B [kdim, width]; width is a multiple of the vector length.
// Column chunks outside, rows inside, so a chunk of B stays in L1 while the rows stream by.
template <bool kAccumulate, Tri kTri = Tri::kAll>
void Gemm(int64_t rows, int64_t width, int64_t kdim, const float* a, int64_t ar, int64_t ak,
          const float* b, int64_t ldb, float* c, int64_t ldc, int64_t off = 0, float fill = 0.0f) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  // The plain product keeps a loop of its own: through the lambda below it ran 2-4 % slower.
  if constexpr (kTri == Tri::kAll) {
    for (int64_t c0 = 0; c0 < width; c0 += kMaxVecs * N) {
      const int vecs = static_cast<int>(std::min<int64_t>(kMaxVecs, (width - c0) / N));
      const float* bc = b + c0;
      float* cc = c + c0;
      int64_t r = 0;
      for (; r + kMainRows <= rows; r += kMainRows)
        TileVecs<kMainRows, kAccumulate>(vecs, a + r * ar, ar, ak, bc, ldb, kdim, cc + r * ldc,
                                         ldc);
      const float* ar_ptr = a + r * ar;
      float* cr = cc + r * ldc;
      switch (rows - r) {
        case 0: break;
        case 1: TileVecs<1, kAccumulate>(vecs, ar_ptr, ar, ak, bc, ldb, kdim, cr, ldc); break;
        case 2: TileVecs<2, kAccumulate>(vecs, ar_ptr, ar, ak, bc, ldb, kdim, cr, ldc); break;
        case 3: TileVecs<3, kAccumulate>(vecs, ar_ptr, ar, ak, bc, ldb, kdim, cr, ldc); break;
        case 4: TileVecs<4, kAccumulate>(vecs, ar_ptr, ar, ak, bc, ldb, kdim, cr, ldc); break;
        default: TileVecs<5, kAccumulate>(vecs, ar_ptr, ar, ak, bc, ldb, kdim, cr, ldc); break;
      }
    }
    return;
  }
  // One tile of kRows rows from row r, over its range of k under kTri.
  const auto tile = [&](auto n_rows, int vecs, int64_t r, const float* bc, float* cc) {
    constexpr int kRows = decltype(n_rows)::value;
    int64_t k0 = 0, k1 = kdim;
    if constexpr (kTri == Tri::kSumKeys) k1 = std::clamp<int64_t>(r + kRows + off, 0, kdim);
    if constexpr (kTri == Tri::kSumQueries) k0 = std::clamp<int64_t>(r - off, 0, kdim);
    if constexpr (kTri == Tri::kSumKeys || kTri == Tri::kSumQueries) {
      if (k0 >= k1 && kAccumulate) return;  // nothing to add
    }
    TileVecs<kRows, kAccumulate>(vecs, a + r * ar + k0 * ak, ar, ak, bc + k0 * ldb, ldb,
                                 std::max<int64_t>(k1 - k0, 0), cc + r * ldc, ldc);
  };
  for (int64_t c0 = 0; c0 < width; c0 += kMaxVecs * N) {
    const int vecs = static_cast<int>(std::min<int64_t>(kMaxVecs, (width - c0) / N));
    const float* bc = b + c0;
    float* cc = c + c0;
    int64_t r = 0;
    if constexpr (kTri == Tri::kOutCols) {  // rows with r + off < c0 see none of this chunk
      r = std::clamp<int64_t>(c0 - off, 0, rows);
      const VF vf = hn::Set(d, fill);
      for (int64_t rr = 0; rr < r; ++rr)
        for (int v = 0; v < vecs; ++v) hn::StoreU(vf, d, cc + rr * ldc + v * N);
    }
    for (; r + kMainRows <= rows; r += kMainRows)
      tile(std::integral_constant<int, kMainRows>(), vecs, r, bc, cc);
    switch (rows - r) {
      case 0: break;
      case 1: tile(std::integral_constant<int, 1>(), vecs, r, bc, cc); break;
      case 2: tile(std::integral_constant<int, 2>(), vecs, r, bc, cc); break;
      case 3: tile(std::integral_constant<int, 3>(), vecs, r, bc, cc); break;
      case 4: tile(std::integral_constant<int, 4>(), vecs, r, bc, cc); break;
      default: tile(std::integral_constant<int, 5>(), vecs, r, bc, cc); break;
    }
  }
}

// out[c * ldo + j] = scale * in[j * ldi + c] for j < rows, c < cols: the packing's transposes,
// eight rows at a time through the GEMM's 8 x 8 register transposes (transpose-inl.h) where the
// target has them; element by element, each value was an extract and a store of its own 128
// floats from the last (Zen 4, one thread, B1 H8 N1024: the fused forward and backward passes
// 1.5-4 % faster this way, docs/results.md issue 20).
void TransposeScaled(const float* HWY_RESTRICT in, int64_t ldi, int64_t rows, int64_t cols,
                     float scale, float* HWY_RESTRICT out, int64_t ldo) {
  int64_t j = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  for (; j + 8 <= rows; j += 8) TransposeRows8(in + j * ldi, ldi, cols, scale, out + j, ldo);
#endif
  for (; j < rows; ++j)
    for (int64_t c = 0; c < cols; ++c) out[c * ldo + j] = in[j * ldi + c] * scale;
}

// One head's keys and values, packed for the micro-kernel, and what is known about each key
// block before any score is computed.
struct PackedHead {
  int64_t nkb = 0, dp = 0, dvp = 0;
  hwy::AlignedFreeUniquePtr<float[]> kt;    // [nkb, D, kBk]   scale * log2(e) * k^T per block
  hwy::AlignedFreeUniquePtr<float[]> vp;    // [nkb * kBk, Dvp] v, zero-padded (forward only)
  hwy::AlignedFreeUniquePtr<float[]> bias;  // [nkb * kBk]      0, or -inf for excluded keys
  std::vector<uint8_t> state;               // per block: 0 all keys in, 1 some out, 2 all out
  // Forward only: where the second product reads each block's rows of v, and their stride.
  std::vector<const float*> vrows;
  std::vector<int64_t> ldv;
  // Backward only:
  hwy::AlignedFreeUniquePtr<float[]> vt;  // [nkb, Dv, kBk]  v^T per block
  hwy::AlignedFreeUniquePtr<float[]> kp;  // [nkb * kBk, Dp] scale * k, zero-padded

  void Allocate(const SdpaArgs& a, bool backward) {
    nkb = (a.tk + kBk - 1) / kBk;
    dp = RoundUp(a.d, kPad);
    dvp = RoundUp(a.dv, kPad);
    kt = hwy::AllocateAligned<float>(nkb * a.d * kBk);
    if (!backward) vp = hwy::AllocateAligned<float>(nkb * kBk * dvp);
    vrows.assign(nkb, nullptr);
    ldv.assign(nkb, dvp);
    bias = hwy::AllocateAligned<float>(nkb * kBk);
    state.assign(nkb, 0);
    if (backward) {
      vt = hwy::AllocateAligned<float>(nkb * a.dv * kBk);
      kp = hwy::AllocateAligned<float>(nkb * kBk * dp);
    }
  }

  // Packs key blocks [kb0, kb1) of head (b, h).
  void Pack(const SdpaArgs& a, const float* k, const float* v, int64_t b, int64_t h, int64_t kb0,
            int64_t kb1, bool backward) {
    const float scale = static_cast<float>(a.scale);
    const float scale2 = static_cast<float>(a.scale * kLog2e);  // scores in base 2
    const int64_t kvb = a.KvBatch(b);
    const float* kh = k + kvb * a.k_stride[0] + h * a.k_stride[1];
    const float* vh = v + kvb * a.v_stride[0] + h * a.v_stride[1];
    for (int64_t kb = kb0; kb < kb1; ++kb) {
      const int64_t j0 = kb * kBk, cols = std::min(kBk, a.tk - j0);
      float* ktb = kt.get() + kb * a.d * kBk;
      int64_t excluded = kBk - cols;
      float* vtb = backward ? vt.get() + kb * a.dv * kBk : nullptr;
      // The forward reads a whole block of v in place when its rows are a whole number of
      // vectors (Dv = Dvp): the copy was 0.8 % of a forward pass at D 64 (Zen 4, one thread,
      // B1 H8 N1024, docs/results.md issue 20). The last block, past tk, and other widths are
      // copied with zeros around them.
      const bool v_in_place = !backward && cols == kBk && a.dv == dvp;
      if (!backward) {
        vrows[kb] = v_in_place ? vh + j0 * a.v_stride[2] : vp.get() + j0 * dvp;
        ldv[kb] = v_in_place ? a.v_stride[2] : dvp;
      }
      // Keys past tk (the last block's padding) are zero. The row copies are loops without a
      // condition per element, which the compiler vectorises (with one per element, the packing
      // was 4 % of a backward pass's time).
      for (int64_t jj = 0; jj < kBk; ++jj) {
        const int64_t j = j0 + jj;
        const bool in = jj < cols && !(a.key_padding && a.key_padding[kvb * a.tk + j]);
        bias[j] = in ? 0.0f : kNegInf;
        if (jj < cols && !in) ++excluded;
        float* vrow = backward || v_in_place ? nullptr : vp.get() + j * dvp;
        float* krow = backward ? kp.get() + j * dp : nullptr;
        if (jj >= cols) {
          for (int64_t c = 0; c < a.d; ++c) ktb[c * kBk + jj] = 0.0f;
          if (vrow) std::fill(vrow, vrow + dvp, 0.0f);
          if (backward) {
            for (int64_t c = 0; c < a.dv; ++c) vtb[c * kBk + jj] = 0.0f;
            std::fill(krow, krow + dp, 0.0f);
          }
          continue;
        }
        const float* kj = kh + j * a.k_stride[2];
        const float* vj = vh + j * a.v_stride[2];
        if (vrow) {
          std::copy(vj, vj + a.dv, vrow);
          std::fill(vrow + a.dv, vrow + dvp, 0.0f);
        }
        if (backward) {
          for (int64_t c = 0; c < a.d; ++c) krow[c] = kj[c] * scale;
          std::fill(krow + a.d, krow + dp, 0.0f);
        }
      }
      TransposeScaled(kh + j0 * a.k_stride[2], a.k_stride[2], cols, a.d, scale2, ktb, kBk);
      if (backward)
        TransposeScaled(vh + j0 * a.v_stride[2], a.v_stride[2], cols, a.dv, 1.0f, vtb, kBk);
      state[kb] = excluded == 0 ? 0 : excluded == kBk ? 2 : 1;
    }
  }
};

// Applies the padding bias and the causal limit to a row of kBk scores of query i against key
// block kb (excluded keys become -inf).
HWY_INLINE void MaskRow(const SdpaArgs& a, const PackedHead& pk, int64_t kb, int64_t i,
                        float* HWY_RESTRICT s) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const int64_t j0 = kb * kBk;
  if (pk.state[kb] == 1) {
    const float* bias = pk.bias.get() + j0;
    for (int64_t jj = 0; jj < kBk; jj += N)
      hn::StoreU(hn::Add(hn::LoadU(d, s + jj), hn::LoadU(d, bias + jj)), d, s + jj);
  }
  if (a.causal) {
    const int64_t limit = i + a.tk - a.tq - j0;  // keys jj > limit are in the future
    if (limit < kBk - 1) {
      const hn::RebindToSigned<DF> di;
      const auto lim = hn::Set(di, static_cast<int32_t>(std::max<int64_t>(limit, -1)));
      for (int64_t jj = 0; jj < kBk; jj += N) {
        const auto future = hn::RebindMask(d, hn::Gt(hn::Iota(di, static_cast<int32_t>(jj)), lim));
        hn::StoreU(hn::IfThenElse(future, hn::Set(d, kNegInf), hn::LoadU(d, s + jj)), d, s + jj);
      }
    }
  }
}

// Multiplies a row of weights of query i against key block kb by the dropout multipliers (and
// `other`, when given, by the same multipliers): the dropout op's kernel (simd/dropout_kernels.cc)
// on the counters the composed attention's Dropout gives these weights, so both drop the same
// ones (one splitmix64 draw per element, vectorised; a double per element through
// Generator::UniformD before).
void DropRow(const SdpaArgs& a, int64_t bh, int64_t i, int64_t kb, float* p, float* other) {
  const int64_t j0 = kb * kBk, cols = std::min(kBk, a.tk - j0);
  const float keep_scale = a.dropout >= 1.0 ? 0.0f : static_cast<float>(1.0 / (1.0 - a.dropout));
  const uint64_t base = a.offset + static_cast<uint64_t>((bh * a.tq + i) * a.tk + j0);
  HWY_ALIGN float z[kBk];
  Dropout(a.seed, base, ref::DropoutThreshold(a.dropout), keep_scale, p, z, p, cols);
  if (other)
    for (int64_t jj = 0; jj < cols; ++jj) other[jj] *= z[jj];
}

// Scratch of one thread. The running sums are kept per lane (lv, [kBq, N]) and added up into l
// once after the last key block (ForwardRows writes l), not once per block and row.
struct Scratch {
  hwy::AlignedFreeUniquePtr<float[]> s, o, m, l, lv;
  void Allocate(int64_t dvp) {
    const DF d;
    s = hwy::AllocateAligned<float>(kBq * kBk);
    o = hwy::AllocateAligned<float>(kBq * std::max<int64_t>(dvp, kPad));
    m = hwy::AllocateAligned<float>(kBq);
    l = hwy::AllocateAligned<float>(kBq);
    lv = hwy::AllocateAligned<float>(kBq * hn::Lanes(d));
  }
};

// The largest of a row of kBk scores: four independent chains, not one of kBk / N steps.
HWY_INLINE float RowMax(DF d, const float* HWY_RESTRICT sr) {
  const int64_t N = hn::Lanes(d);
  static_assert(kBk % (4 * hn::MaxLanes(DF())) == 0, "whole groups of four vectors per block");
  VF m0 = hn::LoadU(d, sr), m1 = hn::LoadU(d, sr + N);
  VF m2 = hn::LoadU(d, sr + 2 * N), m3 = hn::LoadU(d, sr + 3 * N);
  for (int64_t jj = 4 * N; jj < kBk; jj += 4 * N) {
    m0 = hn::Max(m0, hn::LoadU(d, sr + jj));
    m1 = hn::Max(m1, hn::LoadU(d, sr + jj + N));
    m2 = hn::Max(m2, hn::LoadU(d, sr + jj + 2 * N));
    m3 = hn::Max(m3, hn::LoadU(d, sr + jj + 3 * N));
  }
  return hn::GetLane(hn::MaxOfLanes(d, hn::Max(hn::Max(m0, m1), hn::Max(m2, m3))));
}

// The online softmax of query rows [i0, i0 + rows) of head (b, h) over key blocks [kb0, kb1):
// updates the running max m, sum l and unnormalised output o [rows, Dvp] in `sc`.
void ForwardRows(const SdpaArgs& a, const float* q, const PackedHead& pk, int64_t b, int64_t h,
                 int64_t i0, int64_t rows, int64_t kb0, int64_t kb1, Scratch& sc) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const int64_t shift = a.tk - a.tq, dvp = pk.dvp;
  const float* qrows = q + b * a.q_stride[0] + h * a.q_stride[1] + i0 * a.q_stride[2];
  float* s = sc.s.get();
  float* o = sc.o.get();
  for (int64_t kb = kb0; kb < kb1; ++kb) {
    if (pk.state[kb] == 2) continue;
    const int64_t j0 = kb * kBk;
    if (a.causal && j0 > i0 + rows - 1 + shift) break;  // this block and later ones: future
    // A diagonal block: row r sees columns jj <= r + off only (Tri).
    const int64_t off = i0 + shift - j0;
    const bool diagonal = a.causal && off < kBk - 1;
    const float* ktb = pk.kt.get() + kb * a.d * kBk;
    if (diagonal)
      Gemm<false, Tri::kOutCols>(rows, kBk, a.d, qrows, a.q_stride[2], 1, ktb, kBk, s, kBk, off,
                                 kNegInf);
    else Gemm<false>(rows, kBk, a.d, qrows, a.q_stride[2], 1, ktb, kBk, s, kBk);
    // The rows' new maxima first, then their weights: a row's exponentials then wait on no
    // reduction just before them, and the core overlaps one row's with the next one's.
    HWY_ALIGN float row_max[kBq], alpha[kBq];
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * kBk;
      MaskRow(a, pk, kb, i0 + r, sr);
      row_max[r] = std::max(sc.m[r], RowMax(d, sr));
    }
    // Each row's factor 2^(m_old - m_new) for what came before, a vector of rows at a time:
    // exactly 1 where the max stayed (so the rescale below, done for every row without a branch,
    // changes nothing there) and 0 where it was -inf; rows past `rows` are computed, not used.
    // Against a branch per row and std::exp2 where the max rose: D64 forward 1 % faster on a
    // Zen 4 (docs/results.md issue 20).
    std::fill(row_max + rows, row_max + RoundUp(rows, N), 0.0f);
    for (int64_t r = 0; r < rows; r += N)
      hn::Store(FastExp2Below128(d, hn::Sub(hn::Load(d, sc.m.get() + r), hn::Load(d, row_max + r))),
                d, alpha + r);
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * kBk;
      const float m_new = row_max[r];
      if (m_new == kNegInf) {  // nothing visible yet: weights zero, state unchanged
        for (int64_t jj = 0; jj < kBk; jj += N) hn::StoreU(hn::Zero(d), d, sr + jj);
        continue;
      }
      // The vectors past the row's last visible key hold -inf: their weights are 0.
      const int64_t seen = diagonal ? std::clamp<int64_t>(RoundUp(r + off + 1, N), 0, kBk) : kBk;
      const VF vm = hn::Set(d, m_new);
      VF sum = hn::Zero(d);
      for (int64_t jj = 0; jj < seen; jj += N) {
        const VF p = FastExp2Below128(d, hn::Sub(hn::LoadU(d, sr + jj), vm));  // 2^-inf = 0
        sum = hn::Add(sum, p);
        hn::StoreU(p, d, sr + jj);
      }
      for (int64_t jj = seen; jj < kBk; jj += N) hn::StoreU(hn::Zero(d), d, sr + jj);
      float* lr = sc.lv.get() + r * N;
      const VF va = hn::Set(d, alpha[r]);
      float* orow = o + r * dvp;
      for (int64_t c = 0; c < dvp; c += N)
        hn::StoreU(hn::Mul(hn::LoadU(d, orow + c), va), d, orow + c);
      hn::StoreU(hn::MulAdd(hn::LoadU(d, lr), va, sum), d, lr);
      sc.m[r] = m_new;
      if (a.dropout > 0.0) DropRow(a, b * a.heads + h, i0 + r, kb, sr, nullptr);
    }
    if (diagonal)
      Gemm<true, Tri::kSumKeys>(rows, dvp, kBk, s, kBk, 1, pk.vrows[kb], pk.ldv[kb], o, dvp, off);
    else Gemm<true>(rows, dvp, kBk, s, kBk, 1, pk.vrows[kb], pk.ldv[kb], o, dvp);
  }
  for (int64_t r = 0; r < rows; ++r)
    sc.l[r] = hn::GetLane(hn::SumOfLanes(d, hn::LoadU(d, sc.lv.get() + r * N)));
}

void ResetRows(Scratch& sc, int64_t rows, int64_t dvp) {
  const DF d;
  std::fill(sc.m.get(), sc.m.get() + RoundUp(rows, hn::Lanes(d)), kNegInf);
  std::fill(sc.lv.get(), sc.lv.get() + rows * hn::Lanes(d), 0.0f);
  std::fill(sc.o.get(), sc.o.get() + rows * dvp, 0.0f);
}

// Whether a call is big enough to be worth a parallel region (tens of microseconds on a busy
// shared machine).
inline bool WorthThreads(const SdpaArgs& a) {
  return static_cast<double>(a.batch * a.heads) * a.tq * a.tk * (a.d + a.dv) >= (1 << 20);
}

// Decoding: one query per head against a short list of keys, without dropout. Scores, softmax
// and the weighted sum of values head by head, reading k and v in place: no packing, no tiles,
// no parallel region (their fixed costs dominate a 1 x ~20 problem). The softmax runs over whole
// vectors of scores and the output's vectors stay in registers across the keys. Same results as
// the tiled path up to rounding; a row with every key excluded gives zeros and lse = +inf, as
// there.
constexpr int64_t kDecodeMaxKeys = 1024;

HWY_INLINE float Dot(DF d, const float* x, const float* y, int64_t n) {
  const int64_t N = hn::Lanes(d);
  VF acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) acc = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), acc);
  float s = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

void DecodeForward(const SdpaArgs& a, const float* q, const float* k, const float* v, float* out,
                   float* lse) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  static thread_local std::vector<float> p;
  const int64_t tkp = RoundUp(a.tk, N);  // the scores padded with -inf to whole vectors
  p.resize(tkp);
  const float scale = static_cast<float>(a.scale);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h) {
      const float* qp = q + b * a.q_stride[0] + h * a.q_stride[1];
      const float* kp = k + a.KvBatch(b) * a.k_stride[0] + h * a.k_stride[1];
      const float* vp = v + a.KvBatch(b) * a.v_stride[0] + h * a.v_stride[1];
      float* o = out + (b * a.heads + h) * a.dv;
      // Scores, then their max, N at a time (the previous head left weights in the padding).
      std::fill(p.begin() + a.tk, p.end(), kNegInf);
      for (int64_t j = 0; j < a.tk; ++j)
        p[j] = a.Excluded(b, 0, j) ? kNegInf : scale * Dot(d, qp, kp + j * a.k_stride[2], a.d);
      VF mx = hn::Set(d, kNegInf);
      for (int64_t j = 0; j < tkp; j += N) mx = hn::Max(mx, hn::LoadU(d, p.data() + j));
      const float m = hn::GetLane(hn::MaxOfLanes(d, mx));
      std::fill(o, o + a.dv, 0.0f);
      if (m == kNegInf) {
        lse[b * a.heads + h] = std::numeric_limits<float>::infinity();
        continue;
      }
      // Weights exp(s - m) in place (0 for excluded keys and the padding), and their sum.
      const VF vm = hn::Set(d, m);
      VF sum = hn::Zero(d);
      for (int64_t j = 0; j < tkp; j += N) {
        const VF w = FastExp(d, hn::Sub(hn::LoadU(d, p.data() + j), vm));
        sum = hn::Add(sum, w);
        hn::StoreU(w, d, p.data() + j);
      }
      const float total = hn::GetLane(hn::SumOfLanes(d, sum));
      // The weighted sum of the values, kMaxVecs vectors of the output held in registers over
      // every key (excluded keys skipped, as the tiled path never reads them).
      const VF inv = hn::Set(d, 1.0f / total);
      int64_t c0 = 0;
      for (; c0 + kMaxVecs * N <= a.dv; c0 += kMaxVecs * N) {
        VF acc[kMaxVecs];
        for (int u = 0; u < kMaxVecs; ++u) acc[u] = hn::Zero(d);
        for (int64_t j = 0; j < a.tk; ++j) {
          if (p[j] == 0.0f && a.Excluded(b, 0, j)) continue;
          const VF w = hn::Set(d, p[j]);
          const float* vr = vp + j * a.v_stride[2] + c0;
          for (int u = 0; u < kMaxVecs; ++u)
            acc[u] = hn::MulAdd(w, hn::LoadU(d, vr + u * N), acc[u]);
        }
        for (int u = 0; u < kMaxVecs; ++u) hn::StoreU(hn::Mul(acc[u], inv), d, o + c0 + u * N);
      }
      for (; c0 + N <= a.dv; c0 += N) {
        VF acc = hn::Zero(d);
        for (int64_t j = 0; j < a.tk; ++j) {
          if (p[j] == 0.0f && a.Excluded(b, 0, j)) continue;
          acc = hn::MulAdd(hn::Set(d, p[j]), hn::LoadU(d, vp + j * a.v_stride[2] + c0), acc);
        }
        hn::StoreU(hn::Mul(acc, inv), d, o + c0);
      }
      for (; c0 < a.dv; ++c0) {
        float acc = 0.0f;
        for (int64_t j = 0; j < a.tk; ++j)
          if (!(p[j] == 0.0f && a.Excluded(b, 0, j))) acc += p[j] * vp[j * a.v_stride[2] + c0];
        o[c0] = acc / total;
      }
      lse[b * a.heads + h] = m + std::log(total);
    }
}

void SdpaForwardImpl(const SdpaArgs& a, const float* q, const float* k, const float* v, float* out,
                     float* lse) {
  if (a.tq == 1 && a.dropout == 0.0 && a.tk <= kDecodeMaxKeys) {
    DecodeForward(a, q, k, v, out, lse);
    return;
  }
  const int64_t bhs = a.batch * a.heads;
  const int64_t nkb = (a.tk + kBk - 1) / kBk, nqb = (a.tq + kBq - 1) / kBq;
  const int64_t dvp = RoundUp(a.dv, kPad);
  const int64_t nchunks = SdpaSplitChunks(a.tq, a.tk);
  if (bhs == 0 || a.tq == 0) return;

  if (nchunks > 1) {
    // Single query: each (head, key chunk) item leaves a partial (max, sum, output); the
    // partials are combined per head at the end.
    const int64_t per_chunk = (nkb + nchunks - 1) / nchunks;
    const int64_t stride = dvp + 2;
    auto partial = hwy::AllocateAligned<float>(bhs * nchunks * stride);
#pragma omp parallel if (WorthThreads(a))
    {
      PackedHead pk;
      pk.Allocate(a, false);
      Scratch sc;
      sc.Allocate(dvp);
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < bhs * nchunks; ++item) {
        const int64_t bh = item / nchunks, chunk = item % nchunks;
        const int64_t b = bh / a.heads, h = bh % a.heads;
        const int64_t kb0 = std::min(nkb, chunk * per_chunk), kb1 = std::min(nkb, kb0 + per_chunk);
        pk.Pack(a, k, v, b, h, kb0, kb1, false);
        ResetRows(sc, 1, dvp);
        ForwardRows(a, q, pk, b, h, 0, 1, kb0, kb1, sc);
        float* pr = partial.get() + item * stride;
        pr[0] = sc.m[0];
        pr[1] = sc.l[0];
        std::copy(sc.o.get(), sc.o.get() + dvp, pr + 2);
      }
    }
    for (int64_t bh = 0; bh < bhs; ++bh) {
      const float* pr = partial.get() + bh * nchunks * stride;
      float m = kNegInf;
      for (int64_t c = 0; c < nchunks; ++c) m = std::max(m, pr[c * stride]);
      float* orow = out + bh * a.dv;
      std::fill(orow, orow + a.dv, 0.0f);
      if (m == kNegInf) {
        lse[bh] = std::numeric_limits<float>::infinity();
        continue;
      }
      float l = 0.0f;
      for (int64_t c = 0; c < nchunks; ++c) {
        const float* pc = pr + c * stride;
        const float w = std::exp2(pc[0] - m);  // 0 for chunks that saw nothing
        l += w * pc[1];
        for (int64_t x = 0; x < a.dv; ++x) orow[x] += w * pc[2 + x];
      }
      for (int64_t x = 0; x < a.dv; ++x) orow[x] /= l;
      lse[bh] = m * kLn2 + std::log(l);
    }
    return;
  }

#pragma omp parallel if (WorthThreads(a))
  {
    PackedHead pk;
    pk.Allocate(a, false);
    Scratch sc;
    sc.Allocate(dvp);
    int64_t packed_bh = -1;
    // Items go head by head, so consecutive items of a thread mostly share the packed head.
    // Causal: the last query blocks see the most keys, so they are handed out first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < bhs * nqb; ++item) {
      const int64_t bh = item / nqb;
      const int64_t qb = a.causal ? nqb - 1 - item % nqb : item % nqb;
      const int64_t b = bh / a.heads, h = bh % a.heads;
      if (bh != packed_bh) {
        pk.Pack(a, k, v, b, h, 0, nkb, false);
        packed_bh = bh;
      }
      const int64_t i0 = qb * kBq, rows = std::min(kBq, a.tq - i0);
      ResetRows(sc, rows, dvp);
      ForwardRows(a, q, pk, b, h, i0, rows, 0, nkb, sc);
      for (int64_t r = 0; r < rows; ++r) {
        const float l = sc.l[r];
        float* orow = out + (bh * a.tq + i0 + r) * a.dv;
        const float* acc = sc.o.get() + r * dvp;
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int64_t x = 0; x < a.dv; ++x) orow[x] = acc[x] * inv;
        lse[bh * a.tq + i0 + r] =
            l > 0.0f ? sc.m[r] * kLn2 + std::log(l) : std::numeric_limits<float>::infinity();
      }
    }
  }
}

// Backward of one head: what is packed once per head on top of the keys and values.
struct PackedQueries {
  int64_t nqb = 0;
  hwy::AlignedFreeUniquePtr<float[]> qp;    // [nqb * kBq, Dp]  q, zero-padded
  hwy::AlignedFreeUniquePtr<float[]> dop;   // [nqb * kBq, Dvp] dout, zero-padded
  hwy::AlignedFreeUniquePtr<float[]> dvec;  // [Tq] D_i = rowsum(dout * out)
  void Allocate(const SdpaArgs& a, int64_t dp, int64_t dvp) {
    nqb = (a.tq + kBq - 1) / kBq;
    qp = hwy::AllocateAligned<float>(nqb * kBq * dp);
    dop = hwy::AllocateAligned<float>(nqb * kBq * dvp);
    dvec = hwy::AllocateAligned<float>(std::max<int64_t>(a.tq, 1));
  }
  void Pack(const SdpaArgs& a, const float* q, const float* out, const float* dout, int64_t b,
            int64_t h, int64_t dp, int64_t dvp) {
    const int64_t bh = b * a.heads + h;
    const float* qh = q + b * a.q_stride[0] + h * a.q_stride[1];
    for (int64_t i = 0; i < nqb * kBq; ++i) {
      float* qrow = qp.get() + i * dp;
      float* drow = dop.get() + i * dvp;
      if (i >= a.tq) {  // the last block's padding rows
        std::fill(qrow, qrow + dp, 0.0f);
        std::fill(drow, drow + dvp, 0.0f);
        continue;
      }
      const float* qi = qh + i * a.q_stride[2];
      std::copy(qi, qi + a.d, qrow);
      std::fill(qrow + a.d, qrow + dp, 0.0f);
      const float* gi = dout + (bh * a.tq + i) * a.dv;
      const float* oi = out + (bh * a.tq + i) * a.dv;
      std::copy(gi, gi + a.dv, drow);
      std::fill(drow + a.dv, drow + dvp, 0.0f);
      // D_i in double, four running sums (one was a chain of dependent multiply-adds, 4 % of a
      // backward pass's time), added pairwise at the end.
      double di[4] = {0.0, 0.0, 0.0, 0.0};
      int64_t c = 0;
      for (; c + 4 <= a.dv; c += 4)
        for (int u = 0; u < 4; ++u) di[u] += static_cast<double>(gi[c + u]) * oi[c + u];
      for (; c < a.dv; ++c) di[0] += static_cast<double>(gi[c]) * oi[c];
      dvec[i] = static_cast<float>((di[0] + di[1]) + (di[2] + di[3]));
    }
  }
};

struct BackwardScratch {
  hwy::AlignedFreeUniquePtr<float[]> p, pz, ds, dk, dv;
  void Allocate(int64_t dp, int64_t dvp) {
    p = hwy::AllocateAligned<float>(kBq * kBk);
    pz = hwy::AllocateAligned<float>(kBq * kBk);
    ds = hwy::AllocateAligned<float>(kBq * kBk);
    dk = hwy::AllocateAligned<float>(kBk * dp);
    dv = hwy::AllocateAligned<float>(kBk * dvp);
  }
};

// Key block kb of head (b, h) against every query block that sees it: writes dk and dv of the
// block's keys and adds its share of dq (scaled) into dq_acc [nqb * kBq, Dp].
void BackwardKeyBlock(const SdpaArgs& a, const PackedHead& pk, const PackedQueries& pq,
                      const float* lse_h, int64_t b, int64_t h, int64_t kb, float* dq_acc,
                      BackwardScratch& sc, float* dk, float* dv) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const int64_t bh = b * a.heads + h, shift = a.tk - a.tq, dp = pk.dp, dvp = pk.dvp;
  const int64_t j0 = kb * kBk, cols = std::min(kBk, a.tk - j0);
  std::fill(sc.dk.get(), sc.dk.get() + kBk * dp, 0.0f);
  std::fill(sc.dv.get(), sc.dv.get() + kBk * dvp, 0.0f);
  if (pk.state[kb] != 2) {
    // Causal: query i sees this block once i + shift >= j0.
    const int64_t first_q = a.causal ? std::max<int64_t>(0, j0 - shift) : 0;
    for (int64_t qb = first_q / kBq; qb < pq.nqb; ++qb) {
      const int64_t i0 = qb * kBq, rows = std::min(kBq, a.tq - i0);
      float* p = sc.p.get();
      float* ds = sc.ds.get();
      // A diagonal block: row r sees columns jj <= r + off only (Tri).
      const int64_t off = i0 + shift - j0;
      const bool diagonal = a.causal && off < kBk - 1;
      // S = q (scale k)^T and dP~ = dout v^T, [rows, kBk].
      const float* qb_rows = pq.qp.get() + i0 * dp;
      const float* dob_rows = pq.dop.get() + i0 * dvp;
      const float* ktb = pk.kt.get() + kb * a.d * kBk;
      const float* vtb = pk.vt.get() + kb * a.dv * kBk;
      if (diagonal) {
        Gemm<false, Tri::kOutCols>(rows, kBk, a.d, qb_rows, dp, 1, ktb, kBk, p, kBk, off, kNegInf);
        Gemm<false, Tri::kOutCols>(rows, kBk, a.dv, dob_rows, dvp, 1, vtb, kBk, ds, kBk, off, 0.0f);
      } else {
        Gemm<false>(rows, kBk, a.d, qb_rows, dp, 1, ktb, kBk, p, kBk);
        Gemm<false>(rows, kBk, a.dv, dob_rows, dvp, 1, vtb, kBk, ds, kBk);
      }
      float* pz = a.dropout > 0.0 ? sc.pz.get() : p;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        float* pr = p + r * kBk;
        float* dr = ds + r * kBk;
        MaskRow(a, pk, kb, i, pr);
        // The vectors past the row's last visible key: P = 0 and dS = 0.
        const int64_t seen = diagonal ? std::clamp<int64_t>(RoundUp(r + off + 1, N), 0, kBk) : kBk;
        // lse in base 2 (+inf for rows that see nothing: p = 0)
        const VF vl = hn::Set(d, static_cast<float>(lse_h[i] * kLog2e));
        for (int64_t jj = 0; jj < seen; jj += N)
          hn::StoreU(FastExp2Below128(d, hn::Sub(hn::LoadU(d, pr + jj), vl)), d, pr + jj);
        for (int64_t jj = seen; jj < kBk; jj += N) hn::StoreU(hn::Zero(d), d, pr + jj);
        if (a.dropout > 0.0) {
          std::copy(pr, pr + kBk, pz + r * kBk);
          DropRow(a, bh, i, kb, pz + r * kBk, dr);
        }
        // dS = P * (dP - D_i)
        const VF vd = hn::Set(d, pq.dvec[i]);
        for (int64_t jj = 0; jj < seen; jj += N) {
          const VF pv = hn::LoadU(d, pr + jj);
          hn::StoreU(hn::Mul(pv, hn::Sub(hn::LoadU(d, dr + jj), vd)), d, dr + jj);
        }
        for (int64_t jj = seen; jj < kBk; jj += N) hn::StoreU(hn::Zero(d), d, dr + jj);
      }
      // dv += (P z)^T dout, dk += dS^T q (scaled at the end), dq += dS (scale k).
      const float* kpb = pk.kp.get() + j0 * dp;
      if (diagonal) {
        Gemm<true, Tri::kSumQueries>(kBk, dvp, rows, pz, 1, kBk, dob_rows, dvp, sc.dv.get(), dvp,
                                     off);
        Gemm<true, Tri::kSumQueries>(kBk, dp, rows, ds, 1, kBk, qb_rows, dp, sc.dk.get(), dp, off);
        Gemm<true, Tri::kSumKeys>(rows, dp, kBk, ds, kBk, 1, kpb, dp, dq_acc + i0 * dp, dp, off);
      } else {
        Gemm<true>(kBk, dvp, rows, pz, 1, kBk, dob_rows, dvp, sc.dv.get(), dvp);
        Gemm<true>(kBk, dp, rows, ds, 1, kBk, qb_rows, dp, sc.dk.get(), dp);
        Gemm<true>(rows, dp, kBk, ds, kBk, 1, kpb, dp, dq_acc + i0 * dp, dp);
      }
    }
  }
  const float scale = static_cast<float>(a.scale);
  for (int64_t jj = 0; jj < cols; ++jj) {
    float* dkr = dk + (bh * a.tk + j0 + jj) * a.d;
    float* dvr = dv + (bh * a.tk + j0 + jj) * a.dv;
    for (int64_t c = 0; c < a.d; ++c) dkr[c] = sc.dk[jj * dp + c] * scale;
    for (int64_t c = 0; c < a.dv; ++c) dvr[c] = sc.dv[jj * dvp + c];
  }
}

void SdpaBackwardImpl(const SdpaArgs& a, const float* q, const float* k, const float* v,
                      const float* out, const float* dout, const float* lse, float* dq, float* dk,
                      float* dv) {
  if (a.kv_batch != nullptr) std::abort();  // forward only (the op never asks for it)
  const int64_t bhs = a.batch * a.heads;
  if (bhs == 0) return;
  const int64_t nkb = (a.tk + kBk - 1) / kBk;
  const int64_t dp = RoundUp(a.d, kPad), dvp = RoundUp(a.dv, kPad);
  const int64_t nqb = (a.tq + kBq - 1) / kBq;
  const bool threads = WorthThreads(a);
  const int nthreads = threads ? omp_get_max_threads() : 1;

  if (bhs >= nthreads) {
    // One thread per head: dq accumulates privately, nothing to combine.
#pragma omp parallel if (threads)
    {
      PackedHead pk;
      pk.Allocate(a, true);
      PackedQueries pq;
      pq.Allocate(a, dp, dvp);
      BackwardScratch sc;
      sc.Allocate(dp, dvp);
      auto dq_acc = hwy::AllocateAligned<float>(nqb * kBq * dp);
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < bhs; ++bh) {
        const int64_t b = bh / a.heads, h = bh % a.heads;
        pk.Pack(a, k, v, b, h, 0, nkb, true);
        pq.Pack(a, q, out, dout, b, h, dp, dvp);
        std::fill(dq_acc.get(), dq_acc.get() + nqb * kBq * dp, 0.0f);
        for (int64_t kb = 0; kb < nkb; ++kb)
          BackwardKeyBlock(a, pk, pq, lse + bh * a.tq, b, h, kb, dq_acc.get(), sc, dk, dv);
        for (int64_t i = 0; i < a.tq; ++i)
          std::copy(dq_acc.get() + i * dp, dq_acc.get() + i * dp + a.d, dq + (bh * a.tq + i) * a.d);
      }
    }
    return;
  }

  // Fewer heads than threads: the key blocks of each head are split over the threads, each
  // adding into its own dq buffer; the buffers are summed at the end of the head.
  PackedHead pk;
  pk.Allocate(a, true);
  PackedQueries pq;
  pq.Allocate(a, dp, dvp);
  auto dq_acc = hwy::AllocateAligned<float>(nthreads * nqb * kBq * dp);
  for (int64_t bh = 0; bh < bhs; ++bh) {
    const int64_t b = bh / a.heads, h = bh % a.heads;
    pk.Pack(a, k, v, b, h, 0, nkb, true);
    pq.Pack(a, q, out, dout, b, h, dp, dvp);
    std::fill(dq_acc.get(), dq_acc.get() + nthreads * nqb * kBq * dp, 0.0f);
#pragma omp parallel num_threads(nthreads)
    {
      BackwardScratch sc;
      sc.Allocate(dp, dvp);
      float* mine = dq_acc.get() + omp_get_thread_num() * nqb * kBq * dp;
#pragma omp for schedule(dynamic, 1)
      for (int64_t kb = 0; kb < nkb; ++kb)
        BackwardKeyBlock(a, pk, pq, lse + bh * a.tq, b, h, kb, mine, sc, dk, dv);
    }
    for (int64_t i = 0; i < a.tq; ++i)
      for (int64_t c = 0; c < a.d; ++c) {
        float s = 0.0f;
        for (int t = 0; t < nthreads; ++t) s += dq_acc[(t * nqb * kBq + i) * dp + c];
        dq[(bh * a.tq + i) * a.d + c] = s;
      }
  }
}

// y = f(x) element by element, whole vectors then one lane at a time.
template <class F>
void Elementwise(F f, const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] = hn::GetLane(f(d, hn::Set(d, x[i])));
}

// FastExp, FastExp2 and FastExp2Below128 element by element, for their tests.
void FastExpImpl(const float* x, float* y, int64_t n) {
  Elementwise([](DF d, VF v) HWY_ATTR { return FastExp(d, v); }, x, y, n);
}
void FastExp2Impl(const float* x, float* y, int64_t n) {
  Elementwise([](DF d, VF v) HWY_ATTR { return FastExp2(d, v); }, x, y, n);
}
void FastExp2Below128Impl(const float* x, float* y, int64_t n) {
  Elementwise([](DF d, VF v) HWY_ATTR { return FastExp2Below128(d, v); }, x, y, n);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(SdpaForwardImpl);
HWY_EXPORT(SdpaBackwardImpl);
HWY_EXPORT(FastExpImpl);
HWY_EXPORT(FastExp2Impl);
HWY_EXPORT(FastExp2Below128Impl);

void FastExp(const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(FastExpImpl)(x, y, n); }
void FastExp2(const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(FastExp2Impl)(x, y, n); }
void FastExp2Below128(const float* x, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(FastExp2Below128Impl)(x, y, n);
}

int64_t SdpaSplitChunks(int64_t tq, int64_t tk) {
  // A single query has one row of work per head: split its keys into chunks of at least four
  // blocks, at most 16 chunks, independent of the thread count so results do not depend on it.
  if (tq != 1) return 1;
  const int64_t nkb = (tk + kSdpaKeyBlock - 1) / kSdpaKeyBlock;
  return std::min<int64_t>(16, nkb / 4) > 1 ? std::min<int64_t>(16, nkb / 4) : 1;
}

void SdpaForward(const SdpaArgs& a, const float* q, const float* k, const float* v, float* out,
                 float* lse) {
  HWY_DYNAMIC_DISPATCH(SdpaForwardImpl)(a, q, k, v, out, lse);
}
void SdpaBackward(const SdpaArgs& a, const float* q, const float* k, const float* v,
                  const float* out, const float* dout, const float* lse, float* dq, float* dk,
                  float* dv) {
  HWY_DYNAMIC_DISPATCH(SdpaBackwardImpl)(a, q, k, v, out, dout, lse, dq, dk, dv);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
