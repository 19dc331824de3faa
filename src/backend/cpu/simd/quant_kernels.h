// The int8 and bf16 decoding GEMMs (layouts and scalar twins in
// backend/cpu/reference/quant_kernels.h). x86 intrinsics behind a run-time check: AVX512-VNNI
// for int8, AVX512-BF16 for bf16 (Highway 1.0, Debian 12's, has neither dot product); on a CPU
// without them the scalar twin runs, with the same results.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

bool HasInt8Kernel();  // AVX512-VNNI
bool HasBf16Kernel();  // AVX512-BF16

// y [m x n] (row stride ldy) = x [m x k] (row stride ldx) @ w^T + bias (nullable), w packed by
// PackInt8 with its per-row scales and colsums; x quantized per row on the way in.
void Int8Gemm(const float* x, int64_t m, int64_t k, int64_t ldx, const int8_t* packed,
              const float* wscale, const int32_t* colsum, int64_t n, const float* bias, float* y,
              int64_t ldy);

// The same with a weight packed by PackBf16; x rounded to bf16 per row on the way in.
void Bf16Gemm(const float* x, int64_t m, int64_t k, int64_t ldx, const uint16_t* packed, int64_t n,
              const float* bias, float* y, int64_t ldy);

// Test hook: the scalar twins even where the instructions exist (restored on destruction).
class ForceScalarQuantKernels {
 public:
  ForceScalarQuantKernels();
  ~ForceScalarQuantKernels();
  ForceScalarQuantKernels(const ForceScalarQuantKernels&) = delete;
  ForceScalarQuantKernels& operator=(const ForceScalarQuantKernels&) = delete;

 private:
  bool previous_;
};

}  // namespace attend::cpu::simd
