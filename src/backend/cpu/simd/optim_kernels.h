// Vectorised optimizer updates (Highway, dispatched once per call): the contract of the scalar
// twins in backend/cpu/reference/optim_kernels.h, bit for bit.
#pragma once

#include <cstdint>

#include "backend/cpu/reference/optim_kernels.h"

namespace attend::cpu::simd {

// ref::AdamUpdate on f32, elements [0, n); vmax null without amsgrad.
void AdamUpdate(const ref::AdamArgs<float>& a, float* p, const float* g, float* m, float* v,
                float* vmax, int64_t n);

}  // namespace attend::cpu::simd
