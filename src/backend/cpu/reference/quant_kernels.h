// Decoding GEMMs on weights stored in 8 bits (int8) or 16 (bf16): layouts, packing, activation
// conversion and the scalar twins of the kernels in simd/quant_kernels.cc.
//
// int8: each output row n of the weight w [n x k] is scaled by s_n = max_k |w[n][k]| / 127 and
// rounded to int8 (per output channel, as CTranslate2 and Marian do). Each activation row x_m is
// scaled by a_m = max_k |x[m][k]| / 127 when it arrives and rounded to int8, then shifted by 128
// into u8, because the x86 dot-product instruction (AVX512-VNNI vpdpbusd) multiplies u8 by s8;
// the shift is undone by subtracting 128 * sum_k q[n][k], kept per output row. So
//   y[m][n] = (a_m * s_n) * (sum_k u[m][k] * q[n][k] - 128 * colsum[n]) + bias[n],
// the sum exact in int32, the rest the same f32 operations on every target: the vectorised
// kernel and this reference agree bit for bit.
// Layout: panels of kQuantPanel = 16 output rows (one 512-bit register of int32 sums); inside a
// panel, groups of 4 input features, each group 16 rows x 4 bytes (64 bytes):
//   packed[((p * k4 + g) * 16 + j) * 4 + i] = q[p * 16 + j][g * 4 + i]   (zero past n and k).
//
// bf16: weights and activations rounded to bfloat16 (nearest even), products summed in f32 two
// input features at a time in the order the AVX512-BF16 instruction vdpbf16ps defines (the odd
// feature's product added first, then the even one's; each product of two bf16 is exact in f32),
// the bias added last. Layout: panels of 16 rows, groups of 2 features (16 rows x 2 x 16 bits):
//   packed[((p * k2 + g) * 16 + j) * 2 + i] = bf16(w[p * 16 + j][g * 2 + i]).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace attend::cpu {

inline constexpr int64_t kQuantPanel = 16;

inline int64_t QuantPanels(int64_t n) { return (n + kQuantPanel - 1) / kQuantPanel; }
inline int64_t Int8Groups(int64_t k) { return (k + 3) / 4; }
inline int64_t Bf16Groups(int64_t k) { return (k + 1) / 2; }
// Bytes of a packed int8 weight, 16-bit values of a packed bf16 one.
inline int64_t Int8PackedSize(int64_t n, int64_t k) {
  return QuantPanels(n) * kQuantPanel * Int8Groups(k) * 4;
}
inline int64_t Bf16PackedSize(int64_t n, int64_t k) {
  return QuantPanels(n) * kQuantPanel * Bf16Groups(k) * 2;
}

// Rounds w [n x k] (row stride ldw) to int8 per output row: q [n x k] row-major, scale [n]
// (1 for an all-zero row), colsum [n] = sum_k q[n][k].
inline void QuantizeWeightInt8(const float* w, int64_t n, int64_t k, int64_t ldw, int8_t* q,
                               float* scale, int32_t* colsum) {
  for (int64_t r = 0; r < n; ++r) {
    const float* row = w + r * ldw;
    float amax = 0.0f;
    for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(row[c]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    int32_t sum = 0;
    for (int64_t c = 0; c < k; ++c) {
      const float v = std::nearbyint(row[c] * inv);
      const int32_t qi = static_cast<int32_t>(std::clamp(v, -127.0f, 127.0f));
      q[r * k + c] = static_cast<int8_t>(qi);
      sum += qi;
    }
    scale[r] = s;
    colsum[r] = sum;
  }
}

// packed (Int8PackedSize(n, k) bytes) <- q [n x k] in the panel layout above.
inline void PackInt8(const int8_t* q, int64_t n, int64_t k, int8_t* packed) {
  const int64_t k4 = Int8Groups(k);
  for (int64_t p = 0; p < QuantPanels(n); ++p)
    for (int64_t g = 0; g < k4; ++g)
      for (int64_t j = 0; j < kQuantPanel; ++j)
        for (int64_t i = 0; i < 4; ++i) {
          const int64_t row = p * kQuantPanel + j, c = g * 4 + i;
          packed[((p * k4 + g) * kQuantPanel + j) * 4 + i] =
              row < n && c < k ? q[row * k + c] : int8_t{0};
        }
}

// Activation rows: u [m x Int8Groups(k) * 4] = round(x / a_m) + 128 (padding columns 128, that
// is zero), scale [m] = a_m (1 for an all-zero row). Shared by the kernel and its reference.
inline void QuantizeRowsU8(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* u,
                           float* scale) {
  const int64_t kp = Int8Groups(k) * 4;
  for (int64_t r = 0; r < m; ++r) {
    const float* row = x + r * ldx;
    float amax = 0.0f;
    for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(row[c]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    uint8_t* out = u + r * kp;
    for (int64_t c = 0; c < k; ++c) {
      const float v = std::clamp(std::nearbyint(row[c] * inv), -127.0f, 127.0f);
      out[c] = static_cast<uint8_t>(static_cast<int32_t>(v) + 128);
    }
    for (int64_t c = k; c < kp; ++c) out[c] = 128;
    scale[r] = s;
  }
}

// bfloat16 of x, rounded to nearest even (NaN kept a NaN).
inline uint16_t ToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
inline float FromBf16(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &bits, 4);
  return x;
}

// packed (Bf16PackedSize(n, k) values) <- bf16(w [n x k], row stride ldw).
inline void PackBf16(const float* w, int64_t n, int64_t k, int64_t ldw, uint16_t* packed) {
  const int64_t k2 = Bf16Groups(k);
  for (int64_t p = 0; p < QuantPanels(n); ++p)
    for (int64_t g = 0; g < k2; ++g)
      for (int64_t j = 0; j < kQuantPanel; ++j)
        for (int64_t i = 0; i < 2; ++i) {
          const int64_t row = p * kQuantPanel + j, c = g * 2 + i;
          packed[((p * k2 + g) * kQuantPanel + j) * 2 + i] =
              row < n && c < k ? ToBf16(w[row * ldw + c]) : uint16_t{0};
        }
}

// Activation rows in bf16: b [m x Bf16Groups(k) * 2] (padding zero).
inline void RowsToBf16(const float* x, int64_t m, int64_t k, int64_t ldx, uint16_t* b) {
  const int64_t kp = Bf16Groups(k) * 2;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < k; ++c) b[r * kp + c] = ToBf16(x[r * ldx + c]);
    for (int64_t c = k; c < kp; ++c) b[r * kp + c] = 0;
  }
}

namespace ref {

// y [m x n] (row stride ldy) from QuantizeRowsU8's u and xscale and a packed int8 weight.
inline void Int8Gemm(const uint8_t* u, const float* xscale, int64_t m, int64_t k,
                     const int8_t* packed, const float* wscale, const int32_t* colsum, int64_t n,
                     const float* bias, float* y, int64_t ldy) {
  const int64_t k4 = Int8Groups(k);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) {
      const int64_t p = c / kQuantPanel, j = c % kQuantPanel;
      int32_t acc = 0;
      for (int64_t g = 0; g < k4; ++g)
        for (int64_t i = 0; i < 4; ++i)
          acc += static_cast<int32_t>(u[r * k4 * 4 + g * 4 + i]) *
                 static_cast<int32_t>(packed[((p * k4 + g) * kQuantPanel + j) * 4 + i]);
      const float scale = xscale[r] * wscale[c];
      const float v = static_cast<float>(acc - 128 * colsum[c]);
      y[r * ldy + c] = std::fma(v, scale, bias ? bias[c] : 0.0f);
    }
}

// y [m x n] from RowsToBf16's b and a packed bf16 weight, in vdpbf16ps's order. Kept scalar:
// GCC 12's -O3 vectoriser miscompiles this loop (it added the first product twice; found by
// tests/backend/test_quant_kernels.cc), and a reference has no business being vectorised.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
inline void
Bf16Gemm(const uint16_t* b, int64_t m, int64_t k, const uint16_t* packed, int64_t n,
         const float* bias, float* y, int64_t ldy) {
  const int64_t k2 = Bf16Groups(k);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) {
      const int64_t p = c / kQuantPanel, j = c % kQuantPanel;
      float acc = 0.0f;
      for (int64_t g = 0; g < k2; ++g) {
        const uint16_t* wp = packed + ((p * k2 + g) * kQuantPanel + j) * 2;
        const uint16_t* xp = b + r * k2 * 2 + g * 2;
        acc += FromBf16(xp[1]) * FromBf16(wp[1]);
        acc += FromBf16(xp[0]) * FromBf16(wp[0]);
      }
      y[r * ldy + c] = bias ? acc + bias[c] : acc;
    }
}

}  // namespace ref
}  // namespace attend::cpu
