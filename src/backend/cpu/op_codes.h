// The CPU kernels' op codes: which elementwise function a kernel applies.
#pragma once

#include <cstdint>

namespace attend::cpu {

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv };

// Forward unary functions; p0/p1 carry the exponent (kPow), the bounds (kClamp: lo, hi) or the
// scalar (kAddScalar, kMulScalar).
enum class UnaryOp : uint8_t {
  kNeg,
  kAbs,
  kExp,
  kLog,
  kSqrt,
  kRsqrt,
  kTanh,
  kSigmoid,
  kRelu,
  kGelu,
  kPow,
  kClamp,
  kAddScalar,
  kMulScalar
};

// Backward of a unary function: dx = g * f'(.), from the input x or the output y, whichever the
// derivative is cheapest from.
enum class UnaryGradOp : uint8_t {
  kAbs,      // x
  kExp,      // y
  kLog,      // x
  kSqrt,     // y
  kRsqrt,    // y
  kTanh,     // y
  kSigmoid,  // y
  kRelu,     // x
  kGelu,     // x
  kPow,      // x, p0 = exponent
  kClamp     // x, p0 = lo, p1 = hi
};

}  // namespace attend::cpu
