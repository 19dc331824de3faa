// Highway implementations of the f32 elementwise kernels (binary and unary functions, their
// derivatives, accumulation), compiled once per target and dispatched at run time. Tails shorter
// than a vector fall back to the scalar reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/simd/elementwise_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

#include <algorithm>

#include "backend/cpu/simd/math-inl.h"

#include "backend/cpu/reference/elementwise_kernels.h"
#include "backend/cpu/simd/elementwise_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attend::cpu::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

template <class V>
HWY_INLINE V ApplyBin(BinaryOp op, V a, V b) {
  switch (op) {
    case BinaryOp::kAdd: return hn::Add(a, b);
    case BinaryOp::kSub: return hn::Sub(a, b);
    case BinaryOp::kMul: return hn::Mul(a, b);
    case BinaryOp::kDiv: return hn::Div(a, b);
  }
  return a;
}

void BinaryImpl(BinaryOp op, const float* a, bool a_scalar, const float* b, bool b_scalar,
                float* out, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  // The op is fixed per call: branching on it per vector is predicted perfectly.
  if (!a_scalar && !b_scalar) {
    // Four vectors per iteration keep more loads in flight.
    for (; i + 4 * N <= n; i += 4 * N) {
      const VF r0 = ApplyBin(op, hn::LoadU(d, a + i), hn::LoadU(d, b + i));
      const VF r1 = ApplyBin(op, hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N));
      const VF r2 = ApplyBin(op, hn::LoadU(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N));
      const VF r3 = ApplyBin(op, hn::LoadU(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N));
      hn::StoreU(r0, d, out + i);
      hn::StoreU(r1, d, out + i + N);
      hn::StoreU(r2, d, out + i + 2 * N);
      hn::StoreU(r3, d, out + i + 3 * N);
    }
    for (; i + N <= n; i += N)
      hn::StoreU(ApplyBin(op, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  } else if (a_scalar && !b_scalar) {
    const VF va = hn::Set(d, a[0]);
    for (; i + N <= n; i += N) hn::StoreU(ApplyBin(op, va, hn::LoadU(d, b + i)), d, out + i);
  } else if (!a_scalar && b_scalar) {
    const VF vb = hn::Set(d, b[0]);
    for (; i + N <= n; i += N) hn::StoreU(ApplyBin(op, hn::LoadU(d, a + i), vb), d, out + i);
  }
  for (; i < n; ++i) out[i] = ref::ApplyBinary(op, a[a_scalar ? 0 : i], b[b_scalar ? 0 : i]);
}

HWY_INLINE VF ApplyUn(DF d, UnaryOp op, VF x, VF p0, VF p1) {
  switch (op) {
    case UnaryOp::kNeg: return hn::Neg(x);
    case UnaryOp::kAbs: return hn::Abs(x);
    case UnaryOp::kExp: return hn::Exp(d, x);
    case UnaryOp::kLog: return hn::Log(d, x);
    case UnaryOp::kSqrt: return hn::Sqrt(x);
    case UnaryOp::kRsqrt: return hn::Div(hn::Set(d, 1.0f), hn::Sqrt(x));
    case UnaryOp::kTanh: return hn::Tanh(d, x);
    case UnaryOp::kSigmoid: return Sigmoid(d, x);
    case UnaryOp::kRelu: return hn::Max(x, hn::Zero(d));
    case UnaryOp::kGelu:
      return hn::Mul(hn::Mul(hn::Set(d, 0.5f), x),
                     hn::Add(hn::Set(d, 1.0f), Erf(d, hn::Mul(x, hn::Set(d, 0.70710678f)))));
    case UnaryOp::kPow: return x;  // handled by the scalar path (std::pow)
    case UnaryOp::kClamp: return hn::Min(hn::Max(x, p0), p1);
    case UnaryOp::kAddScalar: return hn::Add(x, p0);
    case UnaryOp::kMulScalar: return hn::Mul(x, p0);
  }
  return x;
}

void UnaryImpl(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  if (op == UnaryOp::kPow) {
    if (p0 == 2.0f) return BinaryImpl(BinaryOp::kMul, x, false, x, false, y, n);
    return ref::Unary(op, x, 1, y, 1, n, p0, p1);
  }
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF v0 = hn::Set(d, p0), v1 = hn::Set(d, p1);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(ApplyUn(d, op, hn::LoadU(d, x + i), v0, v1), d, y + i);
  if (i < n) {
    // The tail through one padded vector, not the scalar reference: every element gets the same
    // approximation wherever it sits, so a row's result does not depend on its position (beam
    // search reorders hypotheses between steps).
    HWY_ALIGN float buf[hn::MaxLanes(DF())] = {};
    std::copy(x + i, x + n, buf);
    hn::Store(ApplyUn(d, op, hn::Load(d, buf), v0, v1), d, buf);
    std::copy(buf, buf + (n - i), y + i);
  }
}

HWY_INLINE VF ApplyUnGrad(DF d, UnaryGradOp op, VF x, VF y, VF g, VF p0, VF p1) {
  const VF one = hn::Set(d, 1.0f);
  switch (op) {
    case UnaryGradOp::kExp: return hn::Mul(g, y);
    case UnaryGradOp::kLog: return hn::Div(g, x);
    case UnaryGradOp::kSqrt: return hn::Div(g, hn::Add(y, y));
    case UnaryGradOp::kRsqrt:
      return hn::Mul(hn::Mul(g, hn::Set(d, -0.5f)), hn::Mul(y, hn::Mul(y, y)));
    case UnaryGradOp::kTanh: return hn::Mul(g, hn::NegMulAdd(y, y, one));
    case UnaryGradOp::kSigmoid: return hn::Mul(hn::Mul(g, y), hn::Sub(one, y));
    case UnaryGradOp::kRelu: return hn::IfThenElseZero(hn::Gt(x, hn::Zero(d)), g);
    case UnaryGradOp::kGelu: {
      const VF cdf =
          hn::Mul(hn::Set(d, 0.5f), hn::Add(one, Erf(d, hn::Mul(x, hn::Set(d, 0.70710678f)))));
      const VF pdf =
          hn::Mul(hn::Exp(d, hn::Mul(hn::Set(d, -0.5f), hn::Mul(x, x))), hn::Set(d, 0.39894228f));
      return hn::Mul(g, hn::MulAdd(x, pdf, cdf));
    }
    case UnaryGradOp::kClamp: return hn::IfThenElseZero(hn::And(hn::Ge(x, p0), hn::Le(x, p1)), g);
    case UnaryGradOp::kAbs:
    case UnaryGradOp::kPow: return g;  // handled by the scalar path
  }
  return g;
}

void UnaryGradImpl(UnaryGradOp op, const float* x, const float* y, const float* g, float* dx,
                   int64_t n, float p0, float p1) {
  if (op == UnaryGradOp::kAbs || op == UnaryGradOp::kPow)
    return ref::UnaryGrad(op, x, y, g, dx, n, p0, p1);
  const DF d;
  const int64_t N = hn::Lanes(d);
  const VF v0 = hn::Set(d, p0), v1 = hn::Set(d, p1), zero = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF vx = x ? hn::LoadU(d, x + i) : zero;
    const VF vy = y ? hn::LoadU(d, y + i) : zero;
    hn::StoreU(ApplyUnGrad(d, op, vx, vy, hn::LoadU(d, g + i), v0, v1), d, dx + i);
  }
  if (i < n) {  // the tail through one padded vector, as in UnaryImpl
    HWY_ALIGN float bx[hn::MaxLanes(DF())] = {}, by[hn::MaxLanes(DF())] = {},
                    bg[hn::MaxLanes(DF())] = {};
    if (x) std::copy(x + i, x + n, bx);
    if (y) std::copy(y + i, y + n, by);
    std::copy(g + i, g + n, bg);
    hn::Store(ApplyUnGrad(d, op, hn::Load(d, bx), hn::Load(d, by), hn::Load(d, bg), v0, v1), d, bg);
    std::copy(bg, bg + (n - i), dx + i);
  }
}

void AccumulateImpl(float* out, const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(d, out + i), hn::LoadU(d, x + i)), d, out + i);
  for (; i < n; ++i) out[i] += x[i];
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace attend::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attend::cpu::simd {

HWY_EXPORT(BinaryImpl);
HWY_EXPORT(UnaryImpl);
HWY_EXPORT(UnaryGradImpl);
HWY_EXPORT(AccumulateImpl);
HWY_EXPORT(TargetNameImpl);

void Binary(BinaryOp op, const float* a, bool a_scalar, const float* b, bool b_scalar, float* out,
            int64_t n) {
  HWY_DYNAMIC_DISPATCH(BinaryImpl)(op, a, a_scalar, b, b_scalar, out, n);
}
void Unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  HWY_DYNAMIC_DISPATCH(UnaryImpl)(op, x, y, n, p0, p1);
}
void UnaryGrad(UnaryGradOp op, const float* x, const float* y, const float* g, float* dx, int64_t n,
               float p0, float p1) {
  HWY_DYNAMIC_DISPATCH(UnaryGradImpl)(op, x, y, g, dx, n, p0, p1);
}
void Accumulate(float* out, const float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AccumulateImpl)(out, x, n);
}
const char* TargetName() { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }

}  // namespace attend::cpu::simd
#endif  // HWY_ONCE
