// CRC-32 by carry-less multiplication (PCLMULQDQ on x86, PMULL on Arm through Highway's
// CLMulLower/Upper), compiled once per target and dispatched at run time.
//
// A message is a polynomial over GF(2) and its CRC register the remainder of message * x^32 by
// P = 0x104C11DB7; a 128-bit block B followed by D more bits contributes B * x^D, and
// B * x^D = B_first * x^(D + 64) + B_second * x^D, where B_first and B_second are its two 64-bit
// halves (in memory order; in a little-endian register, the lower and upper lane). Multiplying
// each half by (x^(D + 64 - 32) mod P) and (x^(D - 32) mod P), 33-bit constants, gives a 96-bit
// value with the same remainder at the block D bits on: four blocks of 16 bytes are folded onto
// the next four (D = 512), then onto each other (D = 128). The folded 16 bytes have the
// remainder of everything they replaced, so the scalar twin's register, run over them from zero
// and then over the last bytes, gives the checksum. In this reflected CRC (bit 0 of byte 0 is
// the highest power), a constant is its remainder's 32 bits reversed and shifted left by one: the
// product of two reversed operands lands one bit low.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/crc32_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include <bit>

#include "backend/cpu/reference/crc32.h"
#include "backend/cpu/simd/crc32_kernels.h"

#ifndef ATTEND_CRC32_FOLD_CONSTANTS
#define ATTEND_CRC32_FOLD_CONSTANTS
namespace attend::cpu::simd::crc32 {

// x^n mod P, as a polynomial of degree < 32 (bit k: the coefficient of x^k).
constexpr uint64_t XPowMod(int n) {
  uint64_t r = 1;
  for (int i = 0; i < n; ++i) {
    r <<= 1;
    if (r >> 32) r ^= 0x104C11DB7u;
  }
  return r;
}

constexpr uint64_t Reverse32(uint64_t v) {
  uint64_t r = 0;
  for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1) << (31 - i);
  return r;
}

// The multiplier of a half moved on by m bits is FoldConstant(m - 32).
constexpr uint64_t FoldConstant(int n) { return Reverse32(XPowMod(n)) << 1; }

// Folding 64 bytes by 512 bits and 16 bytes by 128: {first half's, second half's} multipliers.
alignas(16) inline constexpr uint64_t kFold512[2] = {FoldConstant(512 + 32),
                                                     FoldConstant(512 - 32)};
alignas(16) inline constexpr uint64_t kFold128[2] = {FoldConstant(128 + 32),
                                                     FoldConstant(128 - 32)};

}  // namespace attend::cpu::simd::crc32
#endif

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

uint32_t Crc32Impl(const uint8_t* p, size_t size, uint32_t crc) {
  // Short inputs, targets without a carry-less product instruction (Highway would emulate it,
  // slower than the tables) and big-endian lanes go to the scalar twin.
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SSSE3
  return ref::Crc32(p, size, crc);
#else
  if (size < 64 || std::endian::native != std::endian::little) return ref::Crc32(p, size, crc);
  const hn::Full128<uint64_t> d;
  const hn::Full128<uint8_t> d8;
  const auto f512 = hn::Load(d, crc32::kFold512), f128 = hn::Load(d, crc32::kFold128);
  const auto load = [&](const uint8_t* q) { return hn::BitCast(d, hn::LoadU(d8, q)); };
  const auto fold = [](hn::Vec<decltype(d)> x, hn::Vec<decltype(d)> k) {
    return hn::Xor(hn::CLMulLower(x, k), hn::CLMulUpper(x, k));
  };
  // The register starting at ~crc is the register starting at 0 with ~crc added to the first
  // four bytes.
  alignas(16) const uint64_t start[2] = {static_cast<uint32_t>(~crc), 0};
  auto x0 = hn::Xor(load(p), hn::Load(d, start));
  auto x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
  size_t pos = 64;
  for (; size - pos >= 64; pos += 64) {
    x0 = hn::Xor(fold(x0, f512), load(p + pos));
    x1 = hn::Xor(fold(x1, f512), load(p + pos + 16));
    x2 = hn::Xor(fold(x2, f512), load(p + pos + 32));
    x3 = hn::Xor(fold(x3, f512), load(p + pos + 48));
  }
  auto x = hn::Xor(fold(x0, f128), x1);
  x = hn::Xor(fold(x, f128), x2);
  x = hn::Xor(fold(x, f128), x3);
  for (; size - pos >= 16; pos += 16) x = hn::Xor(fold(x, f128), load(p + pos));
  alignas(16) uint8_t folded[16];
  hn::Store(hn::BitCast(d8, x), d8, folded);
  return ~ref::Crc32Update(ref::Crc32Update(0, folded, 16), p + pos, size - pos);
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(Crc32Impl);

uint32_t Crc32(const void* data, size_t size, uint32_t crc) {
  return HWY_DYNAMIC_DISPATCH(Crc32Impl)(static_cast<const uint8_t*>(data), size, crc);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
