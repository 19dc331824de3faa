// Vectorised f32 2x2 / stride-2 max-pooling row kernels (Highway, dispatched once per call). Each
// has the contract of its scalar twin in backend/cpu/reference/pool_kernels.h over outputs [0, n).
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

void MaxPool2x2Row(const float* r0, const float* r1, float* y, int64_t n);
void MaxPool2x2GradRow(const float* r0, const float* r1, const float* g, float* d0, float* d1,
                       int64_t n);

}  // namespace attend::cpu::simd
