// CausalConv2d (the masked filter of pervasive attention): f64 finite differences, the PyTorch
// oracle written as the paper's masked full filter (tests/reference/causal_conv_reference.py),
// the property that an output row never reads a row below it, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/ops/conv.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend {
namespace {

using gradcheck::GradCheck;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;
using Xs = std::vector<Tensor>;

struct Case {
  Shape x, w;
  bool bias;
};

// Filters of every height the model uses (kernel 1, 3, 5 -> KH 1, 2, 3) and a few odd shapes.
const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {{2, 3, 5, 4}, {4, 3, 2, 3}, true},   // a 3x3 filter's upper rows
      {{1, 2, 6, 7}, {3, 2, 3, 5}, true},   // 5x5
      {{2, 3, 4, 5}, {2, 3, 1, 1}, true},   // 1x1
      {{2, 2, 2, 3}, {2, 2, 3, 5}, false},  // fewer rows than KH, narrower than KW
      {{1, 2, 7, 3}, {2, 2, 4, 1}, true},   // rows only
  };
  return cases;
}

TEST(CausalConvGradCheck, InputWeightAndBias) {
  uint64_t seed = 300;
  for (const Case& c : Cases()) {
    SCOPED_TRACE("x " + c.x.str() + " w " + c.w.str());
    Xs in = {RandomUniform(c.x, seed++), RandomUniform(c.w, seed++)};
    if (c.bias) in.push_back(RandomUniform(Shape{c.w[0]}, seed++));
    EXPECT_TRUE(GradCheck(
        [&](const Xs& v) { return CausalConv2d(v[0], v[1], c.bias ? v[2] : Tensor()); }, in));
  }
}

TEST(CausalConvGradCheck, NonContiguousInput) {
  // The model feeds a permuted (channels-last) tensor.
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) {
        return CausalConv2d(v[0].Permute({0, 3, 1, 2}), v[1], v[2]);
      },
      {RandomUniform({2, 4, 5, 3}, 400), RandomUniform({2, 3, 2, 3}, 401),
       RandomUniform({2}, 402)}));
}

// Output row i changes with input row r exactly when r <= i < r + KH: never for a row above r,
// which is what lets pervasive attention predict target position i from positions <= i.
TEST(CausalConv, OutputRowsNeverReadRowsBelow) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE("x " + c.x.str() + " w " + c.w.str());
    const Tensor x = RandomUniform(c.x, 7), w = RandomUniform(c.w, 8);
    const int64_t h = c.x[2], kh = c.w[2];
    const Tensor base = CausalConv2d(x, w).Contiguous();
    for (int64_t r = 0; r < h; ++r) {
      Tensor moved = x.Clone();
      moved.Narrow(2, r, 1).Fill(5.0);
      const Tensor y = CausalConv2d(moved, w).Contiguous();
      for (int64_t i = 0; i < h; ++i) {
        const std::vector<double> a = base.Narrow(2, i, 1).Contiguous().ToVector<double>(),
                                  b = y.Narrow(2, i, 1).Contiguous().ToVector<double>();
        if (i < r || i >= r + kh) {
          EXPECT_EQ(a, b) << "output row " << i << " moved with input row " << r;
        } else {
          EXPECT_NE(a, b) << "output row " << i << " ignores input row " << r;
        }
      }
    }
  }
}

// The same as Conv2d with the filter extended by KH - 1 zero rows below and "same" padding.
TEST(CausalConv, EqualsTheZeroExtendedFilter) {
  const Tensor x = RandomUniform({2, 3, 6, 5}, 11), w = RandomUniform({4, 3, 3, 5}, 12),
               b = RandomUniform({4}, 13);
  const Tensor full = Concat({w, Tensor::Zeros({4, 3, 2, 5}, DType::kF64)}, 2);
  const std::vector<double> got = CausalConv2d(x, w, b).Contiguous().ToVector<double>(),
                            want = Conv2d(x, full, b, 1, Size2{2, 2}).ToVector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << i;
}

TEST(CausalConvErrors, ShapesAreNamed) {
  const Tensor x = Tensor::Zeros({1, 2, 3, 4}), w = Tensor::Zeros({3, 2, 2, 3});
  EXPECT_THAT(ThrownMessage([&] {
                CausalConv2d(x, Tensor::Zeros({3, 2, 2, 2}));
              }),
              AllOf(HasSubstr("CausalConv2d"), HasSubstr("odd width")));
  EXPECT_THAT(ThrownMessage([&] { CausalConv2d(x.Select(0, 0), w); }),
              AllOf(HasSubstr("CausalConv2d"), HasSubstr("[B, C_in, H, W]")));
  // Channel mismatches are Conv2d's to report.
  EXPECT_THAT(ThrownMessage([&] {
                CausalConv2d(x, Tensor::Zeros({3, 5, 2, 3}));
              }),
              HasSubstr("Conv2d"));
  EXPECT_THAT(ThrownMessage([&] { CausalConv2d(x, Tensor()); }), HasSubstr("undefined"));
}

// ---------------------------------------------------------------------------------------------
// PyTorch: the paper's masked full filter.
// ---------------------------------------------------------------------------------------------

TEST(CausalConvTorchReference, MatchesTheMaskedFullFilter) {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "causal_conv_reference.bin", "tests/reference/causal_conv_reference.py");
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  int ran = 0;
  for (const reference::RefCase& c : loaded.cases) {
    SCOPED_TRACE("case " + c.name);
    reference::OpKey key(c.op);
    ASSERT_EQ(key.name(), "causal_conv2d");
    const bool bias = key.Bool("bias");
    Xs in;
    for (const char* name : {"x0", "x1", "x2"})
      if (c.Find(name) != nullptr) in.push_back(reference::ToTensor(*c.Find(name)));
    ASSERT_EQ(in.size(), bias ? 3u : 2u);
    for (Tensor& t : in) t.set_requires_grad(true);
    const Tensor y = CausalConv2d(in[0], in[1], bias ? in[2] : Tensor());
    // Each output sums C_in * KH * KW products; the input gradient gathers up to C_out * KH * KW
    // of them, the weight's and bias's sum over every output position.
    const int64_t taps = in[1].size(2) * in[1].size(3);
    const double positions = static_cast<double>(y.numel() / y.size(1));
    reference::ExpectMatches(c, "y0", y, reference::Ref(c, "y0"),
                             static_cast<double>(in[1].size(1) * taps + 1));
    y.Backward(reference::ToTensor(reference::Ref(c, "dy0")));
    reference::ExpectMatches(c, "dx0", in[0].grad(), reference::Ref(c, "dx0"),
                             static_cast<double>(in[1].size(0) * taps));
    reference::ExpectMatches(c, "dx1", in[1].grad(), reference::Ref(c, "dx1"), positions);
    if (bias) reference::ExpectMatches(c, "dx2", in[2].grad(), reference::Ref(c, "dx2"), positions);
    ++ran;
  }
  EXPECT_EQ(ran, 6);
}

}  // namespace
}  // namespace attend
