// The int8 and bf16 decoding GEMMs on Intel AMX tiles (internal to quant_kernels.cc). They read
// the same packed weights as the AVX-512 kernels: a panel's group of 4 int8 (or 2 bf16) features
// for 16 output rows is 64 bytes, one row of an AMX B tile in its VNNI layout, so 16 groups of a
// panel are one tile as they lie in memory. The activations are read in place, 16 rows per tile;
// the buffer must hold whole tiles of rows (AmxRows(m)) and whole tiles of features.
#pragma once

#include <cstdint>

namespace attend::cpu::simd::amx {

// The CPU has AMX-TILE with AMX-INT8 (int8) or AMX-BF16 (bf16), and Linux granted this process
// the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM, asked once).
bool HasInt8();
bool HasBf16();

// Feature groups per tile (16 groups of 4 int8 or of 2 bf16 features: 64 bytes); the kernels
// take only a whole number of tiles of features, that is k a multiple of 64 (int8) or 32 (bf16).
inline constexpr int64_t kTileGroups = 16;
// Rows the activation buffer must hold for m rows (whole tiles of 16; the rows past m are read
// and their products discarded).
inline int64_t AmxRows(int64_t m) { return (m + 15) / 16 * 16; }

// y = the products of u (QuantizeRowsU8's rows, kp = k4 * 4 bytes each, AmxRows(m) of them) and
// a PackInt8 weight, finished exactly as ref::Int8Gemm: (acc - 128 colsum) * (a_m s_n) + bias.
// k4 % kTileGroups == 0.
void Int8Gemm(const uint8_t* u, const float* xscale, int64_t m, int64_t k4, const int8_t* packed,
              const float* wscale, const int32_t* colsum, int64_t n, const float* bias, float* y,
              int64_t ldy);

// y = the products of x (RowsToBf16's rows, k2 * 2 values each, AmxRows(m) of them) and a
// PackBf16 weight, plus bias. k2 % kTileGroups == 0. The tile instruction sums the exact bf16
// products in an order of its own (on a Sapphire Rapids core it matches neither vdpbf16ps's order
// nor a sequential one), so the result is bounded, not equal, to the scalar twin's: both are
// within k * 2^-24 * sum |x w| of the exact sum of the rounded operands' products.
void Bf16Gemm(const uint16_t* x, int64_t m, int64_t k2, const uint16_t* packed, int64_t n,
              const float* bias, float* y, int64_t ldy);

}  // namespace attend::cpu::simd::amx
