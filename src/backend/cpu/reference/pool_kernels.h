// Scalar reference of the 2x2 / stride-2 max-pooling row kernels: the readable definition, used for
// f64 and for the tails of the SIMD twins (backend/cpu/simd/pool_kernels.cc), and their oracle.
#pragma once

#include <cstdint>

namespace attend::cpu::ref {

// Whether v replaces the running maximum `best`: strictly greater keeps the first maximum, and a
// NaN always wins (so it propagates), as PyTorch. Written without branches: on random data the
// comparison is a coin flip that a branch would mispredict half the time.
template <typename T>
inline bool TakesMax(T v, T best) {
  return (v > best) | (v != v);
}

// Which element of the 2x2 window (a, b / c, e), in row-major order, holds the first maximum:
// 0..3, and that maximum in *best.
template <typename T>
inline int Window2x2(T a, T b, T c, T e, T* best) {
  T m = a;
  int code = 0;
  if (TakesMax(b, m)) {
    m = b;
    code = 1;
  }
  if (TakesMax(c, m)) {
    m = c;
    code = 2;
  }
  if (TakesMax(e, m)) {
    m = e;
    code = 3;
  }
  *best = m;
  return code;
}

// Scalar 2x2 / stride-2 max pooling of outputs [i0, n) of one output row, whose windows lie in
// input rows r0 and r1. Forward: y[i]. Backward: writes all of d0[2i, 2i+1] and d1[2i, 2i+1],
// the cotangent g[i] at the window's first maximum and zero elsewhere.
template <typename T>
void MaxPool2x2RowScalar(const T* r0, const T* r1, T* y, int64_t i0, int64_t n) {
  for (int64_t i = i0; i < n; ++i)
    Window2x2(r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1], y + i);
}
template <typename T>
void MaxPool2x2GradRowScalar(const T* r0, const T* r1, const T* g, T* d0, T* d1, int64_t i0,
                             int64_t n) {
  for (int64_t i = i0; i < n; ++i) {
    T best;
    const int code = Window2x2(r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1], &best);
    d0[2 * i] = code == 0 ? g[i] : T(0);
    d0[2 * i + 1] = code == 1 ? g[i] : T(0);
    d1[2 * i] = code == 2 ? g[i] : T(0);
    d1[2 * i + 1] = code == 3 ? g[i] : T(0);
  }
}

}  // namespace attend::cpu::ref
