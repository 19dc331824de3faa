// The int8 and bf16 decoding GEMMs (layouts and scalar twins in
// backend/cpu/reference/quant_kernels.h). x86 intrinsics behind a run-time check: AVX512-VNNI
// for int8, AVX512-BF16 for bf16 (Highway 1.0, Debian 12's, has neither dot product); on a CPU
// with AVX2 and FMA but not those, AVX2 kernels; elsewhere the scalar twin. Every one gives the
// scalar twin's results. Where the CPU has AMX tiles, products
// of at least kAmxInt8MinRows (kAmxBf16MinRows) rows over whole tiles of features run on them
// (quant_amx.h): int8 with the same results again, bf16 with the tile's own order of summation.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

bool HasInt8Kernel();        // AVX512-VNNI
bool HasBf16Kernel();        // AVX512-BF16
bool HasAvx2QuantKernels();  // AVX2 and FMA: the int8 and bf16 kernels of CPUs without the above
bool HasAmxInt8Kernel();     // AMX-INT8, and Linux granted the tile state
bool HasAmxBf16Kernel();     // AMX-BF16, likewise

// The instructions Int8Gemm (Bf16Gemm) runs on in this process, for logs: "AMX-INT8 + AVX512-VNNI"
// (AMX from kAmxInt8MinRows rows), "AVX512-VNNI", "AVX2" or "scalar" (and the bf16 names).
const char* Int8KernelName();
const char* Bf16KernelName();

// Rows from which a product runs on AMX tiles (a tile has 16; bench_gemm's int8 / bf16 against
// int8_avx512 / bf16_avx512 on a Sapphire Rapids core: below these the AVX-512 kernels, which
// use every row of their registers, are as fast or faster).
inline constexpr int64_t kAmxInt8MinRows = 8;
inline constexpr int64_t kAmxBf16MinRows = 4;
// Whether Int8Gemm (Bf16Gemm) of m rows and k features runs on AMX tiles on this CPU.
bool Int8UsesAmx(int64_t m, int64_t k);
bool Bf16UsesAmx(int64_t m, int64_t k);

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

// Benchmark and test hook: the AVX2 kernels even where AVX-512 or AMX would run, on a CPU that
// has AVX2 (restored on destruction).
class UseAvx2QuantKernels {
 public:
  UseAvx2QuantKernels();
  ~UseAvx2QuantKernels();
  UseAvx2QuantKernels(const UseAvx2QuantKernels&) = delete;
  UseAvx2QuantKernels& operator=(const UseAvx2QuantKernels&) = delete;

 private:
  bool previous_;
};

// Benchmark and test hook: the AVX-512 kernels even where AMX would run (restored on
// destruction).
class AvoidAmxKernels {
 public:
  AvoidAmxKernels();
  ~AvoidAmxKernels();
  AvoidAmxKernels(const AvoidAmxKernels&) = delete;
  AvoidAmxKernels& operator=(const AvoidAmxKernels&) = delete;

 private:
  bool previous_;
};

}  // namespace attend::cpu::simd
