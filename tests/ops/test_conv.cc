// Convolution and pooling: f64 finite-difference gradient checks, error messages, the modules,
// and the PyTorch oracle (tests/reference/conv_reference.py -> conv_reference.bin).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attend/attend.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "support/gradcheck.h"
#include "support/reference_file.h"

namespace attend {
namespace {

using gradcheck::GradCheck;
using gradcheck::RandomDistinct;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;
using Xs = std::vector<Tensor>;

// ---------------------------------------------------------------------------------------------
// Gradient checks (f64, central differences; see tests/support/gradcheck.h for the tolerances)
// ---------------------------------------------------------------------------------------------

struct Conv1dCase {
  Shape x, w;
  int64_t stride, padding, dilation, groups;
  bool bias;
};

TEST(ConvGradCheck, Conv1d) {
  const std::vector<Conv1dCase> cases = {
      {{2, 3, 9}, {4, 3, 3}, 1, 0, 1, 1, true},
      {{2, 3, 11}, {5, 3, 4}, 2, 1, 1, 1, true},   // stride 2, padding, even kernel
      {{1, 2, 13}, {3, 2, 3}, 1, 2, 2, 1, true},   // dilation
      {{2, 3, 16}, {2, 3, 3}, 3, 3, 2, 1, false},  // all three, no bias
      {{2, 4, 9}, {6, 2, 3}, 2, 1, 1, 2, true},    // groups
      {{2, 5, 7}, {3, 5, 1}, 1, 0, 1, 1, true},    // pointwise (no im2col)
      {{2, 3, 3}, {2, 3, 5}, 1, 1, 1, 1, true},    // kernel spans the whole padded input
  };
  uint64_t seed = 1;
  for (const Conv1dCase& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " w " + c.w.str() + " stride " + std::to_string(c.stride) +
                 " padding " + std::to_string(c.padding) + " dilation " +
                 std::to_string(c.dilation) + " groups " + std::to_string(c.groups));
    Xs in = {RandomUniform(c.x, seed++), RandomUniform(c.w, seed++)};
    if (c.bias) in.push_back(RandomUniform(Shape{c.w[0]}, seed++));
    EXPECT_TRUE(GradCheck(
        [&](const Xs& v) {
          return Conv1d(v[0], v[1], c.bias ? v[2] : Tensor(), c.stride, c.padding, c.dilation,
                        c.groups);
        },
        in));
  }
}

struct Conv2dCase {
  Shape x, w;
  Size2 stride, padding, dilation;
  int64_t groups;
  bool bias;
};

TEST(ConvGradCheck, Conv2d) {
  const std::vector<Conv2dCase> cases = {
      {{2, 3, 5, 4}, {4, 3, 3, 3}, 1, 1, 1, 1, true},
      {{2, 2, 7, 5}, {3, 2, 3, 3}, 2, 1, 1, 1, true},                      // stride 2, odd sizes
      {{1, 2, 9, 8}, {3, 2, 3, 2}, Size2{2, 3}, Size2{1, 2}, 1, 1, true},  // uneven h/w
      {{2, 2, 9, 7}, {2, 2, 3, 3}, 1, Size2{2, 1}, Size2{2, 1}, 1, true},  // dilation
      {{1, 3, 11, 9}, {2, 3, 5, 3}, 2, 3, 2, 1, false},                    // all of it, no bias
      {{2, 4, 6, 5}, {6, 2, 3, 3}, 1, 1, 1, 2, true},                      // groups
      {{2, 3, 6, 7}, {3, 1, 3, 3}, 2, 1, 1, 3, true},                      // depthwise
      {{2, 4, 5, 3}, {3, 4, 1, 1}, 1, 0, 1, 1, true},                      // pointwise
      {{2, 4, 5, 6}, {3, 4, 1, 1}, 2, 1, 1, 1, true},                      // 1x1, strided, padded
  };
  uint64_t seed = 100;
  for (const Conv2dCase& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " w " + c.w.str());
    Xs in = {RandomUniform(c.x, seed++), RandomUniform(c.w, seed++)};
    if (c.bias) in.push_back(RandomUniform(Shape{c.w[0]}, seed++));
    EXPECT_TRUE(GradCheck(
        [&](const Xs& v) {
          return Conv2d(v[0], v[1], c.bias ? v[2] : Tensor(), c.stride, c.padding, c.dilation,
                        c.groups);
        },
        in));
  }
}

TEST(ConvGradCheck, Conv2dNonContiguousAndUnbatched) {
  // Input stored [B, C, W, H] and used transposed; weight stored [KW, KH, C, O] and permuted.
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) {
        return Conv2d(v[0].Transpose(2, 3), v[1].Permute({3, 2, 1, 0}), v[2], 2, 1);
      },
      {RandomUniform({2, 3, 6, 7}, 200), RandomUniform({3, 2, 3, 4}, 201),
       RandomUniform({4}, 202)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) { return Conv2d(v[0], v[1], v[2], 1, 1); },
      {RandomUniform({3, 5, 4}, 203), RandomUniform({2, 3, 3, 3}, 204), RandomUniform({2}, 205)}));
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) { return Conv1d(v[0], v[1], v[2], 2, 1); },
      {RandomUniform({3, 8}, 206), RandomUniform({2, 3, 3}, 207), RandomUniform({2}, 208)}));
}

// Big enough that the images are split over threads (and the GEMMs are blocked); only a sample
// of elements is perturbed.
TEST(ConvGradCheck, Conv2dThreaded) {
  gradcheck::Options opt;
  opt.max_checked_per_input = 48;
  EXPECT_TRUE(GradCheck([](const Xs& v) { return Conv2d(v[0], v[1], v[2], 1, 1); },
                        {RandomUniform({4, 8, 12, 12}, 300), RandomUniform({16, 8, 3, 3}, 301),
                         RandomUniform({16}, 302)},
                        opt));
}

// Only the inputs that require grad get one; nothing is recorded under NoGradGuard.
TEST(ConvGradCheck, GradientsOnlyWhereRequired) {
  Tensor x = RandomUniform({2, 3, 6, 6}, 400).To(DType::kF32);
  Tensor w = RandomUniform({4, 3, 3, 3}, 401).To(DType::kF32).set_requires_grad(true);
  Tensor b = RandomUniform({4}, 402).To(DType::kF32);
  Sum(Conv2d(x, w, b, 1, 1)).Backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().shape(), w.shape());
  {
    NoGradGuard ng;
    EXPECT_FALSE(Conv2d(x, w, b, 1, 1).requires_grad());
    EXPECT_FALSE(MaxPool2d(Conv2d(x, w, b), 2).requires_grad());
  }
}

// An empty batch gives empty outputs and empty (or zero) gradients.
TEST(ConvGradCheck, EmptyBatch) {
  Tensor x = Tensor::Zeros({0, 3, 6, 6}).set_requires_grad(true);
  Tensor w = Tensor::Ones({4, 3, 3, 3}).set_requires_grad(true);
  Tensor b = Tensor::Ones({4}).set_requires_grad(true);
  Tensor y = Conv2d(x, w, b, 1, 1);
  EXPECT_EQ(y.shape(), (Shape{0, 4, 6, 6}));
  Tensor pooled = MaxPool2d(y, 2) + AvgPool2d(y, 2) + AdaptiveAvgPool2d(y, 3);
  EXPECT_EQ(pooled.shape(), (Shape{0, 4, 3, 3}));
  Sum(pooled).Backward();
  EXPECT_EQ(x.grad().shape(), x.shape());
  EXPECT_EQ(w.grad().ToVector<float>(), std::vector<float>(4 * 3 * 3 * 3, 0.0f));
  EXPECT_EQ(b.grad().ToVector<float>(), std::vector<float>(4, 0.0f));
  EXPECT_EQ(GlobalAvgPool(Tensor::Zeros({0, 3, 4, 4})).shape(), (Shape{0, 3}));
}

// The split over images and the single-threaded loop agree (up to the order dw is summed in).
TEST(ConvGradCheck, SameResultOnOneThread) {
  Tensor x = RandomUniform({6, 8, 10, 10}, 500).To(DType::kF32);
  Tensor w = RandomUniform({16, 8, 3, 3}, 501).To(DType::kF32);
  Tensor b = RandomUniform({16}, 502).To(DType::kF32);
  Tensor g = RandomUniform({6, 16, 10, 10}, 503).To(DType::kF32);
  auto run = [&](std::vector<std::vector<float>>* out) {
    Tensor xl = x.Clone().set_requires_grad(true), wl = w.Clone().set_requires_grad(true);
    Tensor bl = b.Clone().set_requires_grad(true);
    Tensor y = Conv2d(xl, wl, bl, 1, 1);
    y.Backward(g);
    *out = {y.ToVector<float>(), xl.grad().ToVector<float>(), wl.grad().ToVector<float>(),
            bl.grad().ToVector<float>()};
  };
  std::vector<std::vector<float>> many, one;
  const int threads = GetNumThreads();
  run(&many);
  SetNumThreads(1);
  run(&one);
  SetNumThreads(threads);
  ASSERT_EQ(many.size(), one.size());
  for (size_t t = 0; t < many.size(); ++t) {
    ASSERT_EQ(many[t].size(), one[t].size());
    for (size_t i = 0; i < many[t].size(); ++i)
      ASSERT_NEAR(many[t][i], one[t][i], 1e-4 * (1.0 + std::fabs(one[t][i])))
          << "tensor " << t << " element " << i;
  }
}

struct PoolCase {
  Shape x;
  Size2 kernel;
  std::optional<Size2> stride;
  Size2 padding;
};

const std::vector<PoolCase> kPool2dCases = {
    {{2, 3, 6, 6}, 2, std::nullopt, 0},  // the 2x2 fast path
    {{2, 2, 7, 5}, 2, std::nullopt, 0},  // fast path with a cut-off last row and column
    {{2, 2, 7, 8}, 3, Size2{2}, 1},      // overlapping windows, padding
    {{1, 2, 7, 9}, Size2{3, 2}, Size2{1, 2}, Size2{1, 0}},
    {{1, 3, 9, 6}, Size2{5, 3}, Size2{2, 1}, Size2{2, 1}},
    {{3, 5, 5}, 2, Size2{1}, 1},  // unbatched, stride 1, padding
};

TEST(PoolGradCheck, MaxPool2d) {
  uint64_t seed = 600;
  for (const PoolCase& c : kPool2dCases) {
    SCOPED_TRACE("x " + c.x.str());
    // Distinct values: every window has one maximum, unmoved by the perturbation.
    EXPECT_TRUE(
        GradCheck([&](const Xs& v) { return MaxPool2d(v[0], c.kernel, c.stride, c.padding); },
                  {RandomDistinct(c.x, seed++)}));
  }
}

TEST(PoolGradCheck, AvgPool2d) {
  uint64_t seed = 700;
  for (bool cip : {true, false}) {
    for (const PoolCase& c : kPool2dCases) {
      SCOPED_TRACE("x " + c.x.str() + (cip ? " count_include_pad" : " excluding padding"));
      EXPECT_TRUE(GradCheck(
          [&](const Xs& v) { return AvgPool2d(v[0], c.kernel, c.stride, c.padding, cip); },
          {RandomUniform(c.x, seed++)}));
    }
  }
}

TEST(PoolGradCheck, Pool1d) {
  struct Case {
    Shape x;
    int64_t kernel;
    std::optional<int64_t> stride;
    int64_t padding;
  };
  const std::vector<Case> cases = {{{2, 3, 10}, 2, std::nullopt, 0},
                                   {{2, 3, 11}, 3, 2, 1},
                                   {{1, 2, 9}, 4, 1, 2},
                                   {{3, 12}, 3, 2, 0}};
  uint64_t seed = 800;
  for (const Case& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " kernel " + std::to_string(c.kernel));
    EXPECT_TRUE(
        GradCheck([&](const Xs& v) { return MaxPool1d(v[0], c.kernel, c.stride, c.padding); },
                  {RandomDistinct(c.x, seed++)}));
    for (bool cip : {true, false}) {
      EXPECT_TRUE(GradCheck(
          [&](const Xs& v) { return AvgPool1d(v[0], c.kernel, c.stride, c.padding, cip); },
          {RandomUniform(c.x, seed++)}));
    }
  }
}

TEST(PoolGradCheck, AdaptiveAndGlobal) {
  struct Case {
    Shape x;
    Size2 out;
  };
  const std::vector<Case> cases = {{{2, 3, 5, 4}, 1},
                                   {{2, 2, 7, 5}, Size2{3, 2}},
                                   {{1, 2, 4, 3}, Size2{5, 4}},  // more outputs than inputs
                                   {{3, 6, 6}, Size2{4, 3}}};
  uint64_t seed = 900;
  for (const Case& c : cases) {
    SCOPED_TRACE("x " + c.x.str());
    EXPECT_TRUE(GradCheck([&](const Xs& v) { return AdaptiveAvgPool2d(v[0], c.out); },
                          {RandomUniform(c.x, seed++)}));
  }
  for (bool keepdim : {false, true}) {
    EXPECT_TRUE(GradCheck([&](const Xs& v) { return GlobalAvgPool(v[0], keepdim); },
                          {RandomUniform({2, 3, 5, 4}, seed++)}));
  }
  EXPECT_TRUE(GradCheck([](const Xs& v) { return GlobalAvgPool(v[0]); },
                        {RandomUniform({2, 3, 7}, seed++)}));
}

// The output shapes of GlobalAvgPool and the 1x1 adaptive pool.
TEST(PoolGradCheck, GlobalShapes) {
  Tensor x = Tensor::Zeros({2, 3, 5, 4});
  EXPECT_EQ(GlobalAvgPool(x).shape(), (Shape{2, 3}));
  EXPECT_EQ(GlobalAvgPool(x, true).shape(), (Shape{2, 3, 1, 1}));
  EXPECT_EQ(AdaptiveAvgPool2d(x, 1).shape(), (Shape{2, 3, 1, 1}));
  EXPECT_EQ(MaxPool2d(x, 2).shape(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(MaxPool1d(Tensor::Zeros({3, 9}), 3, 2).shape(), (Shape{3, 4}));
}

// A NaN in a window wins and its gradient goes to it, as torch.
TEST(PoolGradCheck, MaxPoolNaNAndTies) {
  const float nan = std::nanf("");
  Tensor x = Tensor::FromVector(std::vector<float>{1, nan, 3, 3, 2, 2, 3, 0}, Shape{1, 1, 2, 4})
                 .set_requires_grad(true);
  Tensor y = MaxPool2d(x, 2);
  std::vector<float> v = y.ToVector<float>();
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 3.0f);
  y.Backward(Tensor::FromVector(std::vector<float>{10, 20}, Shape{1, 1, 1, 2}));
  // Window 2 holds 3, 3 (row 0) and 3, 0 (row 1): the first 3 in row-major order gets it.
  EXPECT_EQ(x.grad().ToVector<float>(), (std::vector<float>{0, 10, 20, 0, 0, 0, 0, 0}));
}

// The vectorised 2x2 kernels (full, 8-lane, 4-lane and scalar parts of a 31-output row) against
// a plain loop, with ties and NaNs: forward values and where the gradient goes.
TEST(PoolGradCheck, MaxPool2x2KernelsMatchPlainLoop) {
  const int64_t h = 6, w = 63, oh = 3, ow = 31;
  std::vector<float> x(2 * h * w);
  uint64_t state = 12345;
  for (float& v : x) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const int r = static_cast<int>((state >> 33) % 7);
    v = r == 6 ? std::nanf("") : static_cast<float>(r % 3);  // ties everywhere, some NaNs
  }
  std::vector<float> g(2 * oh * ow);
  for (size_t i = 0; i < g.size(); ++i) g[i] = 1.0f + static_cast<float>(i);
  Tensor xt = Tensor::FromVector(x, Shape{2, h, w}).set_requires_grad(true);
  Tensor y = MaxPool2d(xt, 2);
  y.Backward(Tensor::FromVector(g, Shape{2, oh, ow}));
  std::vector<float> got_y = y.ToVector<float>(), got_dx = xt.grad().ToVector<float>();
  std::vector<float> want_dx(x.size(), 0.0f);
  for (int64_t p = 0; p < 2; ++p) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        float best = -INFINITY;
        int64_t at = -1;
        for (int64_t a = 0; a < 2; ++a) {
          for (int64_t b = 0; b < 2; ++b) {
            const int64_t k = (p * h + 2 * i + a) * w + 2 * j + b;
            if (at < 0 || x[k] > best || std::isnan(x[k])) {
              best = x[k];
              at = k;
            }
          }
        }
        const float out = got_y[(p * oh + i) * ow + j];
        EXPECT_TRUE(std::isnan(best) ? std::isnan(out) : out == best)
            << "plane " << p << " output (" << i << ", " << j << "): " << out << " vs " << best;
        want_dx[at] = g[(p * oh + i) * ow + j];
      }
    }
  }
  EXPECT_EQ(got_dx, want_dx);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

TEST(ConvErrors, Conv2dMessages) {
  Tensor x = Tensor::Zeros({2, 3, 8, 8}), w = Tensor::Zeros({4, 3, 3, 3}), b = Tensor::Zeros({4});
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(x, Tensor::Zeros({4, 5, 3, 3}));
              }),
              HasSubstr("Conv2d: input f32[2, 3, 8, 8] has 3 channels, but weight "
                        "f32[4, 5, 3, 3] expects 5"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(x, w, b, 0); }),
              HasSubstr("Conv2d: stride must be positive, got 0x0"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(x, w, b, Size2{1, -2});
              }),
              HasSubstr("Conv2d: stride must be positive, got 1x-2"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(x, w, b, 1, -1); }),
              HasSubstr("Conv2d: padding must be non-negative, got -1x-1"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(x, w, b, 1, 0, 0); }),
              HasSubstr("Conv2d: dilation must be positive, got 0x0"));
  Tensor small = Tensor::Zeros({2, 3, 4, 4});
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(small, Tensor::Zeros({4, 3, 5, 5}));
              }),
              HasSubstr("Conv2d: kernel 5x5 with dilation 1x1 spans 5x5, larger than the padded "
                        "input 4x4 (input f32[2, 3, 4, 4], padding 0x0)"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(small, w, b, 1, 0, 3); }),
              HasSubstr("kernel 3x3 with dilation 3x3 spans 7x7, larger than the padded "
                        "input 4x4"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(Tensor::Zeros({3, 8}), w);
              }),
              HasSubstr("Conv2d: input must be [B, C, H, W] or unbatched [C, H, W], got "
                        "f32[3, 8]"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(x, Tensor::Zeros({4, 3, 3}));
              }),
              HasSubstr("Conv2d: weight must be [C_out, C_in / groups, KH, KW], got f32[4, 3, 3]"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(x, w, Tensor::Zeros({3})); }),
              HasSubstr("Conv2d: bias f32[3] must be [4]"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(x, w.To(DType::kF64)); }),
              HasSubstr("Conv2d: dtypes differ"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(x, Tensor::Zeros({4, 1, 3, 3}), Tensor(), 1, 0, 1, 2);
              }),
              HasSubstr("Conv2d: input f32[2, 3, 8, 8] has 3 channels, not divisible by groups 2"));
  EXPECT_THAT(
      ThrownMessage([&] {
        Conv2d(Tensor::Zeros({2, 4, 8, 8}), Tensor::Zeros({3, 2, 3, 3}), Tensor(), 1, 0, 1, 2);
      }),
      HasSubstr("has 3 output channels, not divisible by groups 2"));
  EXPECT_THAT(ThrownMessage([&] { Conv2d(x, w, Tensor(), 1, 0, 1, 0); }),
              HasSubstr("Conv2d: groups must be positive, got 0"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv2d(Tensor::Zeros({2, 3, 8, 8}, DType::kI64), w);
              }),
              HasSubstr("Conv2d: expected a floating tensor"));
}

TEST(ConvErrors, Conv1dMessages) {
  Tensor x = Tensor::Zeros({2, 3, 8}), w = Tensor::Zeros({4, 3, 3});
  EXPECT_THAT(ThrownMessage([&] {
                Conv1d(x, Tensor::Zeros({4, 2, 3}));
              }),
              HasSubstr("Conv1d: input f32[2, 3, 8] has 3 channels, but weight f32[4, 2, 3] "
                        "expects 2"));
  EXPECT_THAT(ThrownMessage([&] { Conv1d(x, w, Tensor(), 0); }),
              HasSubstr("Conv1d: stride must be positive, got 0"));
  EXPECT_THAT(ThrownMessage([&] { Conv1d(x, w, Tensor(), -3); }),
              HasSubstr("Conv1d: stride must be positive, got -3"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv1d(x, Tensor::Zeros({4, 3, 11}), Tensor(), 1, 1);
              }),
              HasSubstr("Conv1d: kernel 11 with dilation 1 spans 11, larger than the padded "
                        "input 10 (input f32[2, 3, 8], padding 1)"));
  EXPECT_THAT(ThrownMessage([&] {
                Conv1d(Tensor::Zeros({2, 3, 8, 8}), w);
              }),
              HasSubstr("Conv1d: input must be [B, C, L] or unbatched [C, L]"));
}

TEST(ConvErrors, PoolMessages) {
  Tensor x = Tensor::Zeros({2, 3, 4, 4});
  EXPECT_THAT(ThrownMessage([&] { MaxPool2d(x, 2, Size2{0}); }),
              HasSubstr("MaxPool2d: stride must be positive, got 0x0"));
  EXPECT_THAT(ThrownMessage([&] {
                AvgPool2d(x, 2, Size2{2, -1});
              }),
              HasSubstr("AvgPool2d: stride must be positive, got 2x-1"));
  EXPECT_THAT(ThrownMessage([&] { MaxPool2d(x, 5); }),
              HasSubstr("MaxPool2d: kernel 5x5 is larger than the padded input 4x4 "
                        "(input f32[2, 3, 4, 4], padding 0x0)"));
  EXPECT_THAT(ThrownMessage([&] { MaxPool2d(x, 3, 1, 2); }),
              HasSubstr("MaxPool2d: padding 2x2 must be at most half the kernel 3x3"));
  EXPECT_THAT(ThrownMessage([&] { MaxPool2d(x, 0); }),
              HasSubstr("MaxPool2d: kernel size must be positive, got 0x0"));
  EXPECT_THAT(ThrownMessage([&] {
                MaxPool1d(Tensor::Zeros({2, 3, 4}), 2, 0);
              }),
              HasSubstr("MaxPool1d: stride must be positive, got 0"));
  EXPECT_THAT(ThrownMessage([&] {
                AvgPool1d(Tensor::Zeros({2, 3, 4}), 7, 1, 1);
              }),
              HasSubstr("AvgPool1d: kernel 7 is larger than the padded input 6 "
                        "(input f32[2, 3, 4], padding 1)"));
  EXPECT_THAT(ThrownMessage([&] {
                MaxPool2d(Tensor::Zeros({4, 4}), 2);
              }),
              HasSubstr("MaxPool2d: input must be [B, C, H, W] or unbatched [C, H, W], got "
                        "f32[4, 4]"));
  EXPECT_THAT(ThrownMessage([&] {
                MaxPool2d(Tensor::Zeros({1, 2, 0, 4}), 1);
              }),
              HasSubstr("MaxPool2d: input f32[1, 2, 0, 4] has an empty spatial dim"));
  EXPECT_THAT(ThrownMessage([&] {
                AdaptiveAvgPool2d(x, Size2{0, 2});
              }),
              HasSubstr("AdaptiveAvgPool2d: output size must be positive, got 0x2"));
  EXPECT_THAT(ThrownMessage([&] {
                GlobalAvgPool(Tensor::Zeros({2, 3}));
              }),
              HasSubstr("GlobalAvgPool: input must be [B, C, ...] with at least one spatial dim"));
}

// ---------------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------------

TEST(ConvModules, ParametersAndInitialisation) {
  Generator gen(3);
  nn::Conv2dModule conv(8, 16, Size2{3, 5}, gen, {.stride = 2, .padding = Size2{1, 2}});
  nn::NamedTensors params = conv.NamedParameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(conv.weight.shape(), (Shape{16, 8, 3, 5}));
  EXPECT_EQ(conv.bias.shape(), (Shape{16}));
  EXPECT_TRUE(conv.weight.requires_grad());
  // Both are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = 8 * 3 * 5 = 120: every value within
  // the bound, the extremes near it, and the variance near bound^2 / 3.
  const double bound = 1.0 / std::sqrt(120.0);
  std::vector<float> w = conv.weight.ToVector<float>();
  double lo = 0, hi = 0, sq = 0, sum = 0;
  for (float v : w) {
    lo = std::min<double>(lo, v);
    hi = std::max<double>(hi, v);
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  EXPECT_LE(hi, bound);
  EXPECT_GE(lo, -bound);
  EXPECT_GT(hi, 0.95 * bound);
  EXPECT_LT(lo, -0.95 * bound);
  const double n = static_cast<double>(w.size());
  EXPECT_NEAR(sum / n, 0.0, 0.1 * bound);
  EXPECT_NEAR(sq / n, bound * bound / 3.0, 0.1 * bound * bound / 3.0);
  for (float v : conv.bias.ToVector<float>()) {
    EXPECT_LE(std::fabs(v), bound);
  }

  nn::Conv1dModule c1(6, 4, 3, gen, {.groups = 2, .bias = false}, DType::kF64);
  EXPECT_EQ(c1.weight.shape(), (Shape{4, 3, 3}));
  EXPECT_EQ(c1.weight.dtype(), DType::kF64);
  EXPECT_FALSE(c1.bias.defined());
  EXPECT_EQ(c1.NumParameters(), 36);
  for (double v : c1.weight.ToVector<double>()) EXPECT_LE(std::fabs(v), 1.0 / 3.0);  // fan_in 9

  EXPECT_THAT(ThrownMessage([&] { nn::Conv2dModule bad(3, 4, 3, gen, {.groups = 2}); }),
              HasSubstr("Conv2dModule: groups 2 must divide both 3 input and 4 output channels"));
  EXPECT_THAT(ThrownMessage([&] { nn::Conv1dModule bad(3, 4, 0, gen); }),
              HasSubstr("Conv1dModule: kernel size must be positive, got 0"));
}

// The modules compose in Sequential into a small CNN that trains.
TEST(ConvModules, SequentialCnnTrains) {
  Generator gen(9);
  nn::Sequential net;
  net.Add(std::make_shared<nn::Conv2dModule>(1, 4, 3, gen, nn::Conv2dOptions{.padding = 1}));
  net.AddFunction([](const Tensor& t) { return Relu(t); });
  net.Add(std::make_shared<nn::MaxPool2dModule>(2));
  net.Add(std::make_shared<nn::Conv2dModule>(4, 8, 3, gen, nn::Conv2dOptions{.padding = 1}));
  net.AddFunction([](const Tensor& t) { return Relu(t); });
  net.Add(std::make_shared<nn::AvgPool2dModule>(2));
  net.Add(std::make_shared<nn::GlobalAvgPoolModule>());
  net.Add(std::make_shared<nn::Linear>(8, 2, true, gen));
  EXPECT_EQ(net.NamedParameters()[0].first, "0.weight");
  // Class 1 images are bright in the top half, class 0 in the bottom half.
  Tensor x = Tensor::Rand({8, 1, 8, 8}, gen);
  std::vector<int64_t> labels(8);
  {
    std::vector<float> v = x.ToVector<float>();
    for (int i = 0; i < 8; ++i) {
      labels[i] = i % 2;
      for (int h = 0; h < 8; ++h)
        for (int w = 0; w < 8; ++w)
          if ((h < 4) == (i % 2 == 1)) v[(i * 8 + h) * 8 + w] += 2.0f;
    }
    x = Tensor::FromVector(v, Shape{8, 1, 8, 8});
  }
  Tensor y = Tensor::FromVector(labels, Shape{8});
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Tensor loss = CrossEntropy(net.Forward(x), y);
    if (step == 0) first = loss.item();
    last = loss.item();
    loss.Backward();
    NoGradGuard ng;
    for (Tensor p : net.Parameters()) {
      p.CopyFrom(Sub(p, MulScalar(p.grad(), 0.2)));
      p.ZeroGrad();
    }
  }
  EXPECT_LT(last, 0.5 * first) << "loss went from " << first << " to " << last;
}

// ---------------------------------------------------------------------------------------------
// PyTorch oracle
// ---------------------------------------------------------------------------------------------

using reference::OpKey;
using reference::RefCase;
using reference::RefDType;
using reference::RefTensor;

// An element passes when |got - want| <= atol * n + rtol * |want|, n >= 1 being the number of
// terms summed into that element (see Acc below): float rounding grows with it, and torch (oneDNN)
// and attend sum in different orders. The same rule and constants as test_torch_reference.cc.
constexpr double kF32Rtol = 1e-5;
constexpr double kF32Atol = 1e-6;
constexpr double kF64Rtol = 1e-10;
constexpr double kF64Atol = 1e-10;

struct Loaded {
  std::vector<RefCase> cases;
  std::string error;
};

// Missing or unreadable is a failure, never a skip: the file comes from the
// generate_conv_reference ctest fixture.
const Loaded& Load() {
  static const Loaded loaded = [] {
    Loaded l;
    const char* dir = std::getenv("ATTEND_REFERENCE_DIR");
    if (dir == nullptr || *dir == '\0') {
      l.error =
          "ATTEND_REFERENCE_DIR is not set. Run these tests through ctest (its "
          "generate_conv_reference fixture writes the file first), or run "
          "`/usr/bin/python3 tests/reference/conv_reference.py --out DIR/conv_reference.bin` "
          "and set ATTEND_REFERENCE_DIR=DIR.";
      return l;
    }
    const std::string path = std::string(dir) + "/conv_reference.bin";
    try {
      l.cases = reference::ReadReferenceFile(path);
      if (l.cases.empty()) l.error = path + " holds no cases";
    } catch (const Error& e) {
      l.error = std::string(e.what()) +
                " -- generate_conv_reference (needs /usr/bin/python3 "
                "with torch) must have failed or not run.";
    }
    return l;
  }();
  return loaded;
}

Tensor ToTensor(const RefTensor& r) {
  const Shape shape(r.dims);
  switch (r.dtype) {
    case RefDType::kF32: {
      std::vector<float> v(r.numel());
      if (!v.empty()) std::memcpy(v.data(), r.bytes.data(), r.bytes.size());
      return Tensor::FromVector(v, shape);
    }
    case RefDType::kF64: {
      std::vector<double> v(r.numel());
      if (!v.empty()) std::memcpy(v.data(), r.bytes.data(), r.bytes.size());
      return Tensor::FromVector(v, shape);
    }
    case RefDType::kI64: {
      std::vector<int64_t> v(r.numel());
      if (!v.empty()) std::memcpy(v.data(), r.bytes.data(), r.bytes.size());
      return Tensor::FromVector(v, shape);
    }
    case RefDType::kBool: break;
  }
  throw Error("conv reference: unexpected tensor dtype in " + r.name);
}

std::vector<double> ValuesOf(const Tensor& t) {
  if (t.dtype() == DType::kF64) return t.ToVector<double>();
  std::vector<double> out;
  for (float v : t.ToVector<float>()) out.push_back(v);
  return out;
}

const RefTensor& Ref(const RefCase& c, const std::string& name) {
  const RefTensor* t = c.Find(name);
  if (t == nullptr) throw Error("case " + c.name + " has no tensor " + name);
  return *t;
}

std::string Named(const char* prefix, size_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

void ExpectMatches(const RefCase& c, const std::string& what, const Tensor& got,
                   const RefTensor& want, double n) {
  const std::string where = "case " + c.name + " [" + c.op + "] " + what;
  if (!got.defined()) {
    ADD_FAILURE() << where << ": attend gave no tensor, torch gave " << want.ShapeString();
    return;
  }
  const bool f32 = want.dtype == RefDType::kF32;
  const DType want_dtype = f32 ? DType::kF32 : DType::kF64;
  if (got.dtype() != want_dtype || got.shape().vec() != want.dims) {
    ADD_FAILURE() << where << ": expected " << reference::RefDTypeName(want.dtype)
                  << want.ShapeString() << ", got " << got.str();
    return;
  }
  const double rtol = f32 ? kF32Rtol : kF64Rtol, atol = (f32 ? kF32Atol : kF64Atol) * n;
  const std::vector<double> g = ValuesOf(got), w = want.AsDoubles();
  int64_t bad = 0;
  double worst = 0;
  std::ostringstream list;
  list.precision(9);
  for (size_t i = 0; i < w.size(); ++i) {
    const double diff = std::fabs(g[i] - w[i]);
    bool ok = std::isnan(w[i]) ? std::isnan(g[i]) : diff <= atol + rtol * std::fabs(w[i]);
    if (ok) continue;
    worst = std::max(worst, diff);
    if (bad++ < 6) list << "\n    at flat " << i << ": expected " << w[i] << ", got " << g[i];
  }
  if (bad > 0) {
    ADD_FAILURE() << where << " " << want.ShapeString() << ": " << bad << " of " << w.size()
                  << " elements differ, max |diff| " << worst << ", tolerance " << atol << " + "
                  << rtol << " * |expected|" << list.str();
  }
}

// What a case's replay produced: the output and, per input i, the tensor whose .grad is torch's
// dx<i> (the input itself, or the module parameter it was copied into).
struct Replayed {
  Tensor y;
  std::vector<Tensor> grad_of;
  std::shared_ptr<nn::Module> keep;
  // Accumulation length per compared tensor: "y0", "dx0", ... (1 when absent).
  std::map<std::string, double> n;
};

Size2 PairParam(const OpKey& k, const std::string& name) {
  std::vector<int64_t> v = k.IntList(name);
  if (v.size() == 1) return Size2{v[0]};
  if (v.size() != 2) throw Error("parameter " + name + " of " + k.key() + " is not a pair");
  return Size2{v[0], v[1]};
}

void CopyInto(Tensor param, const Tensor& value) {
  NoGradGuard ng;
  param.CopyFrom(value);
}

// Accumulation lengths of a convolution: each output sums C/G * K products (and the bias), each
// input element collects up to O/G * K of them, weight and bias gradients sum over B * positions.
void ConvAcc(Replayed* r, const Tensor& w, int64_t groups, bool bias) {
  int64_t k = 1;
  for (int d = 2; d < w.dim(); ++d) k *= w.size(d);
  const int64_t spatial = w.dim() - 2;
  const int64_t positions = r->y.numel() / r->y.size(-spatial - 1);  // B * output positions
  r->n["y0"] = static_cast<double>(w.size(1) * k + (bias ? 1 : 0));
  r->n["dx0"] = static_cast<double>(w.size(0) / groups * k);
  r->n["dx1"] = static_cast<double>(positions);
  r->n["dx2"] = static_cast<double>(positions);
}

// Pooling: an output averages up to `window` inputs; an input sits in up to `overlap` windows.
void PoolAcc(Replayed* r, double window, double overlap) {
  r->n["y0"] = window;
  r->n["dx0"] = std::max(1.0, overlap);
}

double Overlap(Size2 k, Size2 s) {
  return static_cast<double>(((k.h + s.h - 1) / s.h) * ((k.w + s.w - 1) / s.w));
}

Replayed Run(const OpKey& k, const std::vector<Tensor>& in) {
  Replayed r;
  r.grad_of = in;
  const std::string& op = k.name();
  if (op == "conv1d") {
    const bool bias = k.Bool("bias");
    r.y = Conv1d(in.at(0), in.at(1), bias ? in.at(2) : Tensor(), k.Int("stride"), k.Int("padding"),
                 k.Int("dilation"), k.Int("groups"));
    ConvAcc(&r, in[1], k.Int("groups"), bias);
  } else if (op == "conv2d") {
    const bool bias = k.Bool("bias");
    r.y = Conv2d(in.at(0), in.at(1), bias ? in.at(2) : Tensor(), PairParam(k, "stride"),
                 PairParam(k, "padding"), PairParam(k, "dilation"), k.Int("groups"));
    ConvAcc(&r, in[1], k.Int("groups"), bias);
  } else if (op == "max_pool1d" || op == "avg_pool1d") {
    const int64_t kernel = k.Int("kernel"), stride = k.Int("stride");
    r.y = op == "max_pool1d" ? MaxPool1d(in.at(0), kernel, stride, k.Int("padding"))
                             : AvgPool1d(in.at(0), kernel, stride, k.Int("padding"), k.Bool("cip"));
    PoolAcc(&r, static_cast<double>(kernel), Overlap(Size2{1, kernel}, Size2{1, stride}));
  } else if (op == "max_pool2d" || op == "avg_pool2d" || op == "module_max_pool2d" ||
             op == "module_avg_pool2d") {
    const Size2 kernel = PairParam(k, "kernel"), stride = PairParam(k, "stride");
    const Size2 padding = PairParam(k, "padding");
    if (op == "max_pool2d") {
      r.y = MaxPool2d(in.at(0), kernel, stride, padding);
    } else if (op == "avg_pool2d") {
      r.y = AvgPool2d(in.at(0), kernel, stride, padding, k.Bool("cip"));
    } else if (op == "module_max_pool2d") {
      r.y = nn::MaxPool2dModule(kernel, stride, padding).Forward(in.at(0));
    } else {
      r.y = nn::AvgPool2dModule(kernel, stride, padding, k.Bool("cip")).Forward(in.at(0));
    }
    PoolAcc(&r, static_cast<double>(kernel.h * kernel.w), Overlap(kernel, stride));
  } else if (op == "adaptive_avg_pool2d") {
    const Size2 out = PairParam(k, "out");
    r.y = AdaptiveAvgPool2d(in.at(0), out);
    const double wh = std::ceil(static_cast<double>(in[0].size(-2)) / out.h) + 1;
    const double ww = std::ceil(static_cast<double>(in[0].size(-1)) / out.w) + 1;
    PoolAcc(&r, wh * ww, 4.0);
  } else if (op == "global_avg_pool" || op == "module_global_avg_pool") {
    r.y = op == "global_avg_pool" ? GlobalAvgPool(in.at(0), k.Bool("keepdim"))
                                  : nn::GlobalAvgPoolModule(k.Bool("keepdim")).Forward(in.at(0));
    PoolAcc(&r, static_cast<double>(in[0].numel() / (in[0].size(0) * in[0].size(1))), 1.0);
  } else if (op == "module_conv2d" || op == "module_conv1d") {
    const bool bias = k.Bool("bias");
    Generator gen(1);
    std::shared_ptr<nn::Module> m;
    if (op == "module_conv2d") {
      auto conv =
          std::make_shared<nn::Conv2dModule>(k.Int("in"), k.Int("out"), PairParam(k, "kernel"), gen,
                                             nn::Conv2dOptions{.stride = PairParam(k, "stride"),
                                                               .padding = PairParam(k, "padding"),
                                                               .dilation = PairParam(k, "dilation"),
                                                               .groups = k.Int("groups"),
                                                               .bias = bias},
                                             in.at(0).dtype());
      CopyInto(conv->weight, in.at(1));
      if (bias) CopyInto(conv->bias, in.at(2));
      r.y = conv->Forward(in[0]);
      r.grad_of = {in[0], conv->weight, conv->bias};
      m = conv;
    } else {
      auto conv =
          std::make_shared<nn::Conv1dModule>(k.Int("in"), k.Int("out"), k.Int("kernel"), gen,
                                             nn::Conv1dOptions{.stride = k.Int("stride"),
                                                               .padding = k.Int("padding"),
                                                               .dilation = k.Int("dilation"),
                                                               .groups = k.Int("groups"),
                                                               .bias = bias},
                                             in.at(0).dtype());
      CopyInto(conv->weight, in.at(1));
      if (bias) CopyInto(conv->bias, in.at(2));
      r.y = conv->Forward(in[0]);
      r.grad_of = {in[0], conv->weight, conv->bias};
      m = conv;
    }
    r.keep = m;
    ConvAcc(&r, in[1], k.Int("groups"), bias);
  } else if (op == "cnn") {
    // The network of conv_reference.py's cnn_case, parameters copied in registration order.
    Generator gen(1);
    auto net = std::make_shared<nn::Sequential>();
    net->Add(std::make_shared<nn::Conv2dModule>(3, 4, 3, gen, nn::Conv2dOptions{.padding = 1}));
    net->AddFunction([](const Tensor& t) { return Relu(t); });
    net->Add(std::make_shared<nn::MaxPool2dModule>(2));
    net->Add(std::make_shared<nn::Conv2dModule>(4, 6, 3, gen,
                                                nn::Conv2dOptions{.stride = 2, .padding = 1}));
    net->AddFunction([](const Tensor& t) { return Relu(t); });
    net->Add(std::make_shared<nn::AvgPool2dModule>(2, Size2{1}));
    net->Add(std::make_shared<nn::GlobalAvgPoolModule>());
    net->Add(std::make_shared<nn::Linear>(6, 5, true, gen));
    std::vector<Tensor> params = net->Parameters();
    if (params.size() + 2 != in.size()) throw Error("cnn: parameter count differs from torch's");
    r.grad_of = {in[0]};
    for (size_t i = 0; i < params.size(); ++i) {
      CopyInto(params[i], in[i + 1]);
      r.grad_of.push_back(params[i]);
    }
    r.y = CrossEntropy(net->Forward(in[0]), in.back());
    r.keep = net;
    // Every gradient passes through all layers; the longest single sum is conv1's weight
    // gradient over B * H * W = 3 * 12 * 10 positions.
    for (size_t i = 0; i < in.size(); ++i) r.n[Named("dx", i)] = 360.0;
    r.n["y0"] = 360.0;
  } else {
    throw Error("no runner for op '" + op + "'");
  }
  return r;
}

void Replay(const RefCase& c) {
  OpKey key(c.op);
  std::vector<Tensor> in;
  for (size_t i = 0;; ++i) {
    const RefTensor* t = c.Find(Named("x", i));
    if (t == nullptr) break;
    Tensor v = ToTensor(*t);
    if (IsFloating(v.dtype())) v.set_requires_grad(true);
    in.push_back(v);
  }
  Replayed r = Run(key, in);
  auto acc = [&](const std::string& name) { return r.n.count(name) ? r.n[name] : 1.0; };
  ExpectMatches(c, "y0", r.y, Ref(c, "y0"), acc("y0"));
  const RefTensor* dy = c.Find("dy0");
  if (dy == nullptr) return;
  r.y.Backward(ToTensor(*dy));
  for (size_t i = 0; i < in.size(); ++i) {
    const RefTensor* dx = c.Find(Named("dx", i));
    if (dx == nullptr) continue;
    ExpectMatches(c, Named("dx", i), i < r.grad_of.size() ? r.grad_of[i].grad() : Tensor(), *dx,
                  acc(Named("dx", i)));
  }
}

// Replays every case whose op name starts with one of `prefixes`; returns how many ran.
int ReplayFamily(const std::vector<std::string>& prefixes) {
  const Loaded& l = Load();
  if (!l.error.empty()) {
    ADD_FAILURE() << l.error;
    return 0;
  }
  int ran = 0;
  for (const RefCase& c : l.cases) {
    const std::string name = OpKey(c.op).name();
    bool match = false;
    for (const std::string& p : prefixes) match = match || name.rfind(p, 0) == 0;
    if (!match) continue;
    try {
      Replay(c);
    } catch (const Error& e) {
      ADD_FAILURE() << "case " << c.name << " [" << c.op << "] threw: " << e.what();
    }
    ++ran;
  }
  return ran;
}

TEST(ConvTorchReference, Conv1d) { EXPECT_GT(ReplayFamily({"conv1d"}), 5); }
TEST(ConvTorchReference, Conv2d) { EXPECT_GT(ReplayFamily({"conv2d"}), 10); }
TEST(ConvTorchReference, MaxPool) { EXPECT_GT(ReplayFamily({"max_pool"}), 10); }
TEST(ConvTorchReference, AvgPool) {
  EXPECT_GT(ReplayFamily({"avg_pool", "adaptive_avg_pool"}), 20);
}
TEST(ConvTorchReference, GlobalAvgPool) { EXPECT_GT(ReplayFamily({"global_avg_pool"}), 2); }
TEST(ConvTorchReference, Modules) { EXPECT_GT(ReplayFamily({"module_"}), 6); }
TEST(ConvTorchReference, SequentialCnn) { EXPECT_EQ(ReplayFamily({"cnn"}), 1); }

// Every case in the file belongs to one of the families above.
TEST(ConvTorchReference, EveryCaseHasARunner) {
  const Loaded& l = Load();
  ASSERT_TRUE(l.error.empty()) << l.error;
  const std::vector<std::string> known = {
      "conv1d",          "conv2d",  "max_pool", "avg_pool", "adaptive_avg_pool",
      "global_avg_pool", "module_", "cnn"};
  for (const RefCase& c : l.cases) {
    const std::string name = OpKey(c.op).name();
    bool found = false;
    for (const std::string& p : known) found = found || name.rfind(p, 0) == 0;
    EXPECT_TRUE(found) << "case " << c.name << ": op " << name << " has no family";
  }
  std::cout << "[ reference ] " << l.cases.size() << " torch conv/pool cases in the file\n";
}

}  // namespace
}  // namespace attend
