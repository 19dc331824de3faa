// Highway implementation of Adam's elementwise update: the scalar twin's operations in its order,
// each rounded on its own (this file is compiled with -ffp-contract=off, CMakeLists.txt, so that
// no multiply and add are fused), so both give the same bits. One pass over the five arrays; the
// tail goes to the twin.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/optim_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include "backend/cpu/simd/optim_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

void AdamUpdateImpl(const ref::AdamArgs<float>& a, float* p, const float* g, float* m, float* v,
                    float* vmax, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF neg_step = hn::Set(d, a.neg_step_size), bc2 = hn::Set(d, a.bc2_sqrt),
           eps = hn::Set(d, a.eps), b1 = hn::Set(d, a.beta1), omb1 = hn::Set(d, a.one_minus_beta1),
           b2 = hn::Set(d, a.beta2), omb2 = hn::Set(d, a.one_minus_beta2),
           wd = hn::Set(d, a.weight_decay), shrink = hn::Set(d, a.shrink);
  int64_t j = 0;
  for (; j + N <= n; j += N) {
    VF pj = hn::LoadU(d, p + j);
    if (a.decoupled) pj = hn::Mul(pj, shrink);
    VF gj = hn::LoadU(d, g + j);
    if (a.l2) gj = hn::Add(gj, hn::Mul(wd, pj));
    const VF mj = hn::Add(hn::Mul(hn::LoadU(d, m + j), b1), hn::Mul(omb1, gj));
    const VF vj = hn::Add(hn::Mul(hn::LoadU(d, v + j), b2), hn::Mul(hn::Mul(omb2, gj), gj));
    hn::StoreU(mj, d, m + j);
    hn::StoreU(vj, d, v + j);
    VF second = vj;
    if (vmax != nullptr) {
      const VF prev = hn::LoadU(d, vmax + j);
      second = hn::IfThenElse(hn::Or(hn::IsNaN(prev), hn::Gt(prev, vj)), prev, vj);
      hn::StoreU(second, d, vmax + j);
    }
    const VF denom = hn::Add(hn::Div(hn::Sqrt(second), bc2), eps);
    hn::StoreU(hn::Add(pj, hn::Div(hn::Mul(neg_step, mj), denom)), d, p + j);
  }
  if (j < n) ref::AdamUpdate(a, p, g, m, v, vmax, n, j);
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(AdamUpdateImpl);

void AdamUpdate(const ref::AdamArgs<float>& a, float* p, const float* g, float* m, float* v,
                float* vmax, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AdamUpdateImpl)(a, p, g, m, v, vmax, n);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
