// Highway implementation of dropout's mask: Generator::Bits (splitmix64 of seed and counter) for
// a vector of 64-bit counters at once, the keep test on the integer draw, then the f32 scale
// and product. Compiled once per target and dispatched at run time; the tail goes to the scalar
// reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/dropout_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include "backend/cpu/reference/dropout_kernels.h"
#include "backend/cpu/simd/dropout_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using D64 = hn::ScalableTag<uint64_t>;
using V64 = hn::Vec<D64>;

// The low 64 bits of a * b per lane: AVX-512 has the instruction (and the scalar target plain
// C++); other targets build it from 32 x 32 -> 64 products (the high x high term falls outside
// the low 64 bits).
HWY_INLINE V64 MulLow(V64 a, V64 b) {
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_TARGET == HWY_SCALAR
  return hn::Mul(a, b);
#else
  const hn::Repartition<uint32_t, D64> d32;
  const V64 lo = hn::MulEven(hn::BitCast(d32, a), hn::BitCast(d32, b));
  const V64 cross =
      hn::Add(hn::MulEven(hn::BitCast(d32, hn::ShiftRight<32>(a)), hn::BitCast(d32, b)),
              hn::MulEven(hn::BitCast(d32, a), hn::BitCast(d32, hn::ShiftRight<32>(b))));
  return hn::Add(lo, hn::ShiftLeft<32>(cross));
#endif
}

// Generator::Bits(seed, counter) >> 11 per lane, as core/tensor.cc defines it, from its first
// term z = seed's term + counter * kCounterMul (mod 2^64): linear in the counter, so the loop
// below steps it by an addition instead of a product per vector.
constexpr uint64_t kCounterMul = 0xD1B54A32D192ED03ull;
HWY_INLINE V64 Draw53(V64 z) {
  const D64 d;
  z = MulLow(hn::Xor(z, hn::ShiftRight<30>(z)), hn::Set(d, 0xBF58476D1CE4E5B9ull));
  z = MulLow(hn::Xor(z, hn::ShiftRight<27>(z)), hn::Set(d, 0x94D049BB133111EBull));
  z = hn::Xor(z, hn::ShiftRight<31>(z));
  return hn::ShiftRight<11>(z);
}

void DropoutImpl(uint64_t seed, uint64_t base, uint64_t threshold, float keep_scale, const float* x,
                 float* scale, float* out, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR  // one lane of each: the scalar reference below does it all
  const DF df;
  const D64 d64;
  const hn::Repartition<int64_t, D64> di;
  const int64_t n32 = hn::Lanes(df), n64 = hn::Lanes(d64);
  // Bits' seed term, the same for every counter (wrapping arithmetic, as the scalar).
  const V64 mixed = hn::Set(d64, seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
  // keep <=> draw >= threshold <=> draw > threshold - 1; both below 2^53, so signed compares do.
  const auto below = hn::Set(di, static_cast<int64_t>(threshold - 1));
  const V64 iota = hn::Iota(d64, 0);
  const auto kept_value = hn::Set(df, keep_scale);
  if (n32 == 2 * n64) {
    // The keep tests of two vectors of 64-bit counters are all-ones or zero lanes: their even
    // 32-bit halves, side by side, are the mask of n32 floats (a shuffle and a lane permute on
    // AVX2; storing the masks as bits and loading them back cost a third of this loop there).
    const V64 mul = hn::Set(d64, kCounterMul);
    V64 z0 = hn::Add(mixed, MulLow(hn::Add(hn::Set(d64, base), iota), mul));
    V64 z1 =
        hn::Add(mixed, MulLow(hn::Add(hn::Set(d64, base + static_cast<uint64_t>(n64)), iota), mul));
    const V64 step = hn::Set(d64, static_cast<uint64_t>(n32) * kCounterMul);  // wraps, as z does
    for (; i + n32 <= n; i += n32, z0 = hn::Add(z0, step), z1 = hn::Add(z1, step)) {
      const auto k0 = hn::VecFromMask(di, hn::Gt(hn::BitCast(di, Draw53(z0)), below));
      const auto k1 = hn::VecFromMask(di, hn::Gt(hn::BitCast(di, Draw53(z1)), below));
      const auto keep = hn::ConcatEven(df, hn::BitCast(df, k1), hn::BitCast(df, k0));
      const auto s = hn::And(keep, kept_value);
      hn::StoreU(s, df, scale + i);
      hn::StoreU(hn::Mul(hn::LoadU(df, x + i), s), df, out + i);
    }
  }
#endif
  if (i < n) ref::Dropout(seed, base, threshold, keep_scale, x, scale, out, n, i);
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(DropoutImpl);

void Dropout(uint64_t seed, uint64_t base, uint64_t threshold, float keep_scale, const float* x,
             float* scale, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DropoutImpl)(seed, base, threshold, keep_scale, x, scale, out, n);
}

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
