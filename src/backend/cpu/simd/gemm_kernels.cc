// Highway implementation of the small-batch GEMM on a packed weight. Each tile keeps MR rows of
// the output x one panel (kPackPanel = 32 columns, NV vectors) in registers and walks k once:
// per k, NV loads of the panel and MR broadcasts of x feed MR * NV fused multiply-adds. The
// panel loop is outermost, so the weight streams from memory once per call while the few rows of
// x stay in cache.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/gemm_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include <algorithm>

#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/simd/gemm_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr size_t kLanes = hn::MaxLanes(DF());
constexpr size_t kNV = kPackPanel / kLanes;            // vectors per panel row
constexpr size_t kMR = kNV >= 12 ? 1 : 12 / kNV;       // rows per tile: ~12 accumulators

// Rows [0, MR) of x against one panel; `cols` of the panel's 32 columns are stored.
template <size_t MR>
HWY_INLINE void Tile(const float* HWY_RESTRICT x, int64_t k, int64_t ldx,
                     const float* HWY_RESTRICT panel, const float* bias, float* y, int64_t ldy,
                     int64_t cols) {
  const DF d;
  // The accumulators live in registers only when these constant loops are unrolled, which -O2
  // alone does not do.
  VF acc[MR][kNV];
  HWY_UNROLL(32)
  for (size_t v = 0; v < kNV; ++v) {
    const VF b0 = bias && cols == kPackPanel ? hn::LoadU(d, bias + v * kLanes) : hn::Zero(d);
    HWY_UNROLL(32)
    for (size_t r = 0; r < MR; ++r) acc[r][v] = b0;
  }
  for (int64_t kk = 0; kk < k; ++kk) {
    VF w[kNV];
    HWY_UNROLL(32)
    for (size_t v = 0; v < kNV; ++v) w[v] = hn::LoadU(d, panel + kk * kPackPanel + v * kLanes);
    HWY_UNROLL(32)
    for (size_t r = 0; r < MR; ++r) {
      const VF xr = hn::Set(d, x[r * ldx + kk]);
      HWY_UNROLL(32)
      for (size_t v = 0; v < kNV; ++v) acc[r][v] = hn::MulAdd(xr, w[v], acc[r][v]);
    }
  }
  if (cols == kPackPanel) {
    for (size_t r = 0; r < MR; ++r)
      for (size_t v = 0; v < kNV; ++v) hn::StoreU(acc[r][v], d, y + r * ldy + v * kLanes);
    return;
  }
  // The last, partial panel: through a buffer, adding the bias of the columns that exist.
  HWY_ALIGN float buf[kPackPanel];
  for (size_t r = 0; r < MR; ++r) {
    for (size_t v = 0; v < kNV; ++v) hn::Store(acc[r][v], d, buf + v * kLanes);
    for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = buf[c] + (bias ? bias[c] : 0.0f);
  }
}

// Rows [0, m) with m < MR: the largest smaller tile first.
template <size_t MR>
HWY_INLINE void TailRows(int64_t m, const float* x, int64_t k, int64_t ldx, const float* panel,
                         const float* bias, float* y, int64_t ldy, int64_t cols) {
  if constexpr (MR > 1) {
    if (m >= static_cast<int64_t>(MR - 1)) {
      Tile<MR - 1>(x, k, ldx, panel, bias, y, ldy, cols);
      m -= MR - 1;
      x += (MR - 1) * ldx;
      y += (MR - 1) * ldy;
    }
    if (m > 0) TailRows<MR - 1>(m, x, k, ldx, panel, bias, y, ldy, cols);
  }
}

void PackedGemmImpl(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed,
                    int64_t n, const float* bias, float* y, int64_t ldy) {
  const int64_t panels = (n + kPackPanel - 1) / kPackPanel;
  // A parallel region costs microseconds (far more under load): only for large products.
  const bool threads = m * n * k >= (int64_t{1} << 22);
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t p = 0; p < panels; ++p) {
    const float* panel = packed + p * k * kPackPanel;
    const int64_t c0 = p * kPackPanel, cols = std::min<int64_t>(kPackPanel, n - c0);
    const float* b = bias ? bias + c0 : nullptr;
    int64_t i = 0;
    for (; i + static_cast<int64_t>(kMR) <= m; i += kMR)
      Tile<kMR>(x + i * ldx, k, ldx, panel, b, y + i * ldy + c0, ldy, cols);
    if (i < m) TailRows<kMR>(m - i, x + i * ldx, k, ldx, panel, b, y + i * ldy + c0, ldy, cols);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(PackedGemmImpl);

void PackedGemm(const float* x, int64_t m, int64_t k, int64_t ldx, const float* packed, int64_t n,
                const float* bias, float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(PackedGemmImpl)(x, m, k, ldx, packed, n, bias, y, ldy);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
