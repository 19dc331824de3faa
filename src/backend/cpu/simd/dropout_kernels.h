// Vectorised dropout mask (Highway, dispatched once per call): the contract of the scalar twin
// ref::Dropout in backend/cpu/reference/dropout_kernels.h, bit for bit.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

// Elements [0, n) with counters base + i: scale[i] = keep ? keep_scale : 0, out[i] = x[i] *
// scale[i], keep = (Generator::Bits(seed, base + i) >> 11) >= threshold (threshold >= 1).
void Dropout(uint64_t seed, uint64_t base, uint64_t threshold, float keep_scale, const float* x,
             float* scale, float* out, int64_t n);

}  // namespace attend::cpu::simd
