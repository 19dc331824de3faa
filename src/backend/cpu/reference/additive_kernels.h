// Scalar reference of fused additive (Bahdanau) attention scores, forward and backward, for one
// batch item. It serves f64 and is the oracle the Highway kernels (simd/additive_kernels.cc) are
// tested against: tanh is std::tanh and every sum is accumulated in double.
//
// q [Tq, A] (= W query), k [Tk, A] (= U key + b), v [A], rows contiguous:
//   s[t, j] = sum_a v[a] * tanh(q[t, a] + k[j, a])                         // [Tq, Tk]
#pragma once

#include <cmath>
#include <cstdint>

namespace attend::cpu::ref {

template <typename T>
inline void AdditiveScoresForward(const T* q, const T* k, const T* v, T* s, int64_t nq, int64_t nk,
                                  int64_t na) {
  for (int64_t t = 0; t < nq; ++t) {
    for (int64_t j = 0; j < nk; ++j) {
      double acc = 0;
      for (int64_t a = 0; a < na; ++a)
        acc += double(v[a]) * std::tanh(double(q[t * na + a]) + double(k[j * na + a]));
      s[t * nk + j] = T(acc);
    }
  }
}

// Backward, given g = dL/ds [Tq, Tk]. With th = tanh(q[t, a] + k[j, a]):
//   dq[t, a] = v[a] * sum_j g[t, j] (1 - th^2)     written
//   dk[j, a] += v[a] * sum_t g[t, j] (1 - th^2)    accumulated (summed over batch items by callers
//   dv[a]    += sum_{t, j} g[t, j] th               that share dv)
// tanh is recomputed, never stored: nothing of size [Tq, Tk, A] exists.
template <typename T>
inline void AdditiveScoresBackward(const T* q, const T* k, const T* v, const T* g, T* dq, T* dk,
                                   T* dv, int64_t nq, int64_t nk, int64_t na) {
  for (int64_t a = 0; a < na; ++a) {
    double dv_a = 0;
    for (int64_t j = 0; j < nk; ++j) {
      double dk_ja = 0;
      for (int64_t t = 0; t < nq; ++t) {
        const double th = std::tanh(double(q[t * na + a]) + double(k[j * na + a]));
        const double gt = g[t * nk + j];
        dk_ja += gt * (1 - th * th);
        dv_a += gt * th;
      }
      dk[j * na + a] += T(double(v[a]) * dk_ja);
    }
    dv[a] += T(dv_a);
    for (int64_t t = 0; t < nq; ++t) {
      double dq_ta = 0;
      for (int64_t j = 0; j < nk; ++j) {
        const double th = std::tanh(double(q[t * na + a]) + double(k[j * na + a]));
        dq_ta += double(g[t * nk + j]) * (1 - th * th);
      }
      dq[t * na + a] = T(double(v[a]) * dq_ta);
    }
  }
}

}  // namespace attend::cpu::ref
