// Scalar reference for dropout's mask: the readable definition, used for f64 and as the oracle of
// the SIMD twin (backend/cpu/simd/dropout_kernels.h).
//
// Element i draws the counter-based uniform Generator::UniformD(seed, base + i) = b * 2^-53, with
// b = Generator::Bits(seed, base + i) >> 11, and is kept when that draw is at least p. Since the
// draw is b scaled by a power of two, the test is done on the integer: kept exactly when
// b >= DropoutThreshold(p) = ceil(p * 2^53), with no floating point in the loop.
#pragma once

#include <cmath>
#include <cstdint>

#include "attend/tensor.h"  // Generator: the random stream

namespace attend::cpu::ref {

// ceil(p * 2^53) for p in (0, 1]: the smallest 53-bit draw that is kept.
inline uint64_t DropoutThreshold(double p) {
  return static_cast<uint64_t>(std::ceil(std::ldexp(p, 53)));
}

// Elements [from, n): scale[i] = keep ? keep_scale : 0, out[i] = x[i] * scale[i], where keep
// means (Generator::Bits(seed, base + i) >> 11) >= threshold.
template <typename T>
void Dropout(uint64_t seed, uint64_t base, uint64_t threshold, T keep_scale, const T* x, T* scale,
             T* out, int64_t n, int64_t from = 0) {
  for (int64_t i = from; i < n; ++i) {
    const bool keep = (Generator::Bits(seed, base + static_cast<uint64_t>(i)) >> 11) >= threshold;
    scale[i] = keep ? keep_scale : T(0);
    out[i] = x[i] * scale[i];
  }
}

}  // namespace attend::cpu::ref
