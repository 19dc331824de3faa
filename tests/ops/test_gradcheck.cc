// Finite-difference gradient checks (f64) of every differentiable op and view; autograd semantics.
#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attend/attend.h"
#include "backend/cpu/reference/gemm_kernels.h"
#include "support/gradcheck.h"

namespace attend {
namespace {

using gradcheck::GradCheck;
using gradcheck::GradCheckMulti;
using gradcheck::Indices;
using gradcheck::Mask;
using gradcheck::RandomAway;
using gradcheck::RandomDistinct;
using gradcheck::RandomMask;
using gradcheck::RandomSigned;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;

using Xs = std::vector<Tensor>;
using UnaryOp = std::function<Tensor(const Tensor&)>;
using BinaryOp = std::function<Tensor(const Tensor&, const Tensor&)>;
using DataGen = std::function<Tensor(const Shape&, uint64_t)>;

// Input distributions: smooth ops get O(1) values of both signs; ops with a pole or a kink at 0
// get magnitudes bounded away from it.
const DataGen kAnyValue = [](const Shape& s, uint64_t seed) {
  return RandomUniform(s, seed, -2.0, 2.0);
};
const DataGen kPositive = [](const Shape& s, uint64_t seed) {
  return RandomUniform(s, seed, 0.5, 2.0);
};
const DataGen kNonZero = [](const Shape& s, uint64_t seed) {
  return RandomSigned(s, seed, 0.2, 2.0);
};

// Checks op on a contiguous [3, 5, 7], on a transposed (non-contiguous) view, on a 1-D [5] and
// on a 0-d scalar, so every kernel layout the elementwise code has is exercised.
::testing::AssertionResult CheckUnary(const UnaryOp& op, const DataGen& gen) {
  auto r = GradCheck([&](const Xs& x) { return op(x[0]); }, {gen({3, 5, 7}, 11)});
  if (!r) return r << "\n(on contiguous [3, 5, 7])";
  r = GradCheck([&](const Xs& x) { return op(x[0].Transpose(0, 2)); }, {gen({7, 5, 3}, 12)});
  if (!r) return r << "\n(on [7, 5, 3].Transpose(0, 2))";
  r = GradCheck([&](const Xs& x) { return op(x[0]); }, {gen({5}, 13)});
  if (!r) return r << "\n(on 1-D [5])";
  r = GradCheck([&](const Xs& x) { return op(x[0]); }, {gen({}, 14)});
  if (!r) return r << "\n(on a 0-d scalar)";
  return r;
}

// Shape pairs for broadcasting binary ops: equal shapes, [3,1,5] with [4,1] -> [3,4,5], a
// trailing vector, a leading size-1 dim, and 0-d scalars on either side.
struct ShapePair {
  Shape a;
  Shape b;
};
const std::vector<ShapePair> kBroadcastPairs = {
    {{3, 5, 7}, {3, 5, 7}}, {{3, 1, 5}, {4, 1}}, {{2, 3}, {3}}, {{3}, {2, 3}},
    {{1, 5}, {3, 1}},       {{}, {3, 5}},        {{3, 5}, {}},  {{5, 1, 7}, {5, 3, 1}},
};

::testing::AssertionResult CheckBinary(const BinaryOp& op) {
  uint64_t seed = 100;
  for (const ShapePair& p : kBroadcastPairs) {
    // Magnitudes in [0.5, 2] for both sides keep Div's denominator away from its pole.
    Tensor a = RandomSigned(p.a, seed++, 0.5, 2.0);
    Tensor b = RandomSigned(p.b, seed++, 0.5, 2.0);
    auto r = GradCheck([&](const Xs& x) { return op(x[0], x[1]); }, {a, b});
    if (!r) return r << "\n(a " << p.a.str() << ", b " << p.b.str() << ")";
  }
  // A transposed operand against a contiguous one.
  auto r = GradCheck([&](const Xs& x) { return op(x[0].T(), x[1]); },
                     {RandomSigned({5, 3}, 200, 0.5, 2.0), RandomSigned({3, 5}, 201, 0.5, 2.0)});
  if (!r) return r << "\n(a [5, 3].T(), b [3, 5])";
  // The same tensor on both sides: its gradient is the sum of both partials.
  r = GradCheck([&](const Xs& x) { return op(x[0], x[0]); }, {RandomSigned({3, 5}, 202, 0.5, 2.0)});
  if (!r) return r << "\n(the same [3, 5] tensor as both operands)";
  return r;
}

// A tensor's values, or none for an undefined tensor (a missing .grad then fails the comparison
// instead of crashing the test binary).
std::vector<double> Values(const Tensor& t) {
  return t.defined() ? t.ToVector<double>() : std::vector<double>{};
}

// ---------------------------------------------------------------------------------------------
// Elementwise binary

TEST(GradCheck, Add) {
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return Add(a, b); }));
}
TEST(GradCheck, Sub) {
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return Sub(a, b); }));
}
TEST(GradCheck, Mul) {
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return Mul(a, b); }));
}
TEST(GradCheck, Div) {
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return Div(a, b); }));
}

TEST(GradCheck, TensorOperators) {
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return a + b; }));
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return a - b; }));
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return a * b; }));
  EXPECT_TRUE(CheckBinary([](const Tensor& a, const Tensor& b) { return a / b; }));
}

TEST(GradCheck, ScalarOperators) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return a + 2.5; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return a - 2.5; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return a * -1.5; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return a / 4.0; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return 2.5 + a; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return 2.5 - a; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return -1.5 * a; }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return 3.0 / a; }, kNonZero));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return -a; }, kAnyValue));
}

TEST(GradCheck, AddScalar) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return AddScalar(a, -0.75); }, kAnyValue));
}
TEST(GradCheck, MulScalar) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return MulScalar(a, 2.5); }, kAnyValue));
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return MulScalar(a, 0.0); }, kAnyValue));
}

// ---------------------------------------------------------------------------------------------
// Elementwise unary

TEST(GradCheck, Neg) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Neg(a); }, kAnyValue));
}
TEST(GradCheck, Abs) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Abs(a); }, kNonZero));
}
TEST(GradCheck, Exp) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Exp(a); }, kAnyValue));
}
TEST(GradCheck, Log) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Log(a); }, kPositive));
}
TEST(GradCheck, Sqrt) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Sqrt(a); }, kPositive));
}
TEST(GradCheck, Rsqrt) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Rsqrt(a); }, kPositive));
}
TEST(GradCheck, Tanh) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Tanh(a); }, kAnyValue));
}
TEST(GradCheck, Relu) {
  EXPECT_TRUE(CheckUnary([](const Tensor& a) { return Relu(a); }, kNonZero));
}

TEST(GradCheck, Sigmoid) {
  // Wider than kAnyValue so the saturating tails are covered too.
  EXPECT_TRUE(
      CheckUnary([](const Tensor& a) { return Sigmoid(a); },
                 [](const Shape& s, uint64_t seed) { return RandomUniform(s, seed, -6, 6); }));
}

TEST(GradCheck, Gelu) {
  EXPECT_TRUE(
      CheckUnary([](const Tensor& a) { return Gelu(a); },
                 [](const Shape& s, uint64_t seed) { return RandomUniform(s, seed, -4, 4); }));
}

TEST(GradCheck, Pow) {
  // Integer exponents are defined for negative bases; fractional and negative ones need a > 0.
  for (double e : {0.0, 1.0, 2.0, 3.0}) {
    SCOPED_TRACE("exponent " + std::to_string(e));
    EXPECT_TRUE(CheckUnary([e](const Tensor& a) { return Pow(a, e); }, kNonZero));
  }
  for (double e : {0.5, -1.0, -1.5, 2.7}) {
    SCOPED_TRACE("exponent " + std::to_string(e));
    EXPECT_TRUE(CheckUnary([e](const Tensor& a) { return Pow(a, e); }, kPositive));
  }
}

TEST(GradCheck, Clamp) {
  // Values kept 1e-2 away from the bounds, where the derivative jumps.
  const double lo = -0.5, hi = 0.7;
  auto away = [&](const Shape& s, uint64_t seed) { return RandomAway(s, seed, -2, 2, {lo, hi}); };
  EXPECT_TRUE(CheckUnary([&](const Tensor& a) { return Clamp(a, lo, hi); }, away));
  EXPECT_TRUE(CheckUnary([&](const Tensor& a) { return Clamp(a, lo, std::nullopt); }, away));
  EXPECT_TRUE(CheckUnary([&](const Tensor& a) { return Clamp(a, std::nullopt, hi); }, away));
}

// ---------------------------------------------------------------------------------------------
// Selection

TEST(GradCheck, Where) {
  // cond [3, 1] broadcasts over columns, b [5] over rows.
  Tensor cond = Mask({true, false, true}, {3, 1});
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Where(cond, x[0], x[1]); },
                        {RandomUniform({3, 5}, 1), RandomUniform({5}, 2)}));
  // Full-shape cond, both operands broadcast: [3,1,5] with [4,1].
  Tensor cond3 = RandomMask({3, 4, 5}, 3, 0.5);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Where(cond3, x[0], x[1]); },
                        {RandomUniform({3, 1, 5}, 4), RandomUniform({4, 1}, 5)}));
  // The same tensor on both sides.
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Where(cond3, x[0], Exp(x[0])); },
                        {RandomUniform({3, 4, 5}, 6)}));
}

TEST(GradCheck, MaskedFill) {
  Tensor mask = RandomMask({5, 1}, 7, 0.5);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return MaskedFill(x[0], mask, -3.0); },
                        {RandomUniform({3, 5, 7}, 8)}));
  Tensor full = RandomMask({3, 5, 7}, 9, 0.3);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return MaskedFill(x[0].Transpose(0, 2), full, 1e9); },
                        {RandomUniform({7, 5, 3}, 10)}));
}

// ---------------------------------------------------------------------------------------------
// Reductions

struct ReduceCase {
  std::vector<int> dims;
  bool keepdim;
};
// One dim, two non-adjacent dims (in both orders), a negative dim, all dims named, and none
// named (= all), each with and without keepdim.
const std::vector<ReduceCase> kReduceCases = {
    {{1}, false}, {{1}, true},        {{0, 2}, false}, {{2, 0}, true}, {{-1}, false},
    {{-3}, true}, {{0, 1, 2}, false}, {{}, false},     {{}, true},
};

std::string DimsStr(const ReduceCase& c) {
  std::string s = "dims {";
  for (size_t i = 0; i < c.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(c.dims[i]);
  return s + "} keepdim " + (c.keepdim ? "true" : "false");
}

using ReduceOp = std::function<Tensor(const Tensor&, const std::vector<int>&, bool)>;

::testing::AssertionResult CheckReduce(const ReduceOp& op, const DataGen& gen) {
  for (const ReduceCase& c : kReduceCases) {
    auto r =
        GradCheck([&](const Xs& x) { return op(x[0], c.dims, c.keepdim); }, {gen({3, 5, 7}, 21)});
    if (!r) return r << "\n(on [3, 5, 7], " << DimsStr(c) << ")";
    r = GradCheck(
        [&](const Xs& x) {
          return op(x[0].Permute({2, 0, 1}), c.dims, c.keepdim);
        },
        {gen({5, 7, 3}, 22)});
    if (!r) return r << "\n(on [5, 7, 3].Permute({2, 0, 1}), " << DimsStr(c) << ")";
  }
  auto r = GradCheck([&](const Xs& x) { return op(x[0], {0}, false); }, {gen({5}, 23)});
  if (!r) return r << "\n(on 1-D [5], dims {0})";
  return r;
}

TEST(GradCheck, Sum) {
  EXPECT_TRUE(CheckReduce(
      [](const Tensor& a, const std::vector<int>& d, bool k) { return Sum(a, d, k); }, kAnyValue));
}
TEST(GradCheck, Mean) {
  EXPECT_TRUE(CheckReduce(
      [](const Tensor& a, const std::vector<int>& d, bool k) { return Mean(a, d, k); }, kAnyValue));
}
TEST(GradCheck, Max) {
  // Distinct values: the maximum is unique and stays the maximum under an eps perturbation.
  const DataGen distinct = [](const Shape& s, uint64_t seed) { return RandomDistinct(s, seed); };
  EXPECT_TRUE(CheckReduce(
      [](const Tensor& a, const std::vector<int>& d, bool k) { return Max(a, d, k); }, distinct));
}
TEST(GradCheck, Min) {
  const DataGen distinct = [](const Shape& s, uint64_t seed) { return RandomDistinct(s, seed); };
  EXPECT_TRUE(CheckReduce(
      [](const Tensor& a, const std::vector<int>& d, bool k) { return Min(a, d, k); }, distinct));
}
TEST(GradCheck, Var) {
  for (int correction : {0, 1}) {
    SCOPED_TRACE("correction " + std::to_string(correction));
    EXPECT_TRUE(CheckReduce([correction](const Tensor& a, const std::vector<int>& d,
                                         bool k) { return Var(a, d, correction, k); },
                            kAnyValue));
  }
}

// Ties are not differentiable, so finite differences say nothing there; the documented rule is
// that tied extrema share the gradient equally (torch.amax / amin).
TEST(GradCheck, MaxMinTiesShareTheGradient) {
  Tensor x = Tensor::FromVector(std::vector<double>{1, 3, 3, 2, 0, 2}, {2, 3});
  x.set_requires_grad(true);
  Sum(Max(x, {1})).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(0, 0.5, 0.5, 0.5, 0, 0.5));
  x.ZeroGrad();
  Min(x).Backward();  // the single global minimum 0
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(0, 0, 0, 0, 1, 0));
  x.ZeroGrad();
  Max(x).Backward();  // two global maxima
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(0, 0.5, 0.5, 0, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// Matmul

struct MatmulCase {
  const char* name;
  Shape a;  // stored shape of the first input
  Shape b;
  bool transpose_a;  // pass a.T() (so the stored shape is the transposed one)
  bool transpose_b;
};

TEST(GradCheck, Matmul) {
  const std::vector<MatmulCase> cases = {
      {"1-D . 1-D", {5}, {5}, false, false},
      {"1-D . 2-D", {5}, {5, 7}, false, false},
      {"2-D . 1-D", {3, 5}, {5}, false, false},
      {"2-D . 2-D", {3, 5}, {5, 7}, false, false},
      {"2-D^T . 2-D", {5, 3}, {5, 7}, true, false},
      {"2-D . 2-D^T", {3, 5}, {7, 5}, false, true},
      {"2-D^T . 2-D^T", {5, 3}, {7, 5}, true, true},
      {"batched . 2-D", {2, 3, 5}, {5, 7}, false, false},
      {"2-D . batched", {3, 5}, {2, 5, 7}, false, false},
      {"batched . batched", {2, 3, 5}, {2, 5, 7}, false, false},
      {"broadcast batch [2,1] with [4]", {2, 1, 3, 5}, {4, 5, 7}, false, false},
      {"broadcast batch, both transposed", {2, 1, 5, 3}, {4, 7, 5}, true, true},
      {"batched^T . batched, size-1 batch", {2, 5, 3}, {1, 5, 7}, true, false},
      {"1-D . batched", {5}, {2, 5, 7}, false, false},
      {"batched . 1-D", {2, 3, 5}, {5}, false, false},
      {"inner dim 1 (outer product)", {3, 1}, {1, 7}, false, false},
  };
  uint64_t seed = 300;
  for (const MatmulCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(GradCheck(
        [&](const Xs& x) {
          return Matmul(c.transpose_a ? x[0].T() : x[0], c.transpose_b ? x[1].T() : x[1]);
        },
        {RandomUniform(c.a, seed), RandomUniform(c.b, seed + 1)}))
        << c.name << ": a " << c.a.str() << (c.transpose_a ? ".T()" : "") << ", b " << c.b.str()
        << (c.transpose_b ? ".T()" : "");
    seed += 2;
  }
  // One operand used twice (x . x^T): both gradient paths land on the same leaf.
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return Matmul(x[0], x[0].T()); }, {RandomUniform({3, 5}, 340)}));
  // A non-transpose non-contiguous operand (a column slice), which the BLAS cannot take as is.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0].Narrow(1, 1, 5), x[1]); },
                        {RandomUniform({3, 7}, 341), RandomUniform({5, 4}, 342)}));
  // A batched B given as a transposed view (q @ k^T): its gradient is made in k's orientation.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[1].Transpose(-1, -2)); },
                        {RandomUniform({2, 3, 5}, 343), RandomUniform({2, 4, 5}, 344)}));
  // k a head's view of the projections ([B, T, H * D] -> [B, H, T, D]), as attention takes it.
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        const Tensor k = x[1].View({2, 4, 3, 5}).Transpose(1, 2);
        return Matmul(x[0], k.Transpose(-1, -2));
      },
      {RandomUniform({2, 3, 6, 5}, 345), RandomUniform({2, 4, 15}, 346)}));
  // The same view on both sides (x x^T, batched): both gradients reach one leaf.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[0].Transpose(-1, -2)); },
                        {RandomUniform({2, 4, 5}, 347)}));
}

// Linear: x [..., in] @ W^T + b as one GEMM that starts from the bias. Finite differences in f64
// (OpenBLAS with the bias written into C first), over 2-D, batched, transposed and sliced x, a
// transposed weight view, no bias and 1-D x (the composed fallbacks).
TEST(GradCheck, Linear) {
  struct Case {
    const char* name;
    Shape x;
    bool transpose_x;  // x stored [..., in, rows], passed transposed
    bool weight_view;  // W stored [in, out], passed .T()
    bool bias;
  };
  const std::vector<Case> cases = {
      {"2-D", {3, 5}, false, false, true},
      {"batched", {2, 3, 5}, false, false, true},
      {"batched, x transposed", {2, 5, 3}, true, false, true},
      {"2-D, weight a transposed view", {4, 5}, false, true, true},
      {"no bias", {2, 3, 5}, false, false, false},
      {"1-D x", {5}, false, false, true},
  };
  uint64_t seed = 360;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Tensor> in = {RandomUniform(c.x, seed),
                              RandomUniform(c.weight_view ? Shape{5, 7} : Shape{7, 5}, seed + 1)};
    if (c.bias) in.push_back(RandomUniform({7}, seed + 2));
    EXPECT_TRUE(GradCheck(
        [&](const Xs& x) {
          const Tensor xi = c.transpose_x ? x[0].Transpose(-1, -2) : x[0];
          return Linear(xi, c.weight_view ? x[1].T() : x[1], c.bias ? x[2] : Tensor());
        },
        in));
    seed += 3;
  }
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return Linear(x[0].Narrow(1, 1, 5), x[1], x[2]); },
                {RandomUniform({3, 7}, 370), RandomUniform({4, 5}, 371), RandomUniform({4}, 372)}));
}

// The fused f32 layer against Matmul(x, W^T) + b: values within the GEMM's rounding (the bias is
// added first instead of last), x's and W's gradients bit for bit (the backward is the
// composition's), on products that run the project's kernel and ones that go to OpenBLAS. The
// bias's gradient is formed by the weight gradient's GEMM (cpu::Gemm's sum_a): the bits of
// ref::SumRowsOfOpA over g's rows (groups of 16 rows), within the rounding of the composition's
// row-by-row sum.
TEST(Linear, FusedEqualsMatmulPlusBias) {
  struct Case {
    Shape x;
    int64_t out;
  };
  for (const Case& c : std::vector<Case>{{{64, 256}, 768}, {{2, 33, 70}, 45}, {{3, 5}, 7}}) {
    const int64_t in = c.x[c.x.size() - 1];
    SCOPED_TRACE(c.x.str() + " -> " + std::to_string(c.out));
    auto leaf = [](Tensor t) {
      t.set_requires_grad(true);
      return t;
    };
    const Tensor x0 = RandomUniform(c.x, 380).To(DType::kF32);
    const Tensor w0 = RandomUniform({c.out, in}, 381).To(DType::kF32);
    const Tensor b0 = RandomUniform({c.out}, 382).To(DType::kF32);
    Shape ys = c.x;
    ys[ys.size() - 1] = c.out;
    const Tensor g = RandomUniform(ys, 383).To(DType::kF32);
    Tensor x1 = leaf(x0.Clone()), w1 = leaf(w0.Clone()), b1 = leaf(b0.Clone());
    Tensor x2 = leaf(x0.Clone()), w2 = leaf(w0.Clone()), b2 = leaf(b0.Clone());
    const Tensor fused = Linear(x1, w1, b1);
    const Tensor composed = Add(Matmul(x2, w2.T()), b2);
    auto values = [](const Tensor& t) { return Values(t.Detach().To(DType::kF64)); };
    const std::vector<double> yf = values(fused), yc = values(composed);
    ASSERT_EQ(yf.size(), yc.size());
    for (size_t i = 0; i < yf.size(); ++i)
      ASSERT_NEAR(yf[i], yc[i], 1e-6 * (in + 2) * std::max(1.0, std::abs(yc[i]))) << "at " << i;
    fused.Backward(g);
    composed.Backward(g);
    EXPECT_EQ(values(x1.grad()), values(x2.grad()));
    EXPECT_EQ(values(w1.grad()), values(w2.grad()));
    const int64_t rows = g.numel() / c.out;
    std::vector<float> sums(static_cast<size_t>(c.out));
    cpu::ref::SumRowsOfOpA(true, c.out, rows, g.Contiguous().data<float>(), c.out, sums.data());
    const std::vector<double> bf = values(b1.grad()), bc = values(b2.grad()), gv = values(g);
    ASSERT_EQ(bf.size(), sums.size());
    for (size_t i = 0; i < bf.size(); ++i) {
      EXPECT_EQ(bf[i], static_cast<double>(sums[i])) << "bias at " << i;
      double magnitude = 0.0;  // both orders are within rows x eps x this of the exact sum
      for (int64_t r = 0; r < rows; ++r) magnitude += std::abs(gv[r * c.out + i]);
      EXPECT_NEAR(bf[i], bc[i], 1e-6 * (rows + 2) * std::max(1.0, magnitude)) << "bias at " << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax and LogSoftmax

TEST(GradCheck, Softmax) {
  for (int dim : {0, 1, 2, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    EXPECT_TRUE(GradCheck([dim](const Xs& x) { return Softmax(x[0], dim); },
                          {RandomUniform({3, 5, 7}, 400, -3, 3)}));
    EXPECT_TRUE(GradCheck([dim](const Xs& x) { return Softmax(x[0].Transpose(0, 2), dim); },
                          {RandomUniform({7, 5, 3}, 401, -3, 3)}));
  }
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return Softmax(x[0], 0); }, {RandomUniform({7}, 402, -3, 3)}));
}

TEST(GradCheck, LogSoftmax) {
  for (int dim : {0, 1, 2, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    EXPECT_TRUE(GradCheck([dim](const Xs& x) { return LogSoftmax(x[0], dim); },
                          {RandomUniform({3, 5, 7}, 410, -3, 3)}));
    EXPECT_TRUE(GradCheck([dim](const Xs& x) { return LogSoftmax(x[0].Transpose(0, 2), dim); },
                          {RandomUniform({7, 5, 3}, 411, -3, 3)}));
  }
}

// Masks: full-shape random, broadcast [5, 7] and [1, 7] (key padding), and one with a row that
// is masked entirely.
std::vector<std::pair<std::string, Tensor>> SoftmaxMasks() {
  std::vector<bool> rows(3 * 5 * 7);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = (i % 3 == 0);
  for (int j = 0; j < 7; ++j) rows[7 * 6 + j] = true;  // [1, 1, :] along dim -1 fully masked
  return {{"random [3, 5, 7]", RandomMask({3, 5, 7}, 420, 0.3)},
          {"broadcast [5, 7]", RandomMask({5, 7}, 421, 0.3)},
          {"broadcast [1, 7]", Mask({true, false, false, true, false, true, false}, {1, 7})},
          {"row [1, 1, :] fully masked", Mask(rows, {3, 5, 7})}};
}

TEST(GradCheck, SoftmaxWithMask) {
  for (const auto& [name, mask] : SoftmaxMasks()) {
    for (int dim : {0, 1, -1}) {
      SCOPED_TRACE(name + ", dim " + std::to_string(dim));
      // `mask` by an init-capture: clang refuses to capture a structured binding under OpenMP.
      EXPECT_TRUE(
          GradCheck([&, dim = dim, &mask = mask](const Xs& x) { return Softmax(x[0], dim, mask); },
                    {RandomUniform({3, 5, 7}, 430, -3, 3)}));
    }
  }
}

TEST(GradCheck, LogSoftmaxWithMask) {
  // Masked outputs are -inf. Whether a cotangent on a -inf output should reach the unmasked
  // inputs is convention (torch's -inf fill lets it through, the true derivative of a constant
  // output is zero), so the cotangent is zeroed there with MaskedFill and only the unmasked
  // outputs are checked; the fully-masked row is checked exactly below.
  for (const auto& [name, mask] : SoftmaxMasks()) {
    for (int dim : {0, 1, -1}) {
      SCOPED_TRACE(name + ", dim " + std::to_string(dim));
      EXPECT_TRUE(GradCheck(
          [&, dim = dim, &mask = mask](const Xs& x) {
            return MaskedFill(LogSoftmax(x[0], dim, mask), mask, 0.0);
          },
          {RandomUniform({3, 5, 7}, 440, -3, 3)}));
    }
  }
}

// A row with every position masked: softmax gives zeros and log-softmax -inf, and the gradient
// of that row is exactly zero (not NaN) whatever the cotangent.
TEST(GradCheck, FullyMaskedRowHasZeroGradient) {
  Tensor mask = Mask({false, true, false, false, true, true, true, true, false, false, true, false},
                     {3, 4});  // row 1 fully masked
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "LogSoftmax" : "Softmax");
    Tensor x = RandomUniform({3, 4}, 450, -2, 2);
    x.set_requires_grad(true);
    Tensor y = log ? LogSoftmax(x, -1, mask) : Softmax(x, -1, mask);
    std::vector<double> out = Values(y);
    ASSERT_EQ(out.size(), 12u);
    for (int j = 0; j < 4; ++j) {
      if (log) {
        EXPECT_TRUE(std::isinf(out[4 + j]) && out[4 + j] < 0)
            << "element " << j << " is " << out[4 + j];
      } else {
        EXPECT_EQ(out[4 + j], 0.0) << "element " << j;
      }
    }
    // A cotangent that is nonzero everywhere, the masked positions included.
    y.Backward(RandomUniform({3, 4}, 451, 0.5, 1.5));
    std::vector<double> g = Values(x.grad());
    ASSERT_EQ(g.size(), 12u);
    for (int j = 0; j < 4; ++j)
      EXPECT_EQ(g[4 + j], 0.0) << "gradient of fully masked row, column " << j;
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_TRUE(std::isfinite(g[i])) << "gradient element " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

TEST(GradCheck, LayerNorm) {
  Tensor a = RandomUniform({3, 5, 7}, 500, -2, 2);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 1); }, {a}))
      << "no weight, no bias";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 1, x[1], x[2]); },
                        {a, RandomUniform({7}, 501, 0.5, 1.5), RandomUniform({7}, 502)}))
      << "weight and bias [7]";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 1, x[1]); },
                        {a, RandomUniform({7}, 503, 0.5, 1.5)}))
      << "weight only";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 1, Tensor(), x[1]); },
                        {a, RandomUniform({7}, 504)}))
      << "bias only";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 2, x[1], x[2]); },
                        {a, RandomUniform({5, 7}, 505, 0.5, 1.5), RandomUniform({5, 7}, 506)}))
      << "2 normalized dims, weight and bias [5, 7]";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 2); }, {a}))
      << "2 normalized dims";
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return LayerNorm(x[0].Transpose(0, 2), 1, x[1], x[2], 1e-3); },
                {RandomUniform({7, 5, 3}, 507, -2, 2), RandomUniform({7}, 508, 0.5, 1.5),
                 RandomUniform({7}, 509)}))
      << "transposed input, eps 1e-3";
}

// ---------------------------------------------------------------------------------------------
// Dropout

TEST(GradCheck, Dropout) {
  const double p = 0.3;
  // A fresh generator with the same seed on every call: the same mask for every perturbation.
  auto dropout = [p](const Xs& x) {
    Generator gen(1234);
    return Dropout(x[0], p, /*training=*/true, gen);
  };
  Tensor a = RandomSigned({3, 5, 7}, 600, 0.5, 2.0);
  EXPECT_TRUE(GradCheck(dropout, {a}));

  // Each output is dropped (0) or kept and scaled by 1 / (1 - p); with 105 elements both occur.
  std::vector<double> in = Values(a), out = Values(dropout({a}));
  ASSERT_EQ(out.size(), in.size());
  int kept = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (out[i] != 0.0) {
      ++kept;
      EXPECT_NEAR(out[i], in[i] / (1 - p), 1e-12) << "element " << i;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, static_cast<int>(in.size()));

  // Identity when not training or p == 0.
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        Generator gen(1);
        return Dropout(x[0], 0.5, false, gen);
      },
      {a}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        Generator gen(1);
        return Dropout(x[0], 0.0, true, gen);
      },
      {a}));
  EXPECT_TRUE(GradCheck(
      [p](const Xs& x) {
        Generator gen(99);
        return Dropout(x[0].Transpose(0, 2), p, true, gen);
      },
      {RandomSigned({7, 5, 3}, 601, 0.5, 2.0)}));
}

// ---------------------------------------------------------------------------------------------
// Indexing

TEST(GradCheck, Embedding) {
  // Repeated indices: their gradients must be scatter-added, not overwritten.
  Tensor idx = Indices({1, 4, 1, 6, 0, 4}, {2, 3});
  EXPECT_TRUE(
      GradCheck([&](const Xs& x) { return Embedding(x[0], idx); }, {RandomUniform({7, 5}, 700)}));
  Tensor idx1 = Indices({3, 3, 3}, {3});
  EXPECT_TRUE(
      GradCheck([&](const Xs& x) { return Embedding(x[0], idx1); }, {RandomUniform({7, 5}, 701)}));
}

// padding_idx rows get no gradient by definition (torch.nn.functional.embedding), which finite
// differences cannot express, so the gradient is checked against the scatter-add by hand.
TEST(GradCheck, EmbeddingPaddingIdxGetsNoGradient) {
  const int64_t v = 7, d = 5, pad = 4;
  std::vector<int64_t> ids = {1, 4, 1, 6, 0, 4};
  Tensor w = RandomUniform({v, d}, 702);
  w.set_requires_grad(true);
  Tensor g = RandomUniform({2, 3, d}, 703);
  Embedding(w, Indices(ids, {2, 3}), pad).Backward(g);
  std::vector<double> expected(v * d, 0.0), gv = Values(g);
  for (size_t p = 0; p < ids.size(); ++p) {
    if (ids[p] == pad) continue;
    for (int64_t j = 0; j < d; ++j) expected[ids[p] * d + j] += gv[p * d + j];
  }
  std::vector<double> got = Values(w.grad());
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], expected[i], 1e-14)
        << "weight gradient row " << i / d << " column " << i % d;
  }
}

TEST(GradCheck, IndexSelect) {
  Tensor idx = Indices({4, 0, 4, 2}, {4});
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return IndexSelect(x[0], 0, idx); },
                        {RandomUniform({5, 7}, 710)}));
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return IndexSelect(x[0], 1, idx); },
                        {RandomUniform({3, 5}, 711)}));
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return IndexSelect(x[0], -1, idx); },
                        {RandomUniform({3, 5, 7}, 712)}));
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return IndexSelect(x[0].Transpose(0, 1), 1, idx); },
                        {RandomUniform({5, 3}, 713)}));
}

TEST(GradCheck, Gather) {
  // index [3, 4] into [3, 5] along dim 1, with repeats within a row.
  Tensor idx1 = Indices({0, 4, 4, 2, 1, 1, 3, 0, 2, 2, 2, 2}, {3, 4});
  EXPECT_TRUE(
      GradCheck([&](const Xs& x) { return Gather(x[0], 1, idx1); }, {RandomUniform({3, 5}, 720)}));
  // Along dim 0; the index may be smaller than the input in the other dims.
  Tensor idx0 = Indices({2, 0, 1, 1, 0, 0}, {2, 3});
  EXPECT_TRUE(
      GradCheck([&](const Xs& x) { return Gather(x[0], 0, idx0); }, {RandomUniform({3, 5}, 721)}));
  // 3-D along the last dim.
  Tensor idx3 = Indices(
      {6, 0, 3, 3, 1, 2, 5, 4, 0, 6, 6, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 0, 1, 1, 1, 1, 6, 5},
      {3, 5, 2});
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Gather(x[0], -1, idx3); },
                        {RandomUniform({3, 5, 7}, 722)}));
}

TEST(GradCheck, TopKValues) {
  for (bool largest : {true, false}) {
    SCOPED_TRACE(largest ? "largest" : "smallest");
    EXPECT_TRUE(GradCheck([largest](const Xs& x) { return TopK(x[0], 3, -1, largest).first; },
                          {RandomDistinct({3, 7}, 730)}));
    EXPECT_TRUE(GradCheck([largest](const Xs& x) { return TopK(x[0], 2, 0, largest).first; },
                          {RandomDistinct({3, 7}, 731)}));
    EXPECT_TRUE(GradCheck([largest](const Xs& x) { return TopK(x[0], 5, 1, largest).first; },
                          {RandomDistinct({3, 5, 7}, 732)}));
    EXPECT_TRUE(GradCheck([largest](const Xs& x) { return TopK(x[0], 7, -1, largest).first; },
                          {RandomDistinct({7}, 733)}));
  }
}

// ---------------------------------------------------------------------------------------------
// Joining and splitting

TEST(GradCheck, Concat) {
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Concat({x[0], x[1], x[2]}, 0);
      },
      {RandomUniform({3, 5}, 800), RandomUniform({2, 5}, 801), RandomUniform({4, 5}, 802)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Concat({x[0], x[1]}, 1);
      },
      {RandomUniform({3, 2}, 803), RandomUniform({3, 5}, 804)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Concat({x[0], x[1].Transpose(0, 2)}, -1);
      },
      {RandomUniform({3, 5, 7}, 805), RandomUniform({2, 5, 3}, 806)}));
  // The same tensor twice.
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Concat({x[0], x[0]}, 1);
      },
      {RandomUniform({3, 5}, 807)}));
}

TEST(GradCheck, Stack) {
  for (int dim : {0, 1, 2, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    EXPECT_TRUE(GradCheck(
        [dim](const Xs& x) {
          return Stack({x[0], x[1], x[2]}, dim);
        },
        {RandomUniform({3, 5}, 810), RandomUniform({3, 5}, 811), RandomUniform({3, 5}, 812)}));
  }
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Stack({x[0].T(), x[1]}, 1);
      },
      {RandomUniform({5, 3}, 813), RandomUniform({3, 5}, 814)}));
}

TEST(GradCheck, Split) {
  // 7 rows in pieces of 3: sizes 3, 3, 1; every piece gets its own cotangent.
  EXPECT_TRUE(
      GradCheckMulti([](const Xs& x) { return Split(x[0], 3, 0); }, {RandomUniform({7, 5}, 820)}));
  EXPECT_TRUE(GradCheckMulti([](const Xs& x) { return Split(x[0], 2, -1); },
                             {RandomUniform({3, 5, 7}, 821)}));
  // Only the middle piece used: the others contribute no gradient and must not break backward.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Exp(Split(x[0], 3, 0)[1]); },
                        {RandomUniform({7, 5}, 822)}));
}

TEST(GradCheck, Chunk) {
  EXPECT_TRUE(
      GradCheckMulti([](const Xs& x) { return Chunk(x[0], 3, 0); }, {RandomUniform({7, 5}, 830)}));
  EXPECT_TRUE(
      GradCheckMulti([](const Xs& x) { return Chunk(x[0], 2, 1); }, {RandomUniform({7, 5}, 831)}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Chunk(x[0], 3, -1)[2]; },
                        {RandomUniform({3, 5, 7}, 832)}));
}

// ---------------------------------------------------------------------------------------------
// CrossEntropy

TEST(GradCheck, CrossEntropy) {
  const std::vector<std::pair<const char*, Reduction>> reductions = {
      {"none", Reduction::kNone}, {"sum", Reduction::kSum}, {"mean", Reduction::kMean}};
  Tensor logits = RandomUniform({5, 7}, 900, -3, 3);
  // Target -100 (the default ignore_index) in row 2.
  Tensor target = Indices({2, 6, -100, 0, 2}, {5});
  // ignore_index 2 matches rows 0 and 4.
  Tensor target2 = Indices({2, 6, 1, 0, 2}, {5});
  for (const auto& [name, reduction] : reductions) {
    for (double smoothing : {0.0, 0.1}) {
      SCOPED_TRACE(std::string("reduction ") + name + ", label_smoothing " +
                   std::to_string(smoothing));
      EXPECT_TRUE(GradCheck([&, r = reduction, s = smoothing](
                                const Xs& x) { return CrossEntropy(x[0], target, -100, s, r); },
                            {logits}))
          << "ignore_index -100";
      EXPECT_TRUE(GradCheck([&, r = reduction, s = smoothing](
                                const Xs& x) { return CrossEntropy(x[0], target2, 2, s, r); },
                            {logits}))
          << "ignore_index 2";
      EXPECT_TRUE(GradCheck([&, r = reduction, s = smoothing](
                                const Xs& x) { return CrossEntropy(x[0].T(), target, -100, s, r); },
                            {RandomUniform({7, 5}, 901, -3, 3)}))
          << "transposed logits";
      // Unbatched: logits [C] with a 0-d target.
      EXPECT_TRUE(GradCheck(
          [&, r = reduction, s = smoothing](const Xs& x) {
            return CrossEntropy(x[0], Indices({3}, {}), -100, s, r);
          },
          {RandomUniform({7}, 902, -3, 3)}))
          << "logits [7], target 0-d";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Views and copies

TEST(GradCheck, Reshape) {
  Tensor a = RandomUniform({3, 5, 7}, 1000);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Reshape({7, 15}); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Reshape({5, -1}); }, {a}));
  // Non-viewable strides: Reshape copies, and the gradient must still land in the right place.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Exp(x[0].Transpose(0, 2).Reshape({-1})); }, {a}));
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return x[0].Reshape({}); }, {RandomUniform({1, 1}, 1001)}));
}

TEST(GradCheck, View) {
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].View({15, 7});
      },
      {RandomUniform({3, 5, 7}, 1010)}));
  // Views of non-contiguous tensors where the strides allow it: a row slice flattened, and a
  // transposed dim split in two.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Narrow(0, 1, 2).View({12}); },
                        {RandomUniform({4, 6}, 1011)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].Transpose(1, 2).View({3, 5, 2, 2});
      },
      {RandomUniform({3, 4, 5}, 1012)}));
}

TEST(GradCheck, Flatten) {
  Tensor a = RandomUniform({3, 5, 7}, 1020);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Flatten(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Flatten(1, 2); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Flatten(0, 1); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Permute({1, 2, 0}).Flatten(1); }, {a}));
}

TEST(GradCheck, TransposeAndPermute) {
  Tensor a = RandomUniform({3, 5, 7}, 1030);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Transpose(0, 2); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Transpose(-1, 1); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].T(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Permute({2, 0, 1}); }, {a}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Exp(x[0].Permute({1, 2, 0}).Permute({2, 0, 1}));
      },
      {a}));
}

TEST(GradCheck, NarrowAndSelect) {
  Tensor a = RandomUniform({3, 5, 7}, 1040);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Narrow(1, 1, 3); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Narrow(-1, 2, 5); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Select(0, 2); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Select(1, 0); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Select(-1, 6); }, {a}));
  // Overlapping narrows of one tensor: gradients add where they overlap.
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return Mul(x[0].Narrow(1, 0, 3), x[0].Narrow(1, 2, 3)); }, {a}));
}

TEST(GradCheck, Expand) {
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].Expand({2, 3, 4, 5});
      },
      {RandomUniform({3, 1, 5}, 1050)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].Expand({-1, 4});
      },
      {RandomUniform({3, 1}, 1051)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].Expand({3, 5});
      },
      {RandomUniform({5}, 1052)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Mul(x[0].Expand({3, 5}), x[1]);
      },
      {RandomUniform({3, 1}, 1053), RandomUniform({3, 5}, 1054)}));
}

TEST(GradCheck, SqueezeAndUnsqueeze) {
  Tensor a = RandomUniform({3, 1, 5, 1}, 1060);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Squeeze(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Squeeze(1); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Squeeze(-1); }, {a}));
  Tensor b = RandomUniform({3, 5, 7}, 1061);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Unsqueeze(0); }, {b}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Unsqueeze(2); }, {b}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Unsqueeze(-1); }, {b}));
}

TEST(GradCheck, ContiguousAndClone) {
  Tensor a = RandomUniform({3, 5, 7}, 1070);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Contiguous(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Transpose(0, 1).Contiguous(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Clone(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].Narrow(2, 1, 4).Clone(); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return x[0].To(DType::kF64); }, {a}));
}

// ---------------------------------------------------------------------------------------------
// Layout edge cases: stride-0 (expanded) operands, strided vectors, size-1 and size-0 dims.

TEST(GradCheck, ExpandedOperands) {
  // Reshape of a stride-0 view must copy; its gradient sums over the broadcast.
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].Expand({3, 4}).Reshape({12});
      },
      {RandomUniform({3, 1}, 1400)}));
  // A batch dim of stride 0 handed to the batched matmul.
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Matmul(x[0].Expand({4, 3, 5}), x[1]);
      },
      {RandomUniform({1, 3, 5}, 1401), RandomUniform({4, 5, 7}, 1402)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Matmul(x[0], x[1].Expand({4, 5, 7}));
      },
      {RandomUniform({4, 3, 5}, 1403), RandomUniform({5, 7}, 1404)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Softmax(x[0].Expand({3, 5, 7}), 1);
      },
      {RandomUniform({5, 1}, 1405)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Sum(x[0].Expand({3, 5, 7}), {0, 2});
      },
      {RandomUniform({5, 1}, 1406)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return LayerNorm(Add(x[0].Expand({3, 5, 7}), x[1]), 1);
      },
      {RandomUniform({5, 1}, 1407), RandomUniform({7}, 1408)}));
}

TEST(GradCheck, StridedVectors) {
  // Columns of a matrix are vectors with stride 3.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0].Select(1, 0), x[1]); },
                        {RandomUniform({5, 3}, 1410), RandomUniform({5, 7}, 1411)}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[1], x[0].Select(1, 2)); },
                        {RandomUniform({5, 3}, 1412), RandomUniform({7, 5}, 1413)}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0].Select(1, 1), x[0].Select(1, 2)); },
                        {RandomUniform({5, 3}, 1414)}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Softmax(x[0].Select(1, 1), 0); },
                        {RandomUniform({5, 3}, 1415)}));
}

TEST(GradCheck, SizeOneDims) {
  Tensor a = RandomDistinct({3, 1, 5}, 1420);
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Softmax(x[0], 1); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LogSoftmax(x[0], 1); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Sum(x[0], {1}); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Max(x[0], {1}, true); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Mean(x[0], {0, 1}); }, {a}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[1]); },
                        {RandomUniform({1, 5}, 1421), RandomUniform({5, 1}, 1422)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return CrossEntropy(x[0], Indices({0, 0}, {2}));
      },
      {RandomUniform({2, 1}, 1423)}));
}

TEST(GradCheck, ZeroSizedTensors) {
  // Nothing to differentiate, but forward and backward must run and give empty gradients.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Add(x[0], x[1]); },
                        {RandomUniform({0, 3}, 1430), RandomUniform({3}, 1431)}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Sum(x[0], {0}); }, {RandomUniform({0, 3}, 1432)}));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[1]); },
                        {RandomUniform({0, 5}, 1433), RandomUniform({5, 3}, 1434)}));
  // Inner dim 0: the product is all zeros and the gradients are empty.
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[1]); },
                        {RandomUniform({3, 0}, 1435), RandomUniform({0, 4}, 1436)}));
  EXPECT_TRUE(
      GradCheck([](const Xs& x) { return Softmax(x[0], -1); }, {RandomUniform({0, 5}, 1437)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Concat({x[0], x[1]}, 0);
      },
      {RandomUniform({0, 5}, 1438), RandomUniform({2, 5}, 1439)}));
}

// ---------------------------------------------------------------------------------------------
// Large inputs: about 44k elements, past the 1 << 15 element point where kernels split across
// OpenMP threads and past every SIMD/blocking remainder, checked at a sample of elements.

gradcheck::Options Sampled() {
  gradcheck::Options o;
  o.max_checked_per_input = 16;
  return o;
}

const Shape kBig = {37, 41, 29};   // 43,993 elements, all dims odd
const Shape kBigT = {29, 41, 37};  // its transpose(0, 2) gives kBig

// Uniform random class indices in [0, n), with every `ignore_every`-th one set to -100.
Tensor RandomIndices(const Shape& shape, int64_t n, uint64_t seed, int ignore_every = 0) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> v(shape.numel());
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
    if (ignore_every > 0 && i % ignore_every == 0) v[i] = -100;
  }
  return Tensor::FromVector(v, shape);
}

TEST(GradCheckLarge, ElementwiseBinary) {
  const std::vector<std::pair<const char*, BinaryOp>> ops = {
      {"Add", [](const Tensor& a, const Tensor& b) { return Add(a, b); }},
      {"Sub", [](const Tensor& a, const Tensor& b) { return Sub(a, b); }},
      {"Mul", [](const Tensor& a, const Tensor& b) { return Mul(a, b); }},
      {"Div", [](const Tensor& a, const Tensor& b) { return Div(a, b); }}};
  for (const auto& [name, op] : ops) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(GradCheck([&, op = op](const Xs& x) { return op(x[0], x[1]); },
                          {RandomSigned(kBig, 1500, 0.5, 2), RandomSigned(kBig, 1501, 0.5, 2)},
                          Sampled()))
        << "same shape";
    EXPECT_TRUE(GradCheck([&, op = op](const Xs& x) { return op(x[0], x[1]); },
                          {RandomSigned(kBig, 1502, 0.5, 2), RandomSigned({41, 1}, 1503, 0.5, 2)},
                          Sampled()))
        << "[37, 41, 29] with [41, 1]";
    EXPECT_TRUE(GradCheck([&, op = op](const Xs& x) { return op(x[1], x[0].Transpose(0, 2)); },
                          {RandomSigned(kBigT, 1504, 0.5, 2), RandomSigned({29}, 1505, 0.5, 2)},
                          Sampled()))
        << "[29] with [29, 41, 37].Transpose(0, 2)";
  }
}

TEST(GradCheckLarge, ElementwiseUnary) {
  const std::vector<std::tuple<const char*, UnaryOp, DataGen>> ops = {
      {"Neg", [](const Tensor& a) { return Neg(a); }, kAnyValue},
      {"Abs", [](const Tensor& a) { return Abs(a); }, kNonZero},
      {"Exp", [](const Tensor& a) { return Exp(a); }, kAnyValue},
      {"Log", [](const Tensor& a) { return Log(a); }, kPositive},
      {"Sqrt", [](const Tensor& a) { return Sqrt(a); }, kPositive},
      {"Rsqrt", [](const Tensor& a) { return Rsqrt(a); }, kPositive},
      {"Tanh", [](const Tensor& a) { return Tanh(a); }, kAnyValue},
      {"Sigmoid", [](const Tensor& a) { return Sigmoid(a); }, kAnyValue},
      {"Relu", [](const Tensor& a) { return Relu(a); }, kNonZero},
      {"Gelu", [](const Tensor& a) { return Gelu(a); }, kAnyValue},
      {"Pow 3", [](const Tensor& a) { return Pow(a, 3.0); }, kNonZero},
      {"Pow -0.5", [](const Tensor& a) { return Pow(a, -0.5); }, kPositive},
      {"AddScalar", [](const Tensor& a) { return AddScalar(a, 0.25); }, kAnyValue},
      {"MulScalar", [](const Tensor& a) { return MulScalar(a, -3.0); }, kAnyValue},
      {"Clamp", [](const Tensor& a) { return Clamp(a, -0.5, 0.7); },
       [](const Shape& s, uint64_t seed) {
         return RandomAway(s, seed, -2, 2, {-0.5, 0.7});
       }}};
  for (const auto& [name, op, gen] : ops) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(
        GradCheck([&, op = op](const Xs& x) { return op(x[0]); }, {gen(kBig, 1510)}, Sampled()))
        << "contiguous";
    EXPECT_TRUE(GradCheck([&, op = op](const Xs& x) { return op(x[0].Transpose(0, 2)); },
                          {gen(kBigT, 1511)}, Sampled()))
        << "transposed";
  }
}

TEST(GradCheckLarge, Where) {
  Tensor cond = RandomMask(kBig, 1520, 0.5);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Where(cond, x[0], x[1]); },
                        {RandomUniform(kBig, 1521), RandomUniform({41, 29}, 1522)}, Sampled()));
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return MaskedFill(x[0], cond, 2.0); },
                        {RandomUniform(kBig, 1523)}, Sampled()));
}

TEST(GradCheckLarge, Reductions) {
  const std::vector<ReduceCase> cases = {
      {{}, false}, {{0}, false}, {{1}, true}, {{2}, false}, {{0, 2}, false}};
  Tensor smooth = RandomUniform(kBig, 1530);
  Tensor distinct = RandomDistinct(kBig, 1531);
  for (const ReduceCase& c : cases) {
    SCOPED_TRACE(DimsStr(c));
    EXPECT_TRUE(
        GradCheck([&](const Xs& x) { return Sum(x[0], c.dims, c.keepdim); }, {smooth}, Sampled()))
        << "Sum";
    EXPECT_TRUE(
        GradCheck([&](const Xs& x) { return Mean(x[0], c.dims, c.keepdim); }, {smooth}, Sampled()))
        << "Mean";
    EXPECT_TRUE(GradCheck([&](const Xs& x) { return Var(x[0], c.dims, 1, c.keepdim); }, {smooth},
                          Sampled()))
        << "Var";
    EXPECT_TRUE(
        GradCheck([&](const Xs& x) { return Max(x[0], c.dims, c.keepdim); }, {distinct}, Sampled()))
        << "Max";
    EXPECT_TRUE(
        GradCheck([&](const Xs& x) { return Min(x[0], c.dims, c.keepdim); }, {distinct}, Sampled()))
        << "Min";
    EXPECT_TRUE(GradCheck([&](const Xs& x) { return Sum(x[0].Transpose(0, 2), c.dims, c.keepdim); },
                          {RandomUniform(kBigT, 1532)}, Sampled()))
        << "Sum of a transposed input";
  }
}

TEST(GradCheckLarge, Matmul) {
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[1]); },
                        {RandomUniform({131, 257}, 1540), RandomUniform({257, 139}, 1541)},
                        Sampled()));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0].T(), x[1].T()); },
                        {RandomUniform({257, 131}, 1542), RandomUniform({139, 257}, 1543)},
                        Sampled()));
  EXPECT_TRUE(GradCheck([](const Xs& x) { return Matmul(x[0], x[1]); },
                        {RandomUniform({3, 1, 67, 129}, 1544), RandomUniform({2, 129, 71}, 1545)},
                        Sampled()));
}

TEST(GradCheckLarge, SoftmaxAndLayerNorm) {
  Tensor a = RandomUniform({301, 149}, 1550, -3, 3);
  Tensor mask = RandomMask({301, 149}, 1551, 0.2);
  for (int dim : {0, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    EXPECT_TRUE(GradCheck([dim](const Xs& x) { return Softmax(x[0], dim); }, {a}, Sampled()))
        << "Softmax";
    EXPECT_TRUE(GradCheck([dim](const Xs& x) { return LogSoftmax(x[0], dim); }, {a}, Sampled()))
        << "LogSoftmax";
    EXPECT_TRUE(
        GradCheck([&, dim](const Xs& x) { return Softmax(x[0], dim, mask); }, {a}, Sampled()))
        << "masked Softmax";
    EXPECT_TRUE(GradCheck(
        [&, dim](const Xs& x) { return MaskedFill(LogSoftmax(x[0], dim, mask), mask, 0.0); }, {a},
        Sampled()))
        << "masked LogSoftmax";
  }
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 1, x[1], x[2]); },
                        {a, RandomUniform({149}, 1552, 0.5, 1.5), RandomUniform({149}, 1553)},
                        Sampled()))
      << "LayerNorm over [149]";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return LayerNorm(x[0], 2, x[1], x[2]); },
                        {RandomUniform(kBig, 1554, -2, 2), RandomUniform({41, 29}, 1555, 0.5, 1.5),
                         RandomUniform({41, 29}, 1556)},
                        Sampled()))
      << "LayerNorm over [41, 29]";
}

TEST(GradCheckLarge, CrossEntropy) {
  Tensor logits = RandomUniform({401, 97}, 1560, -3, 3);
  Tensor target = RandomIndices({401}, 97, 1561, /*ignore_every=*/7);
  for (Reduction r : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    EXPECT_TRUE(GradCheck([&](const Xs& x) { return CrossEntropy(x[0], target, -100, 0.1, r); },
                          {logits}, Sampled()))
        << "reduction " << static_cast<int>(r);
  }
}

// Over logits that only the loss holds (an intermediate let go), the backward writes the gradient
// over them (SavedTensorsFreedAfterThis): the same gradients, checked by finite differences in
// f64 and bit for bit in f32 against logits someone still holds, with one buffer fewer taken
// from the allocator, and none of it when the graph is retained (a second backward gives the
// same again).
TEST(GradCheckLarge, CrossEntropyOverLogitsLetGo) {
  Tensor target = RandomIndices({401}, 97, 1561, /*ignore_every=*/7);
  for (Reduction r : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    EXPECT_TRUE(GradCheck(
        [&](const Xs& x) { return CrossEntropy(MulScalar(x[0], 1.5), target, -100, 0.1, r); },
        {RandomUniform({401, 97}, 1562, -2, 2)}, Sampled()))
        << "reduction " << static_cast<int>(r);
  }
  const Tensor x32 = RandomUniform({401, 2048}, 1563, -3, 3).To(DType::kF32);
  const Tensor t32 = RandomIndices({401}, 2048, 1564, /*ignore_every=*/7);
  auto gradient = [&](bool hold, bool retain, uint64_t* buffers) {
    Tensor x = x32.Clone();
    x.set_requires_grad(true);
    Tensor logits = MulScalar(x, 1.5);
    Tensor loss = CrossEntropy(logits, t32, -100, 0.1);
    if (!hold) logits = Tensor();
    const AllocatorStats before = GetAllocatorStats();
    loss.Backward(Tensor(), retain);
    const AllocatorStats after = GetAllocatorStats();
    *buffers = after.system_allocs + after.cache_hits - before.system_allocs - before.cache_hits;
    if (retain) {
      const std::vector<float> first = x.grad().ToVector<float>();
      x.ZeroGrad();
      loss.Backward();
      EXPECT_EQ(x.grad().ToVector<float>(), first) << "the second backward of a retained graph";
    }
    return x.grad().ToVector<float>();
  };
  uint64_t held = 0, let_go = 0, retained = 0;
  const std::vector<float> reference = gradient(true, false, &held);
  EXPECT_EQ(gradient(false, false, &let_go), reference);
  EXPECT_EQ(gradient(false, true, &retained), reference);
  EXPECT_EQ(let_go + 1, held) << "buffers taken by backward";
  EXPECT_EQ(retained, held) << "a retained graph keeps its logits";
}

TEST(GradCheckLarge, Indexing) {
  Tensor ids = RandomIndices({40, 25}, 503, 1570);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Embedding(x[0], ids); },
                        {RandomUniform({503, 67}, 1571)}, Sampled()))
      << "Embedding";
  Tensor rows = RandomIndices({411}, 301, 1572);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return IndexSelect(x[0], 0, rows); },
                        {RandomUniform({301, 149}, 1573)}, Sampled()))
      << "IndexSelect";
  Tensor cols = RandomIndices({301, 131}, 149, 1574);
  EXPECT_TRUE(GradCheck([&](const Xs& x) { return Gather(x[0], 1, cols); },
                        {RandomUniform({301, 149}, 1575)}, Sampled()))
      << "Gather";
  EXPECT_TRUE(GradCheck([](const Xs& x) { return TopK(x[0], 5, -1).first; },
                        {RandomDistinct({301, 149}, 1576)}, Sampled()))
      << "TopK";
}

TEST(GradCheckLarge, JoinSplitAndDropout) {
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Concat({x[0], x[1].T()}, 0);
      },
      {RandomUniform({211, 149}, 1580), RandomUniform({149, 97}, 1581)}, Sampled()))
      << "Concat";
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return Stack({x[0], x[1]}, 1);
      },
      {RandomUniform({211, 149}, 1582), RandomUniform({211, 149}, 1583)}, Sampled()))
      << "Stack";
  EXPECT_TRUE(GradCheckMulti([](const Xs& x) { return Split(x[0], 17, 1); },
                             {RandomUniform(kBig, 1584)}, Sampled()))
      << "Split";
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        Generator gen(5);
        return Dropout(x[0], 0.2, true, gen);
      },
      {RandomUniform(kBig, 1585)}, Sampled()))
      << "Dropout";
  EXPECT_TRUE(GradCheck(
      [](const Xs& x) {
        return x[0].Permute({2, 0, 1}).Contiguous();
      },
      {RandomUniform(kBig, 1586)}, Sampled()))
      << "Permute + Contiguous";
}

// ---------------------------------------------------------------------------------------------
// A composite: masked scaled dot-product attention with a layer norm and a loss on top.

TEST(GradCheck, AttentionBlock) {
  Tensor causal = Mask({false, true, true, false, false, true, false, false, false}, {3, 3});
  Tensor target = Indices({1, 0, 4, 2, 3, 1}, {6});
  auto block = [&](const Xs& x) {
    // x[0]: activations [2, 3, 5]; x[1]: Wq [5, 5]; x[2]: Wv [5, 5].
    Tensor q = Matmul(x[0], x[1]);
    Tensor scores = MulScalar(Matmul(q, x[0].Transpose(-2, -1)), 1.0 / std::sqrt(5.0));
    Tensor h = Add(x[0], Matmul(Softmax(scores, -1, causal), Matmul(x[0], x[2])));
    return CrossEntropy(LayerNorm(h, 1).Reshape({6, 5}), target, -100, 0.1);
  };
  EXPECT_TRUE(
      GradCheck(block, {RandomUniform({2, 3, 5}, 1100), RandomUniform({5, 5}, 1101, -0.5, 0.5),
                        RandomUniform({5, 5}, 1102, -0.5, 0.5)}));
}

// GradCheck itself must notice a wrong gradient: detaching one factor of x*x leaves the analytic
// gradient at x while the function's derivative is 2x.
TEST(GradCheck, HarnessCatchesAWrongGradient) {
  ::testing::AssertionResult r = GradCheck([](const Xs& x) { return Mul(x[0].Detach(), x[0]); },
                                           {RandomSigned({3, 5}, 1200, 0.5, 2.0)});
  EXPECT_FALSE(r);
  EXPECT_THAT(r.message(), HasSubstr("input 0"));
  EXPECT_THAT(r.message(), HasSubstr("analytic"));
  // The same through the multi-output path, with the wrong gradient on the second output only.
  r = GradCheckMulti(
      [](const Xs& x) {
        return Xs{Exp(x[0]), Mul(x[0].Detach(), x[0])};
      },
      {RandomSigned({3, 5}, 1201, 0.5, 2.0)});
  EXPECT_FALSE(r);
}

// ---------------------------------------------------------------------------------------------
// Autograd semantics

Tensor Leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = Tensor::FromVector(v, shape);
  t.set_requires_grad(true);
  return t;
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Sum(Mul(x, x)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2, 4, 6));
  Sum(MulScalar(x, 3)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(5, 7, 9));
}

TEST(Autograd, ZeroGradDropsTheGradient) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Sum(MulScalar(x, 3)).Backward();
  x.ZeroGrad();
  EXPECT_FALSE(x.grad().defined());
  Sum(Mul(x, x)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2, 4, 6));
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = Leaf({1, 2, 3}, {3});
  ASSERT_TRUE(GradMode::enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(GradMode::enabled());
    Tensor y = Sum(Exp(Mul(x, x)));
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    Tensor v = x.Transpose(0, 0).Reshape({1, 3});
    EXPECT_FALSE(v.requires_grad());
    {
      NoGradGuard nested;
      EXPECT_FALSE(GradMode::enabled());
    }
    EXPECT_FALSE(GradMode::enabled());  // the nested guard restores "off", not "on"
  }
  EXPECT_TRUE(GradMode::enabled());
  Tensor z = Exp(x);
  EXPECT_TRUE(z.requires_grad());
  EXPECT_NE(z.grad_fn(), nullptr);
}

TEST(Autograd, LeavesAndRequiresGradPropagation) {
  Tensor x = Leaf({1, 2}, {2});
  Tensor c = Tensor::FromVector(std::vector<double>{3, 4}, {2});
  EXPECT_TRUE(x.is_leaf());
  EXPECT_TRUE(c.is_leaf());
  EXPECT_FALSE(c.requires_grad());
  EXPECT_FALSE(Mul(c, c).requires_grad());  // no input requires grad: nothing recorded
  Tensor y = Mul(x, c);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  Sum(y).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(3, 4));
  EXPECT_FALSE(c.grad().defined());  // constants get no gradient
  EXPECT_FALSE(x.Detach().requires_grad());
}

TEST(Autograd, DetachStopsTheGradient) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Sum(Mul(x.Detach(), x)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(1, 2, 3));
}

TEST(Autograd, BackwardTwiceWithoutRetainGraphThrows) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Tensor y = Sum(Mul(Exp(x), x));  // saves tensors for backward
  y.Backward();
  EXPECT_THAT(ThrownMessage([&] { y.Backward(); }), HasSubstr("freed"));
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Tensor y = Sum(Mul(x, x));
  y.Backward(Tensor(), /*retain_graph=*/true);
  y.Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(4, 8, 12));
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = Leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = MulScalar(x, 2);
  EXPECT_THROW(y.Backward(), Error);
}

TEST(Autograd, TensorUsedTwiceGetsTheSummedGradient) {
  Tensor x = Leaf({1, -2, 3}, {3});
  Sum(Mul(x, x)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2, -4, 6));
  x.ZeroGrad();
  Sum(Add(x, x)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2, 2, 2));
  EXPECT_TRUE(
      GradCheck([](const Xs& v) { return Mul(v[0], v[0]); }, {RandomUniform({3, 5}, 1300)}));
}

TEST(Autograd, DiamondGraph) {
  // y = exp(x) feeds two branches that meet again: out = sum(2y + tanh(y)).
  std::vector<double> xv = {-1.0, 0.25, 0.5};
  Tensor x = Leaf(xv, {3});
  Tensor y = Exp(x);
  Sum(Add(MulScalar(y, 2), Tanh(y))).Backward();
  std::vector<double> g = Values(x.grad());
  ASSERT_EQ(g.size(), xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const double e = std::exp(xv[i]), t = std::tanh(e);
    EXPECT_NEAR(g[i], e * (2 + 1 - t * t), 1e-12) << "element " << i;
  }
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) {
        Tensor s = Sigmoid(v[0]);
        return Mul(Exp(s), Sub(s, Tanh(s)));
      },
      {RandomUniform({3, 5}, 1310)}));
}

TEST(Autograd, BackwardWithAnExplicitGradient) {
  Tensor x = Leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor g = Tensor::FromVector(std::vector<double>{1, -1, 2, 0.5, 0, 3}, {2, 3});
  MulScalar(x, 3).Backward(g);
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(3, -3, 6, 1.5, 0, 9));
}

// The engine must accept an incoming gradient with any strides, not only contiguous ones.
TEST(Autograd, BackwardWithANonContiguousGradient) {
  Tensor x = Leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor g = Tensor::FromVector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2})
                 .T();  // [[1, 3, 5], [2, 4, 6]]
  MulScalar(x, 3).Backward(g);
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(3, 9, 15, 6, 12, 18));
  x.ZeroGrad();
  Tensor e = Tensor::FromVector(std::vector<double>{0.5}, {1}).Expand({2, 3});  // stride 0
  Mul(x, x).Backward(e);
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(1, 2, 3, 4, 5, 6));
}

// Gradients that reach one tensor many times are added into the engine's running sum by the ops
// that make them (autograd/node.h, PendingGradient): slices of one tensor, overlapping ones
// included (Narrow), and a matrix in a product at every step (Linear, Matmul 2-D, batched and
// against a batched activation).
TEST(Autograd, ManyGradientsOfOneTensorAddIntoOneSum) {
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) {
        const Tensor& x = v[0];  // [2, 3, 6]
        return Concat({Mul(x.Narrow(2, 0, 2), x.Narrow(2, 2, 2)), Tanh(x.Narrow(2, 4, 2)),
                       Exp(x.Narrow(2, 1, 3)), x.Narrow(0, 1, 1).Expand({2, 3, 6})},
                      2);
      },
      {RandomUniform({2, 3, 6}, 1400)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) {
        Tensor h = v[0], hb = v[4];  // [3, 4], [2, 3, 4]
        for (int t = 0; t < 4; ++t) {
          h = Tanh(Add(Linear(h, v[1], v[2]), Matmul(h, v[3])));
          hb = Tanh(Add(Matmul(hb, v[3]), Matmul(hb, v[5])));  // v[5]: [2, 4, 4]
        }
        return Concat({h.Unsqueeze(0), hb}, 0);
      },
      {RandomUniform({3, 4}, 1401), RandomUniform({4, 4}, 1402, -0.6, 0.6),
       RandomUniform({4}, 1403), RandomUniform({4, 4}, 1404, -0.6, 0.6),
       RandomUniform({2, 3, 4}, 1405), RandomUniform({2, 4, 4}, 1406, -0.6, 0.6)}));
}

// A weight's thin gradients, one per time step (products of fewer rows than
// kDeferredProductRows), are kept by the engine and added to its sum as one product once the
// last gradient has arrived (autograd/node.h, DeferGradientProduct): beside a gradient that is
// not a product (Mul), a product of 300 rows (computed at once, not kept), through Grad()'s
// captures, and twice over a retained graph. A sum that leaves a kept term out, or adds one
// twice, fails here and in the tests of the stepped recurrent layer (test_rnn.cc).
TEST(Autograd, ThinWeightGradientsOfManyStepsAreSummedInOneProduct) {
  auto fn = [](const Xs& v) {
    const Tensor& w = v[1];  // [4, 4], read at every step
    Tensor h = v[0];         // [3, 4]
    for (int t = 0; t < 5; ++t) h = Tanh(Linear(h, w, v[3]));
    const Tensor wide = Linear(v[2], w, Tensor());  // [300, 4]
    return Concat({h, Mul(w, w), Tanh(wide)}, 0);
  };
  const std::vector<Tensor> inputs{RandomUniform({3, 4}, 1420),
                                   RandomUniform({4, 4}, 1421, -0.6, 0.6),
                                   RandomUniform({300, 4}, 1422), RandomUniform({4}, 1423)};
  EXPECT_TRUE(GradCheck(fn, inputs));
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    leaves.push_back(t.Clone());
    leaves.back().set_requires_grad(true);
  }
  const Tensor cotangent = RandomUniform({307, 4}, 1424);
  const Tensor loss = Sum(Mul(fn(leaves), cotangent));
  const std::vector<Tensor> captured = Grad(loss, leaves, Tensor());
  loss.Backward(Tensor(), /*retain_graph=*/true);
  std::vector<std::vector<double>> once;
  for (size_t i = 0; i < leaves.size(); ++i) {
    once.push_back(Values(leaves[i].grad()));
    const std::vector<double> c = Values(captured[i]);
    ASSERT_EQ(c.size(), once[i].size());
    for (size_t j = 0; j < c.size(); ++j)
      EXPECT_NEAR(c[j], once[i][j], 1e-12) << "Grad() vs Backward, input " << i << " " << j;
  }
  loss.Backward();  // the second pass adds the same gradients again
  for (size_t i = 0; i < leaves.size(); ++i) {
    const std::vector<double> twice = Values(leaves[i].grad());
    for (size_t j = 0; j < twice.size(); ++j)
      EXPECT_NEAR(twice[j], 2 * once[i][j], 1e-12) << "second backward, input " << i << " " << j;
  }
}

// A running sum that another node also holds is not written in place. Add hands one gradient to
// both its inputs: w's sum is then also y's pending gradient, which waits for a second one (from
// Exp, after the product), when w's product gradient arrives; added in place, it would leak into
// y's and so into v's gradient.
TEST(Autograd, ASharedRunningSumIsNotWrittenInPlace) {
  auto fn = [](const Xs& in) {
    const Tensor y = MulScalar(in[0], 2.0);  // in[0] = v, in[1] = w
    return Add(Matmul(Exp(y), in[1]), Add(in[1], y));
  };
  EXPECT_TRUE(GradCheck(fn, {RandomUniform({2, 2}, 1410), RandomUniform({2, 2}, 1411)}));
  Tensor v = Leaf({0.1, -0.2, 0.3, 0.4}, {2, 2}), w = Leaf({1, 2, 3, 4}, {2, 2});
  Sum(fn({v, w})).Backward();
  // L = sum(exp(2v) w) + sum(w) + sum(2v): dL/dv = 2 (1 + exp(2v) * (w 1)^T rows), dL/dw =
  // exp(2v)^T 1 + 1.
  const std::vector<double> vv = {0.1, -0.2, 0.3, 0.4}, wv = {1, 2, 3, 4};
  std::vector<double> dv(4), dw(4);
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 2; ++k) {
      dv[i * 2 + k] = 2 * (1 + std::exp(2 * vv[i * 2 + k]) * (wv[k * 2] + wv[k * 2 + 1]));
      dw[k * 2] = dw[k * 2 + 1] = 1 + std::exp(2 * vv[k]) + std::exp(2 * vv[2 + k]);
    }
  const std::vector<double> gv = Values(v.grad()), gw = Values(w.grad());
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(gv[i], dv[i], 1e-12) << "dv " << i;
    EXPECT_NEAR(gw[i], dw[i], 1e-12) << "dw " << i;
  }
}

TEST(Autograd, ViewsOfALeafAreNotLeaves) {
  Tensor x = Leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v = x.Transpose(0, 1);
  EXPECT_TRUE(v.requires_grad());
  EXPECT_FALSE(v.is_leaf());
  EXPECT_TRUE(v.SameStorage(x));
  Sum(Mul(v, v)).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2, 4, 6, 8, 10, 12));
  EXPECT_FALSE(v.grad().defined());  // only leaves keep .grad
}

TEST(Autograd, BackwardFromSeveralRoots) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Tensor a = MulScalar(x, 2);
  Tensor b = Mul(x, x);
  Tensor ga = Tensor::FromVector(std::vector<double>{1, 1, 1}, {3});
  Tensor gb = Tensor::FromVector(std::vector<double>{1, 0, -1}, {3});
  Backward({a, b}, {ga, gb});
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2 + 2, 2, 2 - 6));
}

TEST(Autograd, GradReturnsGradientsWithoutTouchingDotGrad) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Tensor b = Leaf({0.5}, {1});
  Tensor out = Sum(Add(Mul(x, x), b));
  std::vector<Tensor> g = Grad(out, {x, b});
  ASSERT_EQ(g.size(), 2u);
  EXPECT_THAT(Values(g[0]), ::testing::ElementsAre(2, 4, 6));
  EXPECT_THAT(Values(g[1]), ::testing::ElementsAre(3));  // b broadcast over 3 elements
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  // Grad retains the graph, so Backward still works afterwards.
  out.Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(2, 4, 6));
}

TEST(Autograd, GradWithAGradOutput) {
  Tensor x = Leaf({1, 2, 3}, {3});
  Tensor y = Mul(x, x);
  std::vector<Tensor> g = Grad(y, {x}, Tensor::FromVector(std::vector<double>{1, 10, 100}, {3}));
  ASSERT_EQ(g.size(), 1u);
  EXPECT_THAT(Values(g[0]), ::testing::ElementsAre(2, 40, 600));
  EXPECT_FALSE(x.grad().defined());
}

// A long chain: the engine and the graph's destruction must not recurse once per node.
TEST(Autograd, DeepChain) {
  Tensor x = Leaf({1.0}, {1});
  Tensor y = x;
  const int depth = 50000;
  for (int i = 0; i < depth; ++i) y = AddScalar(y, 1e-3);
  Sum(y).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(1.0));
  EXPECT_NEAR(y.item(), 1.0 + depth * 1e-3, 1e-9);
}

// Issue 11: a 200,000-op graph is released without recursing (the destructor of the last node
// used to release `next` recursively: SIGSEGV in Release, a stack overflow under ASan), and a
// node still held elsewhere survives the release of the graph above it.
TEST(Autograd, DeepGraphReleasedIteratively) {
  Tensor x = Leaf({1.0}, {1});
  const int depth = 200000;
  Tensor mid;
  {
    Tensor y = x;
    for (int i = 0; i < depth; ++i) {
      y = AddScalar(y, 1.0);
      if (i == depth / 2) mid = y;
    }
    // Two branches meeting again: the shared part is released once, when both are gone.
    Tensor z = Add(y, MulScalar(y, 2.0));
    EXPECT_EQ(z.item(), 3.0 * (1.0 + depth));
  }  // y and z die here with no backward run: the whole graph above `mid` goes
  Sum(mid).Backward();
  EXPECT_THAT(Values(x.grad()), ::testing::ElementsAre(1.0));
  EXPECT_EQ(mid.item(), 2.0 + depth / 2);
}

}  // namespace
}  // namespace attend
