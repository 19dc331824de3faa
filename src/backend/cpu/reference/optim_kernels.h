// Scalar reference for the optimizers' elementwise updates: the readable definition, used for f64
// and as the oracle of the SIMD twin (backend/cpu/simd/optim_kernels.h), which must give the same
// bits. Every operation is a separate rounding (no fused multiply-add), in this order, so the
// function is built with contraction off: a compiler that may fuse a * b + c (-march=native)
// would otherwise change the bits here and not in the twin.
#pragma once

#include <cmath>
#include <cstdint>

namespace attend::cpu::ref {

// One Adam / AdamW step's constants (torch.optim.Adam's formulas; optim/optimizers.cc derives
// them from the options and the step).
template <typename T>
struct AdamArgs {
  T neg_step_size;  // -lr / (1 - beta1^t)
  T bc2_sqrt;       // sqrt(1 - beta2^t)
  T eps;
  T beta1, one_minus_beta1, beta2, one_minus_beta2;
  T weight_decay;  // L2 (Adam): g + wd * p
  T shrink;        // decoupled (AdamW): p * (1 - lr * wd)
  bool decoupled = false, l2 = false;
};

// Elements [from, n) of parameter p with gradient g, moments m and v, and (amsgrad) the running
// maximum vmax, or null:
//   p' = p * shrink (AdamW); g' = g + wd * p' (L2)
//   m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g' g'
//   vmax = max(vmax, v) (NaN wins, as torch.maximum);  d = sqrt(vmax or v) / bc2_sqrt + eps
//   p = p' + (neg_step_size m) / d
template <typename T>
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
void AdamUpdate(const AdamArgs<T>& a, T* p, const T* g, T* m, T* v, T* vmax, int64_t n,
                int64_t from = 0) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  for (int64_t j = from; j < n; ++j) {
    T pj = p[j];
    if (a.decoupled) pj = pj * a.shrink;
    T gj = g[j];
    if (a.l2) gj = gj + a.weight_decay * pj;
    const T mj = m[j] * a.beta1 + a.one_minus_beta1 * gj;
    const T vj = v[j] * a.beta2 + a.one_minus_beta2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    T second = vj;
    if (vmax != nullptr) {
      const T prev = vmax[j];
      second = (std::isnan(prev) || prev > vj) ? prev : vj;
      vmax[j] = second;
    }
    const T denom = std::sqrt(second) / a.bc2_sqrt + a.eps;
    p[j] = pj + a.neg_step_size * mj / denom;
  }
}

}  // namespace attend::cpu::ref
