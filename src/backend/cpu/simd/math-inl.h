// The SIMD math every kernel file shares: sigmoid, a fast rational tanh and erf, written once
// over Highway vectors of f32. Included by each kernel .cc after hwy/highway.h, once per target
// (the per-target include guard below is Highway's -inl.h convention). Each function has a
// scalar twin or an exact oracle that its tests compare against.

// Per-target include guard: toggled by foreach_target.h for each target it compiles.
#if defined(ATTEND_BACKEND_CPU_SIMD_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTEND_BACKEND_CPU_SIMD_MATH_INL_H_
#undef ATTEND_BACKEND_CPU_SIMD_MATH_INL_H_
#else
#define ATTEND_BACKEND_CPU_SIMD_MATH_INL_H_
#endif

#include <type_traits>

#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 1 / (1 + exp(-x)), with x clamped to [-88, 88] so exp never overflows; in f32 sigmoid is
// exactly 0 or 1 beyond these bounds anyway. Twin: ref::Sigmoid.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Sigmoid(D d, V x) {
  const V xc = hn::Min(hn::Max(x, hn::Set(d, -88.0f)), hn::Set(d, 88.0f));
  return hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), hn::Exp(d, hn::Neg(xc))));
}

// p * 2^n where t = n + 1.5 * 2^23 (n's bits in t's low mantissa: shifted left by 23 the
// constant part leaves the word), and 0 where x < lo: FastExp's and FastExp2's last steps.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V TimesPow2(D d, V p, V t, V x, V lo) {
  const hn::RebindToSigned<D> di;
  const auto pow2n = hn::ShiftLeft<23>(hn::Add(hn::BitCast(di, t), hn::Set(di, 127)));
  return hn::IfThenZeroElse(hn::Lt(x, lo), hn::Mul(p, hn::BitCast(d, pow2n)));
}

// Whether V is a full AVX-512 vector of f32, where vscalefps computes p * 2^n from n as a float
// in one instruction (with the zeroing below lo as its mask): TimesPow2's add, shift, multiply
// and select become one operation. p * 2^n is exact either way (the clamps below keep every
// result a normal float), so both give the same bits: FastExp in 14 operations there, FastExp2
// in 12 (tests/backend/test_simd_kernels.cc compares the two targets bit for bit).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
template <class V>
inline constexpr bool kScalef = std::is_same_v<V, hn::Vec512<float>>;
template <class V>
HWY_INLINE V ScalefPow2(V p, V n, V x, V lo) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x.raw, lo.raw, _CMP_NLT_UQ);  // x >= lo, or NaN
  return V{_mm512_maskz_scalef_ps(keep, p.raw, n.raw)};
}
#else
template <class V>
inline constexpr bool kScalef = false;
template <class V>
HWY_INLINE V ScalefPow2(V p, V, V, V) {
  return p;  // never called: kScalef is false
}
#endif

// exp(x) for the softmax kernels, in 17 vector operations against Highway's Exp's ~25: n =
// round(x / ln 2) by adding and subtracting 1.5 * 2^23 (t's low mantissa bits then hold n), r =
// x - n ln 2 in two parts (Cody-Waite), exp(r) on |r| <= ln(2) / 2 by a degree-6 polynomial
// (coefficients fitted to the relative error in double: 1.9e-9 before rounding to f32, 1.7e-8
// after), and 2^n written into the exponent field. x is clamped to [-87, 88] and the result is
// 0 below -87 (exp(-87) = 1.6e-38: in a softmax, a weight under 1.6e-38 of the row's largest;
// x = -inf gives exactly 0). The clamp sits above ln(FLT_MIN) = -87.34 on purpose: there p 2^n
// would be a denormal, which costs a microcode assist per lane on Intel cores even in lanes
// that are then zeroed (measured: causal attention, whose masked scores are -inf, ran 10 %
// slower than with Highway's Exp until the clamp moved). A NaN stays NaN on x86 (Max/Min return
// their second operand when one is NaN). Checked against std::exp in double on every target
// (tests/backend/test_simd_kernels.cc): kFastExpMaxRelError.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V FastExp(D d, V x) {
  const V lo = hn::Set(d, -87.0f);
  const V xc = hn::Min(hn::Set(d, 88.0f), hn::Max(lo, x));
  const V shifter = hn::Set(d, 12582912.0f);  // 1.5 * 2^23
  const V t = hn::MulAdd(xc, hn::Set(d, 1.44269504088896341f), shifter);
  const V n = hn::Sub(t, shifter);
  V r = hn::NegMulAdd(n, hn::Set(d, 0.693359375f), xc);  // ln 2 = 0.693359375 - 2.12194440e-4
  r = hn::NegMulAdd(n, hn::Set(d, -2.12194440e-4f), r);
  V p = hn::Set(d, 0.0013836828293278813f);
  p = hn::MulAdd(p, r, hn::Set(d, 0.008374814875423908f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.04166822507977486f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.16666419804096222f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.49999991059303284f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  if constexpr (kScalef<V>) return ScalefPow2(p, n, x, lo);
  return TimesPow2(d, p, t, x, lo);
}

// 2^x for the fused attention's softmax, whose scores arrive multiplied by log2(e) (the factor
// folded into the packed keys): FastExp without the multiplication by 1 / ln 2 and the two-part
// reduction, since r = x - round(x) is exact. 16 vector operations, 7 of them multiplies (FastExp:
// 17 and 10); about 20 % less time per vector on a Zen 3. The degree-6 polynomial for 2^r on
// |r| <= 1/2 was fitted to the relative error in double (2.0e-9 before rounding to f32, 7.9e-8
// after, with fused multiply-adds). x is clamped to [-126, 127], so every result is a normal
// float (no denormal: see FastExp), 0 below -126 and for -inf. Checked against exp2 in double on
// every target: kFastExp2MaxRelError (attention_kernels.h).
template <bool kBelow128 = false, class D, class V = hn::Vec<D>>
HWY_INLINE V FastExp2(D d, V x) {
  const V lo = hn::Set(d, -126.0f);
  V xc = x;
  if constexpr (!(kBelow128 && kScalef<V>)) xc = hn::Max(lo, xc);
  if constexpr (!kBelow128) xc = hn::Min(hn::Set(d, 127.0f), xc);
  const V shifter = hn::Set(d, 12582912.0f);  // 1.5 * 2^23
  // round(x), ties to even, either way: AVX-512's vrndscaleps in one operation, else by adding
  // and subtracting the shifter (whose sum t keeps n in its low mantissa bits for TimesPow2).
  const V t = kScalef<V> ? xc : hn::Add(xc, shifter);
  const V n = kScalef<V> ? hn::Round(xc) : hn::Sub(t, shifter);
  const V r = hn::Sub(xc, n);  // x - round(x), exact
  V p = hn::Set(d, 1.5353361959569156e-4f);
  p = hn::MulAdd(p, r, hn::Set(d, 1.3398875016719103e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 9.61843691766262e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 5.5503323674201965e-2f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.24022647738456726f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.6931471824645996f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  if constexpr (kScalef<V>) return ScalefPow2(p, n, x, lo);
  return TimesPow2(d, p, t, x, lo);
}

// FastExp2 where the caller knows x <= 127 (or NaN), as the softmaxes' s - max <= 0 and
// s - lse: the same bits without the upper clamp, and on AVX-512 without the lower one either
// (vscalefps's mask zeroes the lanes below -126, -inf included, whatever n and p hold there),
// 10 operations instead of 12. The lower clamp stays on the other targets: there the lanes below
// -126 would reach the multiply as denormals (see FastExp). The fused forward at D 64 1 % faster
// on a Zen 4 (docs/results.md issue 20); same bits: tests/backend/test_simd_kernels.cc.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V FastExp2Below128(D d, V x) {
  return FastExp2<true>(d, x);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), for the exact GELU (twin:
// ref::Gelu, with std::erf).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Erf(D d, V x) {
  const V ax = hn::Abs(x);
  const V t = hn::Div(hn::Set(d, 1.0f), hn::MulAdd(hn::Set(d, 0.3275911f), ax, hn::Set(d, 1.0f)));
  V poly = hn::Set(d, 1.061405429f);
  poly = hn::MulAdd(poly, t, hn::Set(d, -1.453152027f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 1.421413741f));
  poly = hn::MulAdd(poly, t, hn::Set(d, -0.284496736f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 0.254829592f));
  poly = hn::Mul(poly, t);
  const V e = hn::Exp(d, hn::Neg(hn::Mul(ax, ax)));
  const V r = hn::NegMulAdd(poly, e, hn::Set(d, 1.0f));  // 1 - poly * e
  return hn::CopySign(r, x);
}

// Fast tanh: tanh(x) ~ x P(x^2) / Q(x^2) with P, Q of degree 4 (x clamped to [-9, 9]), the
// minimax rational fitted to tanh's absolute error on [0, 9] by Lawson-weighted least squares
// (approximation error 1.9e-8; 1 - tanh(9) = 3.0e-8). 1/Q is the hardware's approximate
// reciprocal (14 bits on AVX-512, 12 on AVX2) refined by one Newton step (then ~2^-23). In f32
// the Horner steps, the reciprocal and the two products each round, so the total bound is set
// by rounding near |x| = 8.6 where tanh is within an ulp of 1: the test's dense grid measures
// 3.0e-7 (AVX-512), 3.2e-7 (AVX2) and 3.5e-7 (scalar baseline, no FMA), all within
// kFastTanhMaxError = 4e-7. Cost: 15 vector operations, no division and no exp, against about
// 30 for an exp-based tanh. Checked against std::tanh on every finite float
// (tests/attention/test_additive_attention.cc).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V FastTanh(D d, V x) {
  x = hn::Min(hn::Max(x, hn::Set(d, -9.0f)), hn::Set(d, 9.0f));
  const V s = hn::Mul(x, x);
  V p = hn::Set(d, 1.318416576e-08f);
  p = hn::MulAdd(p, s, hn::Set(d, 2.047178714e-05f));
  p = hn::MulAdd(p, s, hn::Set(d, 3.486579284e-03f));
  p = hn::MulAdd(p, s, hn::Set(d, 1.337319613e-01f));
  p = hn::MulAdd(p, s, hn::Set(d, 9.999998808e-01f));
  V q = hn::Set(d, 7.702639095e-07f);
  q = hn::MulAdd(q, s, hn::Set(d, 3.271381138e-04f));
  q = hn::MulAdd(q, s, hn::Set(d, 2.584197000e-02f));
  q = hn::MulAdd(q, s, hn::Set(d, 4.670649171e-01f));
  q = hn::MulAdd(q, s, hn::Set(d, 1.0f));  // Q >= 1 on the whole range: no pole, no underflow
  V r = hn::ApproximateReciprocal(q);
  r = hn::Mul(r, hn::NegMulAdd(q, r, hn::Set(d, 2.0f)));  // Newton: r (2 - q r)
  return hn::Mul(hn::Mul(x, p), r);
}

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#endif  // ATTEND_BACKEND_CPU_SIMD_MATH_INL_H_ (per target)
