// Highway kernels of 2x2 / stride-2 max pooling over one output row (the common case of
// MaxPool2d, src/ops/pool.cc), compiled once per target and dispatched at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/pool_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include "backend/cpu/reference/pool_kernels.h"
#include "backend/cpu/simd/pool_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The f32 rows of the scalar kernels above, a vector of outputs at a time: the even and odd
// columns of each input row are split apart by LoadInterleaved2 and merged back by
// StoreInterleaved2, and the decisions are the same comparisons as TakesMax, lane by lane.
// Each returns the first output it did not reach (tails are left to narrower vectors).
// The windows of outputs [i, i + lanes): a b over c e. Returns their maxima; take_b, take_c and
// take_e say where that element replaced the running maximum (greater, or NaN).
template <class D, class M = hn::Mask<D>>
HWY_INLINE hn::Vec<D> WindowMax(D d, const float* r0, const float* r1, int64_t i, M& take_b,
                                M& take_c, M& take_e) {
  hn::Vec<D> a, b, c, e;
  hn::LoadInterleaved2(d, r0 + 2 * i, a, b);
  hn::LoadInterleaved2(d, r1 + 2 * i, c, e);
  take_b = hn::Or(hn::Gt(b, a), hn::IsNaN(b));
  auto best = hn::IfThenElse(take_b, b, a);
  take_c = hn::Or(hn::Gt(c, best), hn::IsNaN(c));
  best = hn::IfThenElse(take_c, c, best);
  take_e = hn::Or(hn::Gt(e, best), hn::IsNaN(e));
  return hn::IfThenElse(take_e, e, best);
}

template <class D>
int64_t MaxPool2x2RowVec(D d, const float* r0, const float* r1, float* y, int64_t i, int64_t n) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Mask<D> take_b, take_c, take_e;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(WindowMax(d, r0, r1, i, take_b, take_c, take_e), d, y + i);
  return i;
}

template <class D>
int64_t MaxPool2x2GradRowVec(D d, const float* r0, const float* r1, const float* g, float* d0,
                             float* d1, int64_t i, int64_t n) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Mask<D> take_b, take_c, take_e;
  for (; i + lanes <= n; i += lanes) {
    WindowMax(d, r0, r1, i, take_b, take_c, take_e);
    // The last element taken is the window's maximum.
    const auto win_c = hn::AndNot(take_e, take_c);
    const auto win_b = hn::AndNot(hn::Or(take_c, take_e), take_b);
    const auto win_a = hn::Not(hn::Or(take_b, hn::Or(take_c, take_e)));
    const auto gv = hn::LoadU(d, g + i);
    hn::StoreInterleaved2(hn::IfThenElseZero(win_a, gv), hn::IfThenElseZero(win_b, gv), d,
                          d0 + 2 * i);
    hn::StoreInterleaved2(hn::IfThenElseZero(win_c, gv), hn::IfThenElseZero(take_e, gv), d,
                          d1 + 2 * i);
  }
  return i;
}

// Full vectors, then 8 and 4 lanes (rows of a small plane are shorter than one AVX-512 vector),
// then scalars.
void MaxPool2x2RowImpl(const float* r0, const float* r1, float* y, int64_t n) {
  int64_t i = MaxPool2x2RowVec(hn::ScalableTag<float>(), r0, r1, y, 0, n);
  i = MaxPool2x2RowVec(hn::CappedTag<float, 8>(), r0, r1, y, i, n);
  i = MaxPool2x2RowVec(hn::CappedTag<float, 4>(), r0, r1, y, i, n);
  ref::MaxPool2x2RowScalar(r0, r1, y, i, n);
}

void MaxPool2x2GradRowImpl(const float* r0, const float* r1, const float* g, float* d0, float* d1,
                           int64_t n) {
  int64_t i = MaxPool2x2GradRowVec(hn::ScalableTag<float>(), r0, r1, g, d0, d1, 0, n);
  i = MaxPool2x2GradRowVec(hn::CappedTag<float, 8>(), r0, r1, g, d0, d1, i, n);
  i = MaxPool2x2GradRowVec(hn::CappedTag<float, 4>(), r0, r1, g, d0, d1, i, n);
  ref::MaxPool2x2GradRowScalar(r0, r1, g, d0, d1, i, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(MaxPool2x2RowImpl);
HWY_EXPORT(MaxPool2x2GradRowImpl);

void MaxPool2x2Row(const float* r0, const float* r1, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(MaxPool2x2RowImpl)(r0, r1, y, n);
}
void MaxPool2x2GradRow(const float* r0, const float* r1, const float* g, float* d0, float* d1,
                       int64_t n) {
  HWY_DYNAMIC_DISPATCH(MaxPool2x2GradRowImpl)(r0, r1, g, d0, d1, n);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
