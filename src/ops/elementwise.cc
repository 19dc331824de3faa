// Elementwise ops with NumPy broadcasting: arithmetic, unary functions, comparisons, where and
// masked_fill, each with its backward rule.
#include <cmath>

#include "backend/cpu/dispatch.h"
#include "backend/cpu/reference/elementwise_kernels.h"
#include "backend/cpu/simd/elementwise_kernels.h"
#include "ops/op_helpers.h"

namespace attend {

using cpu::BinaryOp;
using cpu::UnaryGradOp;
using cpu::UnaryOp;

namespace {

constexpr int64_t kThreadElems = 1 << 15;  // below this an OpenMP region costs more than it saves

const char* BinaryName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "Add";
    case BinaryOp::kSub: return "Sub";
    case BinaryOp::kMul: return "Mul";
    case BinaryOp::kDiv: return "Div";
  }
  return "?";
}

// Forward of a broadcasting binary op (no autograd).
// a op b, into a new tensor or, with `into` (of the result's shape and dtype, any strides; it may
// be `a` itself, element for element), into that one.
Tensor BinaryForward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor* into = nullptr) {
  const char* name = BinaryName(op);
  CheckFloating(a, name);
  CheckFloating(b, name);
  ATTEND_CHECK(a.dtype() == b.dtype(), name, ": dtypes differ: ", a.str(), " and ", b.str());
  Shape shape = BroadcastShapes(a.shape(), b.shape(), name);
  ATTEND_ASSERT(!into || (into->shape() == shape && into->dtype() == a.dtype()), name,
                ": cannot write ", shape.str(), " into ", into->str());
  Tensor out = into ? *into : Tensor::Empty(shape, a.dtype());
  const int64_t n = shape.numel();
  if (a.dtype() == DType::kF32 && a.shape() == shape && b.shape() == shape && a.is_contiguous() &&
      b.is_contiguous() && out.is_contiguous()) {
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* po = out.data<float>();
    ParallelRange(n, kThreadElems, [&](int64_t s, int64_t e) {
      cpu::simd::Binary(op, pa + s, false, pb + s, false, po + s, e - s);
    });
    return out;
  }
  std::array<Shape, 3> st{out.strides(), BroadcastStrides(a, shape), BroadcastStrides(b, shape)};
  DispatchFloat(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    T* po = out.data<T>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    ParallelForEachRow<3>(
        shape, st, kThreadElems,
        [&](const std::array<int64_t, 3>& off, int64_t len, const std::array<int64_t, 3>& in) {
          if constexpr (std::is_same_v<T, float>) {
            if (in[0] == 1 && (in[1] == 0 || in[1] == 1) && (in[2] == 0 || in[2] == 1) &&
                !(in[1] == 0 && in[2] == 0)) {
              cpu::simd::Binary(op, pa + off[1], in[1] == 0, pb + off[2], in[2] == 0, po + off[0],
                                len);
              return;
            }
          }
          cpu::ref::Binary(op, pa + off[1], in[1], pb + off[2], in[2], po + off[0], in[0], len);
        });
  });
  return out;
}

Tensor BinaryOpWithGrad(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = BinaryForward(op, a, b);
  if (!GradMode::enabled() || !AnyRequiresGrad({&a, &b})) return out;
  const bool ra = a.requires_grad(), rb = b.requires_grad();
  const Shape sa = a.shape(), sb = b.shape();
  switch (op) {
    case BinaryOp::kAdd:
      RecordOp("Add", out, {&a, &b}, [=](const Tensor& g) {
        return std::vector<Tensor>{ra ? SumTo(g, sa) : Tensor(), rb ? SumTo(g, sb) : Tensor()};
      });
      break;
    case BinaryOp::kSub:
      RecordOp("Sub", out, {&a, &b}, [=](const Tensor& g) {
        return std::vector<Tensor>{ra ? SumTo(g, sa) : Tensor(), rb ? SumTo(Neg(g), sb) : Tensor()};
      });
      break;
    case BinaryOp::kMul: {
      Tensor da = rb ? a.Detach() : Tensor(), db = ra ? b.Detach() : Tensor();
      RecordOp("Mul", out, {&a, &b}, [=](const Tensor& g) {
        return std::vector<Tensor>{ra ? SumTo(Mul(g, db), sa) : Tensor(),
                                   rb ? SumTo(Mul(g, da), sb) : Tensor()};
      });
      break;
    }
    case BinaryOp::kDiv: {
      Tensor da = rb ? a.Detach() : Tensor(), db = b.Detach();
      RecordOp("Div", out, {&a, &b}, [=](const Tensor& g) {
        Tensor ga = ra ? SumTo(Div(g, db), sa) : Tensor();
        Tensor gb = rb ? SumTo(Neg(Div(Mul(g, da), Mul(db, db))), sb) : Tensor();
        return std::vector<Tensor>{ga, gb};
      });
      break;
    }
  }
  return out;
}

const char* UnaryName(UnaryOp op) {
  switch (op) {
    case UnaryOp::kNeg: return "Neg";
    case UnaryOp::kAbs: return "Abs";
    case UnaryOp::kExp: return "Exp";
    case UnaryOp::kLog: return "Log";
    case UnaryOp::kSqrt: return "Sqrt";
    case UnaryOp::kRsqrt: return "Rsqrt";
    case UnaryOp::kTanh: return "Tanh";
    case UnaryOp::kSigmoid: return "Sigmoid";
    case UnaryOp::kRelu: return "Relu";
    case UnaryOp::kGelu: return "Gelu";
    case UnaryOp::kPow: return "Pow";
    case UnaryOp::kClamp: return "Clamp";
    case UnaryOp::kAddScalar: return "AddScalar";
    case UnaryOp::kMulScalar: return "MulScalar";
  }
  return "?";
}

Tensor UnaryForward(UnaryOp op, const Tensor& a_in, double p0, double p1) {
  const char* name = UnaryName(op);
  CheckFloating(a_in, name);
  Tensor a = a_in.Detach().Contiguous();
  Tensor out = Tensor::Empty(a.shape(), a.dtype());
  const int64_t n = a.numel();
  // Transcendental functions cost ~10x a plain add, so they thread at smaller sizes.
  const int64_t threshold =
      (op == UnaryOp::kNeg || op == UnaryOp::kAbs || op == UnaryOp::kAddScalar ||
       op == UnaryOp::kMulScalar || op == UnaryOp::kRelu || op == UnaryOp::kClamp)
          ? kThreadElems
          : kThreadElems / 8;
  DispatchFloat(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    T* po = out.data<T>();
    ParallelRange(n, threshold, [&](int64_t s, int64_t e) {
      cpu::Unary(op, pa + s, po + s, e - s, static_cast<T>(p0), static_cast<T>(p1));
    });
  });
  return out;
}

// dx = g * f'(x or y) with a fused kernel.
Tensor UnaryBackward(UnaryGradOp op, const Tensor& x, const Tensor& y, const Tensor& g_in,
                     double p0, double p1) {
  Tensor g = g_in.Contiguous();
  Tensor dx = Tensor::Empty(g.shape(), g.dtype());
  const int64_t n = g.numel();
  DispatchFloat(g.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.defined() ? x.data<T>() : nullptr;
    const T* py = y.defined() ? y.data<T>() : nullptr;
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
    ParallelRange(n, kThreadElems / 8, [&](int64_t s, int64_t e) {
      cpu::UnaryGrad(op, px ? px + s : nullptr, py ? py + s : nullptr, pg + s, pd + s, e - s,
                     static_cast<T>(p0), static_cast<T>(p1));
    });
  });
  return dx;
}

// A unary op whose derivative comes from the input (uses_y = false) or the output.
Tensor UnaryWithGrad(UnaryOp op, UnaryGradOp grad_op, bool uses_y, const Tensor& a, double p0 = 0,
                     double p1 = 0) {
  Tensor out = UnaryForward(op, a, p0, p1);
  if (!GradMode::enabled() || !a.requires_grad()) return out;
  Tensor saved = uses_y ? out.Detach() : a.Detach().Contiguous();
  RecordOp(UnaryName(op), out, {&a}, [=](const Tensor& g) {
    return std::vector<Tensor>{uses_y ? UnaryBackward(grad_op, Tensor(), saved, g, p0, p1)
                                      : UnaryBackward(grad_op, saved, Tensor(), g, p0, p1)};
  });
  return out;
}

}  // namespace

Tensor Add(const Tensor& a, const Tensor& b) { return BinaryOpWithGrad(BinaryOp::kAdd, a, b); }
Tensor SumGradients(const Tensor& a, const Tensor& b) { return Add(a, b); }  // autograd/node.h

void AccumulateGradient(Tensor& into, const Tensor& g) {  // autograd/node.h
  const int64_t n = into.numel();
  if (into.is_contiguous() && g.is_contiguous() && into.shape() == g.shape() &&
      into.dtype() == g.dtype() && (into.dtype() == DType::kF32 || into.dtype() == DType::kF64)) {
    if (into.dtype() == DType::kF32) {
      float* out = into.data<float>();
      const float* x = g.data<float>();
      ParallelRange(n, 1 << 15,
                    [&](int64_t s, int64_t e) { cpu::simd::Accumulate(out + s, x + s, e - s); });
    } else {
      cpu::ref::Accumulate(into.data<double>(), g.data<double>(), n);
    }
    return;
  }
  // A slice of a running sum (Narrow's gradient), a transposed gradient: added in place through
  // the strides, not into a temporary copied back.
  BinaryForward(BinaryOp::kAdd, into, g, &into);
}
Tensor Sub(const Tensor& a, const Tensor& b) { return BinaryOpWithGrad(BinaryOp::kSub, a, b); }
Tensor Mul(const Tensor& a, const Tensor& b) { return BinaryOpWithGrad(BinaryOp::kMul, a, b); }
Tensor Div(const Tensor& a, const Tensor& b) { return BinaryOpWithGrad(BinaryOp::kDiv, a, b); }

Tensor AddScalar(const Tensor& a, double s) {
  Tensor out = UnaryForward(UnaryOp::kAddScalar, a, s, 0);
  RecordOp("AddScalar", out, {&a}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}
Tensor MulScalar(const Tensor& a, double s) {
  Tensor out = UnaryForward(UnaryOp::kMulScalar, a, s, 0);
  RecordOp("MulScalar", out, {&a},
           [s](const Tensor& g) { return std::vector<Tensor>{MulScalar(g, s)}; });
  return out;
}
Tensor Neg(const Tensor& a) {
  Tensor out = UnaryForward(UnaryOp::kNeg, a, 0, 0);
  RecordOp("Neg", out, {&a}, [](const Tensor& g) { return std::vector<Tensor>{Neg(g)}; });
  return out;
}
Tensor Pow(const Tensor& a, double e) {
  return UnaryWithGrad(UnaryOp::kPow, UnaryGradOp::kPow, false, a, e);
}
Tensor Abs(const Tensor& a) { return UnaryWithGrad(UnaryOp::kAbs, UnaryGradOp::kAbs, false, a); }
Tensor Exp(const Tensor& a) { return UnaryWithGrad(UnaryOp::kExp, UnaryGradOp::kExp, true, a); }
Tensor Log(const Tensor& a) { return UnaryWithGrad(UnaryOp::kLog, UnaryGradOp::kLog, false, a); }
Tensor Sqrt(const Tensor& a) { return UnaryWithGrad(UnaryOp::kSqrt, UnaryGradOp::kSqrt, true, a); }
Tensor Rsqrt(const Tensor& a) {
  return UnaryWithGrad(UnaryOp::kRsqrt, UnaryGradOp::kRsqrt, true, a);
}
Tensor Tanh(const Tensor& a) { return UnaryWithGrad(UnaryOp::kTanh, UnaryGradOp::kTanh, true, a); }
Tensor Sigmoid(const Tensor& a) {
  return UnaryWithGrad(UnaryOp::kSigmoid, UnaryGradOp::kSigmoid, true, a);
}
Tensor Relu(const Tensor& a) { return UnaryWithGrad(UnaryOp::kRelu, UnaryGradOp::kRelu, false, a); }
Tensor Gelu(const Tensor& a) { return UnaryWithGrad(UnaryOp::kGelu, UnaryGradOp::kGelu, false, a); }
Tensor Clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
  ATTEND_CHECK(lo || hi, "Clamp: give at least one of lo and hi");
  double l = lo ? *lo : -HUGE_VAL, h = hi ? *hi : HUGE_VAL;
  ATTEND_CHECK(l <= h, "Clamp: lo ", l, " is greater than hi ", h);
  return UnaryWithGrad(UnaryOp::kClamp, UnaryGradOp::kClamp, false, a, l, h);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return Add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return Sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return Mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return Div(a, b); }
Tensor operator+(const Tensor& a, double b) { return AddScalar(a, b); }
Tensor operator-(const Tensor& a, double b) { return AddScalar(a, -b); }
Tensor operator*(const Tensor& a, double b) { return MulScalar(a, b); }
Tensor operator/(const Tensor& a, double b) { return MulScalar(a, 1.0 / b); }
Tensor operator+(double a, const Tensor& b) { return AddScalar(b, a); }
Tensor operator-(double a, const Tensor& b) { return AddScalar(Neg(b), a); }
Tensor operator*(double a, const Tensor& b) { return MulScalar(b, a); }
Tensor operator/(double a, const Tensor& b) { return Div(Tensor::Full(Shape{}, a, b.dtype()), b); }
Tensor operator-(const Tensor& a) { return Neg(a); }

// ---- comparisons and selection ----
namespace {
enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

// out = fn(a, b) elementwise over the broadcast of a and b (both holding T), as a bool tensor.
template <typename T, typename Fn>
Tensor BoolOfPairs(const Tensor& a, const Tensor& b, const char* name, Fn&& fn) {
  Shape shape = BroadcastShapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::Empty(shape, DType::kBool);
  std::array<Shape, 3> st{out.strides(), BroadcastStrides(a, shape), BroadcastStrides(b, shape)};
  bool* po = out.data<bool>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  ForEachRow<3>(
      shape, st,
      [&](const std::array<int64_t, 3>& off, int64_t len, const std::array<int64_t, 3>& in) {
        for (int64_t i = 0; i < len; ++i)
          po[off[0] + i * in[0]] = fn(pa[off[1] + i * in[1]], pb[off[2] + i * in[2]]);
      });
  return out;
}

Tensor Compare(CmpOp op, const Tensor& a, const Tensor& b, const char* name) {
  CheckDefined(a, name);
  CheckDefined(b, name);
  ATTEND_CHECK(a.dtype() == b.dtype(), name, ": dtypes differ: ", a.str(), " and ", b.str());
  auto run = [&](auto tag) {
    using T = decltype(tag);
    return BoolOfPairs<T>(a, b, name, [op](T x, T y) {
      switch (op) {
        case CmpOp::kEq: return x == y;
        case CmpOp::kNe: return x != y;
        case CmpOp::kLt: return x < y;
        case CmpOp::kLe: return x <= y;
        case CmpOp::kGt: return x > y;
        case CmpOp::kGe: return x >= y;
      }
      return false;
    });
  };
  switch (a.dtype()) {
    case DType::kF32: return run(float{});
    case DType::kF64: return run(double{});
    case DType::kI64: return run(int64_t{});
    case DType::kBool: return run(bool{});
    case DType::kI8: break;
  }
  throw Error(std::string(name) + ": i8 tensors are for storage only, not arithmetic");
}
}  // namespace

Tensor Eq(const Tensor& a, const Tensor& b) { return Compare(CmpOp::kEq, a, b, "Eq"); }
Tensor Ne(const Tensor& a, const Tensor& b) { return Compare(CmpOp::kNe, a, b, "Ne"); }
Tensor Lt(const Tensor& a, const Tensor& b) { return Compare(CmpOp::kLt, a, b, "Lt"); }
Tensor Le(const Tensor& a, const Tensor& b) { return Compare(CmpOp::kLe, a, b, "Le"); }
Tensor Gt(const Tensor& a, const Tensor& b) { return Compare(CmpOp::kGt, a, b, "Gt"); }
Tensor Ge(const Tensor& a, const Tensor& b) { return Compare(CmpOp::kGe, a, b, "Ge"); }

Tensor LogicalNot(const Tensor& mask) {
  CheckDefined(mask, "LogicalNot");
  ATTEND_CHECK(mask.dtype() == DType::kBool, "LogicalNot: expected a bool tensor, got ",
               mask.str());
  Tensor m = mask.Contiguous();
  Tensor out = Tensor::Empty(m.shape(), DType::kBool);
  const bool* p = m.data<bool>();
  bool* o = out.data<bool>();
  for (int64_t i = 0; i < m.numel(); ++i) o[i] = !p[i];
  return out;
}

namespace {
Tensor LogicalBinary(const Tensor& a, const Tensor& b, bool is_and, const char* name) {
  CheckDefined(a, name);
  CheckDefined(b, name);
  ATTEND_CHECK(a.dtype() == DType::kBool && b.dtype() == DType::kBool, name,
               ": expected bool tensors, got ", a.str(), " and ", b.str());
  if (is_and) return BoolOfPairs<bool>(a, b, name, [](bool x, bool y) { return x && y; });
  return BoolOfPairs<bool>(a, b, name, [](bool x, bool y) { return x || y; });
}
}  // namespace

Tensor LogicalAnd(const Tensor& a, const Tensor& b) {
  return LogicalBinary(a, b, true, "LogicalAnd");
}
Tensor LogicalOr(const Tensor& a, const Tensor& b) {
  return LogicalBinary(a, b, false, "LogicalOr");
}

Tensor Where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  CheckDefined(cond, "Where");
  CheckFloating(a, "Where");
  CheckFloating(b, "Where");
  ATTEND_CHECK(cond.dtype() == DType::kBool, "Where: condition must be bool, got ", cond.str());
  ATTEND_CHECK(a.dtype() == b.dtype(), "Where: dtypes differ: ", a.str(), " and ", b.str());
  Shape shape =
      BroadcastShapes(BroadcastShapes(cond.shape(), a.shape(), "Where"), b.shape(), "Where");
  Tensor out = Tensor::Empty(shape, a.dtype());
  std::array<Shape, 4> st{out.strides(), BroadcastStrides(cond, shape), BroadcastStrides(a, shape),
                          BroadcastStrides(b, shape)};
  DispatchFloat(a.dtype(), "Where", [&](auto tag) {
    using T = decltype(tag);
    T* po = out.data<T>();
    const bool* pc = cond.data<bool>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    ParallelForEachRow<4>(
        shape, st, kThreadElems,
        [&](const std::array<int64_t, 4>& off, int64_t len, const std::array<int64_t, 4>& in) {
          for (int64_t i = 0; i < len; ++i)
            po[off[0] + i * in[0]] =
                pc[off[1] + i * in[1]] ? pa[off[2] + i * in[2]] : pb[off[3] + i * in[3]];
        });
  });
  if (GradMode::enabled() && AnyRequiresGrad({&a, &b})) {
    Tensor c = cond.Detach();
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    const Shape sa = a.shape(), sb = b.shape();
    RecordOp("Where", out, {&a, &b}, [=](const Tensor& g) {
      Tensor ga = ra ? SumTo(MaskedFill(g, LogicalNot(c), 0.0), sa) : Tensor();
      Tensor gb = rb ? SumTo(MaskedFill(g, c, 0.0), sb) : Tensor();
      return std::vector<Tensor>{ga, gb};
    });
  }
  return out;
}

Tensor MaskedFill(const Tensor& a, const Tensor& mask, double value) {
  CheckFloating(a, "MaskedFill");
  CheckDefined(mask, "MaskedFill");
  ATTEND_CHECK(mask.dtype() == DType::kBool, "MaskedFill: mask must be bool, got ", mask.str());
  Shape shape = BroadcastShapes(a.shape(), mask.shape(), "MaskedFill");
  ATTEND_CHECK(shape == a.shape(), "MaskedFill: mask ", mask.shape().str(),
               " does not broadcast to the input ", a.shape().str());
  Tensor out = Tensor::Empty(shape, a.dtype());
  std::array<Shape, 3> st{out.strides(), a.strides(), BroadcastStrides(mask, shape)};
  DispatchFloat(a.dtype(), "MaskedFill", [&](auto tag) {
    using T = decltype(tag);
    T* po = out.data<T>();
    const T* pa = a.data<T>();
    const bool* pm = mask.data<bool>();
    const T v = static_cast<T>(value);
    ParallelForEachRow<3>(
        shape, st, kThreadElems,
        [&](const std::array<int64_t, 3>& off, int64_t len, const std::array<int64_t, 3>& in) {
          for (int64_t i = 0; i < len; ++i)
            po[off[0] + i * in[0]] = pm[off[2] + i * in[2]] ? v : pa[off[1] + i * in[1]];
        });
  });
  Tensor m = mask.Detach();
  RecordOp("MaskedFill", out, {&a},
           [m](const Tensor& g) { return std::vector<Tensor>{MaskedFill(g, m, 0.0)}; });
  return out;
}

}  // namespace attend
