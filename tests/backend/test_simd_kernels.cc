// Every Highway kernel against its scalar reference, on lengths that are not multiples of the
// vector width and on awkward values.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cstdint>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/reference/crc32.h"
#include "backend/cpu/reference/dropout_kernels.h"
#include "backend/cpu/reference/gemm_kernels.h"
#include "backend/cpu/reference/optim_kernels.h"
#include "backend/cpu/reference/elementwise_kernels.h"
#include "backend/cpu/reference/pool_kernels.h"
#include "backend/cpu/reference/row_kernels.h"
#include "backend/cpu/simd/attention_kernels.h"
#include "backend/cpu/simd/crc32_kernels.h"
#include "backend/cpu/simd/dropout_kernels.h"
#include "backend/cpu/simd/gemm_kernels.h"
#include "backend/cpu/simd/optim_kernels.h"
#include "backend/cpu/simd/elementwise_kernels.h"
#include "backend/cpu/simd/pool_kernels.h"
#include "backend/cpu/simd/row_kernels.h"
#include "hwy/targets.h"
#include "support/random.h"

namespace attend::cpu {
namespace {

using attend::testing::RandomFloats;

// f32 kernels against the scalar reference (which accumulates in double): 2 ulp-ish for
// elementwise, 1e-6 relative for transcendental functions (Highway's Exp/Log/Tanh are within a
// few ulp; the erf approximation in GELU is within 1.5e-7 absolute).
constexpr float kElemTol = 2e-7f;
constexpr float kTransTol = 2e-6f;

void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, float tol,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    float scale = std::max(1.0f, std::abs(b[i]));
    ASSERT_NEAR(a[i], b[i], tol * scale) << what << " at " << i << " of " << a.size();
  }
}

const int64_t kLengths[] = {1, 3, 7, 15, 16, 17, 33, 100, 1023};

TEST(SimdKernels, Binary) {
  for (int64_t n : kLengths) {
    auto a = RandomFloats(n, -3, 3, 1), b = RandomFloats(n, 0.5f, 3, 2);
    for (auto op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv}) {
      for (int mode = 0; mode < 3; ++mode) {
        bool as = mode == 1, bs = mode == 2;
        std::vector<float> got(n), want(n);
        simd::Binary(op, a.data(), as, b.data(), bs, got.data(), n);
        ref::Binary(op, a.data(), as ? 0 : 1, b.data(), bs ? 0 : 1, want.data(), 1, n);
        ExpectClose(got, want, kElemTol, "binary op " + std::to_string(int(op)));
      }
    }
  }
}

TEST(SimdKernels, Unary) {
  struct Case {
    UnaryOp op;
    float lo, hi, p0, p1;
    float tol;
  };
  const Case cases[] = {
      {UnaryOp::kNeg, -5, 5, 0, 0, kElemTol},
      {UnaryOp::kAbs, -5, 5, 0, 0, kElemTol},
      {UnaryOp::kExp, -80, 80, 0, 0, kTransTol},
      {UnaryOp::kLog, 1e-6f, 1e6f, 0, 0, kTransTol},
      {UnaryOp::kSqrt, 0, 100, 0, 0, kElemTol},
      {UnaryOp::kRsqrt, 0.01f, 100, 0, 0, kTransTol},
      {UnaryOp::kTanh, -10, 10, 0, 0, kTransTol},
      {UnaryOp::kSigmoid, -100, 100, 0, 0, kTransTol},
      {UnaryOp::kRelu, -5, 5, 0, 0, kElemTol},
      {UnaryOp::kGelu, -8, 8, 0, 0, kTransTol},
      {UnaryOp::kPow, 0.1f, 4, 2.5f, 0, kTransTol},
      {UnaryOp::kClamp, -5, 5, -1, 2, kElemTol},
      {UnaryOp::kAddScalar, -5, 5, 1.5f, 0, kElemTol},
      {UnaryOp::kMulScalar, -5, 5, -0.5f, 0, kElemTol},
  };
  for (const Case& c : cases)
    for (int64_t n : kLengths) {
      auto x = RandomFloats(n, c.lo, c.hi, 3);
      std::vector<float> got(n), want(n);
      simd::Unary(c.op, x.data(), got.data(), n, c.p0, c.p1);
      ref::Unary(c.op, x.data(), 1, want.data(), 1, n, c.p0, c.p1);
      ExpectClose(got, want, c.tol, "unary op " + std::to_string(int(c.op)));
    }
}

TEST(SimdKernels, UnaryGrad) {
  struct Case {
    UnaryGradOp op;
    UnaryOp fwd;
    float lo, hi, p0, p1;
  };
  const Case cases[] = {
      {UnaryGradOp::kAbs, UnaryOp::kAbs, -5, 5, 0, 0},
      {UnaryGradOp::kExp, UnaryOp::kExp, -5, 5, 0, 0},
      {UnaryGradOp::kLog, UnaryOp::kLog, 0.1f, 5, 0, 0},
      {UnaryGradOp::kSqrt, UnaryOp::kSqrt, 0.1f, 5, 0, 0},
      {UnaryGradOp::kRsqrt, UnaryOp::kRsqrt, 0.1f, 5, 0, 0},
      {UnaryGradOp::kTanh, UnaryOp::kTanh, -5, 5, 0, 0},
      {UnaryGradOp::kSigmoid, UnaryOp::kSigmoid, -5, 5, 0, 0},
      {UnaryGradOp::kRelu, UnaryOp::kRelu, -5, 5, 0, 0},
      {UnaryGradOp::kGelu, UnaryOp::kGelu, -6, 6, 0, 0},
      {UnaryGradOp::kPow, UnaryOp::kPow, 0.1f, 4, 2.5f, 0},
      {UnaryGradOp::kClamp, UnaryOp::kClamp, -5, 5, -1, 2},
  };
  for (const Case& c : cases)
    for (int64_t n : kLengths) {
      auto x = RandomFloats(n, c.lo, c.hi, 4), g = RandomFloats(n, -1, 1, 5);
      std::vector<float> y(n), got(n), want(n);
      ref::Unary(c.fwd, x.data(), 1, y.data(), 1, n, c.p0, c.p1);
      simd::UnaryGrad(c.op, x.data(), y.data(), g.data(), got.data(), n, c.p0, c.p1);
      ref::UnaryGrad(c.op, x.data(), y.data(), g.data(), want.data(), n, c.p0, c.p1);
      ExpectClose(got, want, kTransTol, "unary grad op " + std::to_string(int(c.op)));
    }
}

TEST(SimdKernels, Reductions) {
  for (int64_t n : kLengths) {
    auto x = RandomFloats(n, -2, 2, 6);
    // Sums of n values in f32: relative error grows like n * eps at worst.
    EXPECT_NEAR(simd::Sum(x.data(), n), ref::Sum(x.data(), n), 1e-6 * n) << n;
    EXPECT_EQ(simd::Max(x.data(), n), ref::Max(x.data(), n)) << n;
    EXPECT_EQ(simd::Min(x.data(), n), ref::Min(x.data(), n)) << n;
    auto acc_s = RandomFloats(n, -1, 1, 7), acc_r = acc_s;
    simd::Accumulate(acc_s.data(), x.data(), n);
    ref::Accumulate(acc_r.data(), x.data(), n);
    ExpectClose(acc_s, acc_r, kElemTol, "accumulate");
  }
}

TEST(SimdKernels, SoftmaxRows) {
  for (int64_t n : kLengths) {
    for (bool log : {false, true}) {
      auto x = RandomFloats(n, -20, 20, 8), g = RandomFloats(n, -1, 1, 9);
      if (n > 2) x[1] = -INFINITY;  // a masked position
      std::vector<float> ys(n), yr(n), ds(n), dr(n);
      simd::SoftmaxRow(x.data(), ys.data(), n, log);
      ref::SoftmaxRow(x.data(), yr.data(), n, log);
      if (log) {
        for (int64_t i = 0; i < n; ++i) {
          if (std::isinf(yr[i])) EXPECT_EQ(ys[i], yr[i]);
          else EXPECT_NEAR(ys[i], yr[i], kTransTol * std::max(1.0f, std::abs(yr[i])));
        }
      } else {
        ExpectClose(ys, yr, kTransTol, "softmax");
      }
      simd::SoftmaxGradRow(yr.data(), g.data(), ds.data(), n, log);
      ref::SoftmaxGradRow(yr.data(), g.data(), dr.data(), n, log);
      ExpectClose(ds, dr, kTransTol, "softmax grad");
    }
  }
  // A fully masked row: zeros (softmax) or -inf (log-softmax), never NaN.
  std::vector<float> x(5, -INFINITY), y(5);
  simd::SoftmaxRow(x.data(), y.data(), 5, false);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  simd::SoftmaxRow(x.data(), y.data(), 5, true);
  for (float v : y) EXPECT_EQ(v, -INFINITY);
}

TEST(SimdKernels, LayerNormRows) {
  for (int64_t n : kLengths) {
    auto x = RandomFloats(n, -3, 5, 10), gm = RandomFloats(n, 0.5f, 1.5f, 11),
         bt = RandomFloats(n, -1, 1, 12), g = RandomFloats(n, -1, 1, 13);
    for (bool affine : {false, true}) {
      const float* pg = affine ? gm.data() : nullptr;
      const float* pb = affine ? bt.data() : nullptr;
      std::vector<float> ys(n), yr(n);
      float ms, rs, mr, rr;
      simd::LayerNormRow(x.data(), pg, pb, ys.data(), n, 1e-5f, &ms, &rs);
      ref::LayerNormRow(x.data(), pg, pb, yr.data(), n, 1e-5f, &mr, &rr);
      ExpectClose(ys, yr, 1e-5f, "layer norm");
      EXPECT_NEAR(ms, mr, 1e-5f);
      EXPECT_NEAR(rs, rr, 1e-4f * rr);
      std::vector<float> ds(n), dr(n), dgs(n, 0), dgr(n, 0), dbs(n, 0), dbr(n, 0);
      simd::LayerNormGradRow(x.data(), g.data(), pg, mr, rr, ds.data(), dgs.data(), dbs.data(), n);
      ref::LayerNormGradRow(x.data(), g.data(), pg, mr, rr, dr.data(), dgr.data(), dbr.data(), n);
      ExpectClose(ds, dr, 1e-5f, "layer norm grad");
      ExpectClose(dgs, dgr, 1e-5f, "layer norm dgamma");
      ExpectClose(dbs, dbr, kElemTol, "layer norm dbeta");
    }
  }
}

// The packed layout: panel p, input feature kk, column j holds w[32p + j][kk]; zero past n.
TEST(SimdKernels, PackWeightLayout) {
  const int64_t n = 37, k = 5, ldw = 7;
  auto w = RandomFloats(n * ldw, -1, 1, 20);
  std::vector<float> packed(PackedSize(n, k), -1.0f);
  ASSERT_EQ(packed.size(), static_cast<size_t>(2 * kPackPanel * k));
  PackWeight(w.data(), n, k, ldw, packed.data());
  for (int64_t row = 0; row < 2 * kPackPanel; ++row)
    for (int64_t kk = 0; kk < k; ++kk) {
      const float got = packed[((row / kPackPanel) * k + kk) * kPackPanel + row % kPackPanel];
      EXPECT_EQ(got, row < n ? w[row * ldw + kk] : 0.0f) << "row " << row << " kk " << kk;
    }
}

// Every tile height (1 .. above the widest tile), partial last panels, strided rows, with and
// without bias, against the double-accumulating reference.
TEST(SimdKernels, PackedGemm) {
  for (int64_t m : {1, 2, 3, 5, 6, 7, 12, 13, 33}) {
    for (int64_t n : {1, 31, 32, 33, 100}) {
      for (int64_t k : {1, 7, 64}) {
        const int64_t ldx = k + 3, ldy = n + 5;
        auto x = RandomFloats(m * ldx, -1, 1, 21), w = RandomFloats(n * k, -1, 1, 22),
             bias = RandomFloats(n, -1, 1, 23);
        std::vector<float> packed(PackedSize(n, k));
        PackWeight(w.data(), n, k, k, packed.data());
        for (bool with_bias : {false, true}) {
          const float* b = with_bias ? bias.data() : nullptr;
          std::vector<float> got(m * ldy, 7.0f), want(m * ldy, 7.0f);
          simd::PackedGemm(x.data(), m, k, ldx, packed.data(), n, b, got.data(), ldy);
          ref::PackedGemm(x.data(), m, k, ldx, packed.data(), n, b, want.data(), ldy);
          // f32 sums of k products of terms below 1 against a double sum: k ulps of the sum.
          ExpectClose(got, want, 1e-6f * static_cast<float>(k),
                      "packed gemm m " + std::to_string(m) + " n " + std::to_string(n) + " k " +
                          std::to_string(k));
        }
      }
    }
  }
  // Large enough for the threaded panel loop.
  const int64_t m = 64, n = 1000, k = 128;
  auto x = RandomFloats(m * k, -1, 1, 24), w = RandomFloats(n * k, -1, 1, 25);
  std::vector<float> packed(PackedSize(n, k)), got(m * n), want(m * n);
  PackWeight(w.data(), n, k, k, packed.data());
  simd::PackedGemm(x.data(), m, k, k, packed.data(), n, nullptr, got.data(), n);
  ref::PackedGemm(x.data(), m, k, k, packed.data(), n, nullptr, want.data(), n);
  ExpectClose(got, want, 1e-6f * k, "packed gemm, threaded");
}

// m x n x k of a product.
struct Shape3 {
  int64_t m, n, k;
};

// The general GEMM: every transpose pair, padded strides, alpha and beta (beta 0 must ignore
// NaN in C), with and without a bias, k across several packed blocks, m across several row blocks,
// partial panels, and a product large enough for threads.
TEST(SimdKernels, Gemm) {
  const Shape3 shapes[] = {{1, 1, 1},
                           {5, 33, 7},
                           {13, 32, 300},
                           {7, 100, 513},
                           {300, 45, 20},
                           {70, 64, 256},
                           {257, 31, 65},
                           {64, 300, 600},
                           // Past one block of every kind: rows (kMc), features (kKc), the
                           // panels packed at a time (kNc), and a last, partial tile of rows.
                           {301, 600, 270},
                           {40, 2050, 37},
                           // Every remainder of a 6-row tile (AVX2's strips), a last panel of
                           // exactly one 16-column strip, and one column past it.
                           {20, 48, 300},
                           {33, 16, 9},
                           {38, 49, 40},
                           // Few rows, whole panels, alpha 1 (beta 1 below), threads: B read in
                           // place, nothing packed, no barrier between blocks of k; one chunk
                           // of panels, then two.
                           {64, 512, 520},
                           {40, 1024, 300},
                           // Two panels (B transposed, or a partial one) over many rows, two
                           // blocks of k, threads.
                           {600, 40, 300},
                           // A packed a row block at a time (AVX2; transposed A from 512 rows):
                           // a last row block of 13 tiles and 5 rows, two blocks of k.
                           {515, 70, 300}};
  for (const Shape3& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f, -0.5f}) {
          const float alpha = beta == 1.0f ? 1.0f : 0.75f;  // 1: B may be read in place
          const int64_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 2, ldc = s.n + 5;
          auto a = RandomFloats((ta ? s.k : s.m) * lda, -1, 1, 30);
          auto b = RandomFloats((tb ? s.n : s.k) * ldb, -1, 1, 31);
          auto c0 = RandomFloats(s.m * ldc, -1, 1, 32);
          if (beta == 0.0f)
            for (auto& x : c0) x = std::nanf("");
          std::vector<float> got = c0, want = c0;
          simd::Gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, got.data(),
                     ldc);
          ref::Gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, want.data(),
                    ldc);
          // With a bias (beta 0: the tiles start from it; otherwise added after).
          const auto bias = RandomFloats(s.n, -1, 1, 33);
          std::vector<float> got_b = c0, want_b = c0;
          simd::Gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, got_b.data(),
                     ldc, bias.data());
          ref::Gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, want_b.data(),
                    ldc, bias.data());
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = 0; j < s.n; ++j) {
              const float g = got_b[i * ldc + j], w = want_b[i * ldc + j];
              ASSERT_NEAR(g, w, 1e-6f * static_cast<float>(s.k + 3) * std::max(1.0f, std::abs(w)))
                  << "bias: m " << s.m << " n " << s.n << " k " << s.k << " ta " << ta << " tb "
                  << tb << " beta " << beta << " at " << i << ", " << j;
            }
          // Only the m x n block is written; the stride padding keeps its old value.
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = s.n; j < ldc; ++j)
              ASSERT_TRUE(std::isnan(c0[i * ldc + j]) ? std::isnan(got[i * ldc + j])
                                                      : got[i * ldc + j] == c0[i * ldc + j]);
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = 0; j < s.n; ++j) {
              const float g = got[i * ldc + j], w = want[i * ldc + j];
              ASSERT_NEAR(g, w, 1e-6f * static_cast<float>(s.k + 2) * std::max(1.0f, std::abs(w)))
                  << "m " << s.m << " n " << s.n << " k " << s.k << " ta " << ta << " tb " << tb
                  << " beta " << beta << " at " << i << ", " << j;
            }
        }
}

// `got` (C [m, n], row stride ldc, from c0) against the scalar GEMM on the same operands: within
// the rounding bound of k products in the m x n block; the stride's padding keeps its old value.
void ExpectMatchesScalarGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                             const std::vector<float>& a, int64_t lda, const std::vector<float>& b,
                             int64_t ldb, float beta, const std::vector<float>& c0,
                             const std::vector<float>& got, int64_t ldc) {
  std::vector<float> want = c0;
  ref::Gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, want.data(), ldc);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const float g = got[i * ldc + j], w = want[i * ldc + j];
      if (j >= n) {
        ASSERT_TRUE(std::isnan(c0[i * ldc + j]) ? std::isnan(g) : g == c0[i * ldc + j]);
        continue;
      }
      ASSERT_NEAR(g, w, 1e-6f * static_cast<float>(k + 2) * std::max(1.0f, std::abs(w)))
          << "m " << m << " n " << n << " k " << k << " ta " << ta << " tb " << tb << " alpha "
          << alpha << " beta " << beta << " at " << i << ", " << j;
    }
}

// One product of a GEMM kernel's sweep: op(A) [m, k], op(B) [k, n] and C [m, n], each stored
// with padded strides (and one element past the last row, which no kernel may read as data); C
// holds NaN where beta is 0 (the kernel must not read it).
struct GemmCase {
  int64_t m, n, k;
  bool ta, tb;
  float alpha, beta;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c0;
  std::string str() const {
    return "m " + std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k) +
           " ta " + std::to_string(ta) + " tb " + std::to_string(tb);
  }
};

// Calls fn(GemmCase) for every shape x transpose pair x alpha {1, 0.75} x beta {0, 1, -0.5},
// operands drawn from seed, seed + 1 and seed + 2.
template <class Fn>
void ForEachGemmCase(const std::vector<Shape3>& shapes, unsigned seed, Fn fn) {
  for (const Shape3& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float alpha : {1.0f, 0.75f})
          for (float beta : {0.0f, 1.0f, -0.5f}) {
            GemmCase c{
                s.m,     s.n, s.k, ta, tb, alpha, beta, (ta ? s.m : s.k) + 3, (tb ? s.k : s.n) + 2,
                s.n + 5, {},  {},  {}};
            c.a = RandomFloats((ta ? s.k : s.m) * c.lda + 1, -1, 1, seed);
            c.b = RandomFloats((tb ? s.n : s.k) * c.ldb + 1, -1, 1, seed + 1);
            c.c0 = RandomFloats(s.m * c.ldc, -1, 1, seed + 2);
            if (beta == 0.0f)
              for (auto& x : c.c0) x = std::nanf("");
            fn(c);
          }
}

// C as the kernel left it against the scalar GEMM on the case's operands.
void ExpectMatchesScalarGemm(const GemmCase& c, const std::vector<float>& got) {
  ExpectMatchesScalarGemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, c.a, c.lda, c.b, c.ldb, c.beta, c.c0,
                          got, c.ldc);
}

// The small kernel: every transpose pair, alpha, beta (0 ignores NaN in C), padded strides, and
// every width from 1 to the limit (both strip widths and their remainders), with row counts
// around its tiles (6 / 12 rows of two vectors, 8 of one); larger shapes pass on to Gemm.
TEST(SimdKernels, SmallGemm) {
  std::vector<Shape3> shapes = {{20, 21, 32}, {20, 32, 21}, {21, 32, 20}, {64, 64, 64},
                                {1, 1, 1},    {13, 7, 64},  {8, 64, 1},   {65, 10, 10},
                                {10, 65, 10}, {10, 10, 65}};
  for (int64_t n = 1; n <= 64; n += 3) shapes.push_back({7 + n % 17, n, 5 + n % 11});
  for (int64_t m = 1; m <= 30; ++m) shapes.push_back({m, 24, 9});
  ForEachGemmCase(shapes, 70, [](const GemmCase& c) {
    std::vector<float> got = c.c0;
    simd::SmallGemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, c.a.data(), c.lda, c.b.data(), c.ldb,
                    c.beta, got.data(), c.ldc);
    ExpectMatchesScalarGemm(c, got);
  });
}

// The kernel for thin products: every row count below kFewRows (its 4-row blocks and each
// remainder), widths around its two- and one-vector strips and the scalar columns past them,
// depths around whole vectors (the dot products' tails), and rank-k updates of many rows; every
// transpose pair it takes, alpha, beta (0 ignores NaN in C), padded strides; the products it
// declines (a transposed A times a transposed B, many rows and features) are left untouched.
TEST(SimdKernels, FewRowsGemm) {
  std::vector<Shape3> shapes = {{1, 20, 256}, {1, 256, 20}, {20, 256, 1}, {1, 1, 1},
                                {7, 1, 300},  {5, 8000, 3}, {64, 37, 7},  {1, 40, 0}};
  for (int64_t m = 1; m < simd::kFewRows; ++m)
    for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 24, 33, 70})
      for (int64_t k : {1, 2, 7, 8, 9, 16, 17, 64, 65}) shapes.push_back({m, n, k});
  for (int64_t m : {8, 13, 30}) shapes.push_back({m, 41, 1 + m % simd::kFewRows});
  ForEachGemmCase(shapes, 80, [](const GemmCase& c) {
    std::vector<float> got = c.c0;
    const bool takes =
        c.tb ? !c.ta && c.m < simd::kFewRows : c.m < simd::kFewRows || c.k < simd::kFewRows;
    ASSERT_EQ(simd::FewRowsGemm(c.ta, c.tb, c.m, c.n, c.k, c.alpha, c.a.data(), c.lda, c.b.data(),
                                c.ldb, c.beta, got.data(), c.ldc),
              takes)
        << c.str();
    if (!takes) {
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_TRUE(std::isnan(c.c0[i]) ? std::isnan(got[i]) : got[i] == c.c0[i]);
      return;
    }
    ExpectMatchesScalarGemm(c, got);
  });
}

// A few rows times a transposed B, with alpha 1, beta 0 and no bias, may run as C^T = B A^T
// (AVX2): the same sums in the same order, so the same bits as the direct product, which a zero
// bias selects; padded strides, and what lies past n in C's rows is left alone.
TEST(SimdKernels, GemmFewRowsTimesTransposedBIsTheDirectProduct) {
  const Shape3 shapes[] = {{1, 4, 3},    {5, 33, 7},     {8, 64, 300},  {9, 100, 513},
                           {17, 70, 20}, {64, 768, 256}, {96, 384, 40}, {7, 2050, 37}};
  for (const Shape3& s : shapes) {
    const int64_t lda = s.k + 3, ldb = s.k + 1, ldc = s.n + 5;
    auto a = RandomFloats(s.m * lda, -1, 1, 60);
    auto b = RandomFloats(s.n * ldb, -1, 1, 61);
    const std::vector<float> zeros(s.n, 0.0f);
    std::vector<float> got(s.m * ldc, 7.0f), direct(s.m * ldc, 7.0f), want(s.m * ldc, 7.0f);
    simd::Gemm(false, true, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, got.data(),
               ldc);
    simd::Gemm(false, true, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, direct.data(),
               ldc, zeros.data());
    ref::Gemm(false, true, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, want.data(),
              ldc);
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const int64_t at = i * ldc + j;
        ASSERT_EQ(got[at], direct[at])
            << "m " << s.m << " n " << s.n << " k " << s.k << " at " << i << ", " << j;
        if (j < s.n)
          ASSERT_NEAR(got[at], want[at],
                      1e-6f * static_cast<float>(s.k + 2) * std::max(1.0f, std::abs(want[at])));
        else ASSERT_EQ(got[at], 7.0f);
      }
  }
}

// An element's result does not depend on where it sits (vector body or tail): shifting the
// input by a few positions gives bit-identical outputs, for values and gradients.
TEST(SimdKernels, UnaryIsPositionIndependent) {
  const int64_t n = 37;
  auto x = RandomFloats(n + 5, -3, 3, 40), g = RandomFloats(n + 5, -1, 1, 41);
  for (auto op : {UnaryOp::kExp, UnaryOp::kTanh, UnaryOp::kSigmoid, UnaryOp::kGelu}) {
    std::vector<float> a(n + 5), b(n);
    simd::Unary(op, x.data(), a.data(), n + 5, 0, 0);
    simd::Unary(op, x.data() + 5, b.data(), n, 0, 0);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(a[i + 5], b[i]) << "unary op " << int(op) << " at " << i;
  }
  for (auto op : {UnaryGradOp::kTanh, UnaryGradOp::kGelu}) {
    std::vector<float> a(n + 5), b(n);
    simd::UnaryGrad(op, x.data(), x.data(), g.data(), a.data(), n + 5, 0, 0);
    simd::UnaryGrad(op, x.data() + 5, x.data() + 5, g.data() + 5, b.data(), n, 0, 0);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(a[i + 5], b[i]) << "unary grad op " << int(op) << " at " << i;
  }
}

// Cross-entropy's row kernels: the normaliser and the gradient row.
TEST(SimdKernels, LogSumExpAndExpAffineRows) {
  for (int64_t n : kLengths) {
    auto x = RandomFloats(n, -20, 20, 50);
    const float got = simd::LogSumExpRow(x.data(), n), want = ref::LogSumExpRow(x.data(), n);
    EXPECT_NEAR(got, want, 1e-6f * std::max(1.0f, std::abs(want))) << "n " << n;
    std::vector<float> ys(n), yr(n);
    simd::ExpAffineRow(x.data(), want, 0.5f, 0.01f, ys.data(), n);
    ref::ExpAffineRow(x.data(), want, 0.5f, 0.01f, yr.data(), n);
    ExpectClose(ys, yr, kTransTol, "exp affine row");
  }
  std::vector<float> masked(20, -HUGE_VALF);
  EXPECT_EQ(simd::LogSumExpRow(masked.data(), 20), -HUGE_VALF);
}

// 2x2 / stride-2 max pooling rows against the scalar twin, bit for bit (comparisons only), with
// ties and NaNs placed in every window position: the first maximum wins, a NaN always wins.
TEST(SimdKernels, MaxPool2x2Rows) {
  for (int64_t n : kLengths) {
    std::vector<float> r0 = RandomFloats(2 * n, -2, 2, 7), r1 = RandomFloats(2 * n, -2, 2, 8);
    const std::vector<float> g = RandomFloats(n, -1, 1, 9);
    for (int64_t i = 0; i < n; i += 3) r1[2 * i + 1] = r0[2 * i];  // a tie: the first one wins
    for (int64_t i = 1; i < n; i += 5) (i % 2 ? r0 : r1)[2 * i + (i / 5) % 2] = std::nanf("");
    std::vector<float> got(n), want(n);
    simd::MaxPool2x2Row(r0.data(), r1.data(), got.data(), n);
    ref::MaxPool2x2RowScalar(r0.data(), r1.data(), want.data(), 0, n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])))
          << "row of " << n << " at " << i;
    }
    std::vector<float> d0(2 * n, 7.0f), d1(2 * n, 7.0f), e0(2 * n, 5.0f), e1(2 * n, 5.0f);
    simd::MaxPool2x2GradRow(r0.data(), r1.data(), g.data(), d0.data(), d1.data(), n);
    ref::MaxPool2x2GradRowScalar(r0.data(), r1.data(), g.data(), e0.data(), e1.data(), 0, n);
    EXPECT_EQ(d0, e0) << n;
    EXPECT_EQ(d1, e1) << n;
  }
}

// The integer keep test is the documented one: kept exactly when UniformD(seed, counter) >= p,
// including draws equal to p (p taken from draws themselves) and p = 1 (nothing kept).
TEST(DropoutKernels, IntegerThresholdIsTheUniformDrawTest) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const uint64_t seed = rng(), counter = rng();
    std::vector<double> ps = {1e-12, 0.1, 0.5, 0.9, 1.0, Generator::UniformD(seed, counter)};
    for (int k = 0; k < 5; ++k) ps.push_back(Generator::UniformD(rng(), rng()));
    for (double p : ps) {
      if (p <= 0.0) continue;
      const uint64_t threshold = ref::DropoutThreshold(p);
      for (uint64_t c = counter; c < counter + 8; ++c)
        EXPECT_EQ((Generator::Bits(seed, c) >> 11) >= threshold, Generator::UniformD(seed, c) >= p)
            << "p " << p << " counter " << c;
    }
  }
}

void CheckDropoutKernel();

// Runs `check` once on each instruction set the library is built for (AVX-512, AVX2, the 128-bit
// emulation, scalar) that this CPU runs, selected for every Highway dispatcher; returns how many.
template <typename Fn>
int ForEachKernelTarget(Fn&& check) {
  int targets = 0;
  for (int64_t t :
       {int64_t{HWY_AVX3}, int64_t{HWY_AVX2}, int64_t{HWY_EMU128}, int64_t{HWY_SCALAR}}) {
    if (!(hwy::SupportedTargets() & t)) continue;
    hwy::SetSupportedTargetsForTest(t);
    if (std::string(simd::TargetName()) == hwy::TargetName(t)) {
      ++targets;
      SCOPED_TRACE(hwy::TargetName(t));
      check();
    }
    hwy::SetSupportedTargetsForTest(0);
  }
  return targets;
}

// A large output written once (one block of k, beta 0: the logits of an output layer) is stored
// with streaming stores when it is 64-byte aligned with a row stride of whole vectors: the same
// bits as the product stored as usual (C one float off that alignment), within the scalar GEMM's
// rounding bound, the stride's padding untouched, with and without a bias, A or B transposed, on
// every target. The last panel (16 of 32 columns) goes through the tile's buffer.
TEST(SimdKernels, GemmStreamsALargeOutputWrittenOnceSameBits) {
  const int64_t m = 1040, n = 8080, ldc = 8096;  // 8.4 M floats: past the streaming threshold
  const int64_t k = 3;
  const int targets = ForEachKernelTarget([&] {
    for (bool ta : {false, true})
      for (bool with_bias : {false, true}) {
        const bool tb = !ta;  // x W^T (an output layer) and its mirror
        const int64_t lda = ta ? m : k, ldb = tb ? k : n;
        auto a = RandomFloats((ta ? k : m) * lda, -1, 1, 90);
        auto b = RandomFloats((tb ? n : k) * ldb, -1, 1, 91);
        const auto bias = RandomFloats(n, -1, 1, 92);
        const float* pb = with_bias ? bias.data() : nullptr;
        // One buffer, 64-byte aligned: C at its start (streamed) and at one float past it (not).
        const size_t floats = static_cast<size_t>(m * ldc + 16);
        float* buffer = static_cast<float*>(std::aligned_alloc(64, floats * sizeof(float)));
        ASSERT_NE(buffer, nullptr);
        std::vector<float> streamed(static_cast<size_t>(m * ldc)), stored(streamed.size());
        for (size_t i = 0; i < floats; ++i) buffer[i] = std::nanf("");
        simd::Gemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, 0.0f, buffer, ldc, pb);
        std::copy(buffer, buffer + streamed.size(), streamed.begin());
        for (size_t i = 0; i < floats; ++i) buffer[i] = std::nanf("");
        simd::Gemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, 0.0f, buffer + 1, ldc, pb);
        std::copy(buffer + 1, buffer + 1 + stored.size(), stored.begin());
        std::free(buffer);
        std::vector<float> want(streamed.size(), std::nanf(""));
        ref::Gemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, 0.0f, want.data(), ldc, pb);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const size_t at = static_cast<size_t>(i * ldc + j);
            if (j >= n) {
              ASSERT_TRUE(std::isnan(streamed[at]) && std::isnan(stored[at]))
                  << "padding written at " << i << ", " << j;
              continue;
            }
            ASSERT_EQ(std::bit_cast<uint32_t>(streamed[at]), std::bit_cast<uint32_t>(stored[at]))
                << "ta " << ta << " tb " << tb << " bias " << with_bias << " at " << i << ", " << j
                << ": " << streamed[at] << " vs " << stored[at];
            ASSERT_NEAR(streamed[at], want[at],
                        1e-6f * (k + 3) * std::max(1.0f, std::abs(want[at])))
                << "ta " << ta << " tb " << tb << " bias " << with_bias << " at " << i << ", " << j;
          }
      }
  });
  EXPECT_GE(targets, 1);
}

// The sums of op(A)'s rows that Gemm forms beside the product (sum_a: a linear layer's bias
// gradient from its weight gradient's GEMM) are ref::SumRowsOfOpA's bits, on every target, for one
// thread and two, whether they are formed while a transposed A is packed whole or in a pass of
// their own (A as it is; AVX2's row-block packing from 512 rows; one panel); the product is the
// same bits as without them. Shapes: one and several blocks of k, a last group of
// fewer than 16 features, rows not a whole number of tiles.
TEST(SimdKernels, GemmSumsOfOpARowsAreTheReferenceBitsForAnyThreads) {
  const Shape3 shapes[] = {{600, 70, 300}, {515, 64, 531}, {200, 100, 256},
                           {37, 40, 17},   {5, 33, 7},     {40, 1024, 300}};
  const int targets = ForEachKernelTarget([&] {
    for (const Shape3& s : shapes)
      for (bool ta : {true, false}) {
        const int64_t lda = (ta ? s.m : s.k) + 3, ldb = s.n + 2, ldc = s.n + 5;
        auto a = RandomFloats((ta ? s.k : s.m) * lda, -1, 1, 95);
        auto b = RandomFloats(s.k * ldb, -1, 1, 96);
        std::vector<float> want(static_cast<size_t>(s.m));
        ref::SumRowsOfOpA(ta, s.m, s.k, a.data(), lda, want.data());
        std::vector<float> plain(static_cast<size_t>(s.m * ldc), 0.0f);
        simd::Gemm(ta, false, s.m, s.n, s.k, 0.5f, a.data(), lda, b.data(), ldb, 0.0f, plain.data(),
                   ldc);
        for (int threads : {1, 2}) {
          const int before = omp_get_max_threads();
          omp_set_num_threads(threads);
          std::vector<float> sums(static_cast<size_t>(s.m), std::nanf(""));
          std::vector<float> c(plain.size(), 0.0f);
          simd::Gemm(ta, false, s.m, s.n, s.k, 0.5f, a.data(), lda, b.data(), ldb, 0.0f, c.data(),
                     ldc, nullptr, sums.data());
          omp_set_num_threads(before);
          for (int64_t i = 0; i < s.m; ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(sums[i]), std::bit_cast<uint32_t>(want[i]))
                << "m " << s.m << " n " << s.n << " k " << s.k << " ta " << ta << " threads "
                << threads << " at " << i << ": " << sums[i] << " vs " << want[i];
          for (size_t i = 0; i < c.size(); ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(c[i]), std::bit_cast<uint32_t>(plain[i]))
                << "the product changed at " << i;
        }
      }
  });
  EXPECT_GE(targets, 1);
  // The dispatching entry point, f32 (its own kernels or OpenBLAS) and f64 (OpenBLAS), keeps them.
  for (const Shape3& s : shapes) {
    const int64_t lda = s.m, ldb = s.n;
    auto a = RandomFloats(s.k * lda, -1, 1, 97);
    auto b = RandomFloats(s.k * ldb, -1, 1, 98);
    std::vector<float> want(static_cast<size_t>(s.m)), sums(want.size()), c(s.m * s.n);
    ref::SumRowsOfOpA(true, s.m, s.k, a.data(), lda, want.data());
    Gemm<float>(true, false, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n,
                nullptr, sums.data());
    for (int64_t i = 0; i < s.m; ++i) ASSERT_EQ(sums[i], want[i]) << "f32 at " << i;
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), wd(want.size()),
        sd(want.size()), cd(c.size());
    ref::SumRowsOfOpA(true, s.m, s.k, ad.data(), lda, wd.data());
    Gemm<double>(true, false, s.m, s.n, s.k, 1.0, ad.data(), lda, bd.data(), ldb, 0.0, cd.data(),
                 s.n, nullptr, sd.data());
    for (int64_t i = 0; i < s.m; ++i) ASSERT_EQ(sd[i], wd[i]) << "f64 at " << i;
  }
}

// The sums' own pass (the fallback when the product does not pack a transposed A whole) is
// ref::SumRowsOfOpA's bits on every target and thread count: columns in vector pairs, a scalar
// tail, runs of 512 columns threaded from a million elements (these shapes cross it).
TEST(SimdKernels, SumsOfOpARowsOwnPassIsTheReferenceBits) {
  const std::pair<int64_t, int64_t> shapes[] = {{1100, 1000}, {2049, 517}, {513, 2050},
                                                {31, 45},     {16, 16},    {1, 3}};
  const int targets = ForEachKernelTarget([&] {
    for (auto [m, k] : shapes)
      for (bool ta : {true, false}) {
        const int64_t lda = (ta ? m : k) + 5;
        auto a = RandomFloats((ta ? k : m) * lda, -1, 1, 99);
        std::vector<float> want(static_cast<size_t>(m));
        ref::SumRowsOfOpA(ta, m, k, a.data(), lda, want.data());
        for (int threads : {1, 2}) {
          const int before = omp_get_max_threads();
          omp_set_num_threads(threads);
          std::vector<float> sums(static_cast<size_t>(m), std::nanf(""));
          simd::SumRowsOfOpA(ta, m, k, a.data(), lda, sums.data());
          omp_set_num_threads(before);
          for (int64_t i = 0; i < m; ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(sums[i]), std::bit_cast<uint32_t>(want[i]))
                << "m " << m << " k " << k << " ta " << ta << " threads " << threads << " at " << i
                << ": " << sums[i] << " vs " << want[i];
        }
      }
  });
  EXPECT_GE(targets, 1);
}

// The folding CRC-32 is the tables' bit for bit on every target: every length to 300 and some
// long ones, each from every offset within 16 bytes and continuing from a random checksum; and a
// checksum taken in pieces of odd sizes is the one taken at once.
TEST(SimdKernels, Crc32FoldingMatchesTheTables) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(70000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (size_t n : {1023, 1024, 4097, 65543}) lengths.push_back(n);
  const int targets = ForEachKernelTarget([&] {
    for (size_t n : lengths)
      for (size_t off = 0; off < 16; ++off) {
        const auto start = static_cast<uint32_t>(rng());
        ASSERT_EQ(simd::Crc32(buf.data() + off, n, start), ref::Crc32(buf.data() + off, n, start))
            << n << " bytes from offset " << off;
      }
    uint32_t pieces = 0;
    size_t pos = 0;
    for (size_t piece : {1, 63, 64, 65, 1000, 17, 4096, 129}) {
      pieces = simd::Crc32(buf.data() + pos, piece, pieces);
      pos += piece;
    }
    EXPECT_EQ(pieces, ref::Crc32(buf.data(), pos));
  });
  EXPECT_GE(targets, 1);
}

// The SIMD mask is the scalar twin's bit for bit: lengths around every vector width, counters
// that wrap past 2^64, probabilities from tiny to 1; and it keeps about 1 - p of a long run.
// On every instruction set the library is built for that this CPU runs (AVX2 and the 128-bit
// ones build the 64-bit products from 32-bit ones; AVX-512 has the instruction).
TEST(DropoutKernels, SimdEqualsReference) {
  EXPECT_GE(ForEachKernelTarget(CheckDropoutKernel), 2);  // a vector target and the baseline
}

void CheckDropoutKernel() {
  std::mt19937_64 rng(9);
  for (double p : {1e-9, 0.1, 0.3, 0.5, 0.9, 1.0}) {
    const uint64_t threshold = ref::DropoutThreshold(p);
    const float keep_scale = p >= 1.0 ? 0.0f : static_cast<float>(1.0 / (1.0 - p));
    for (int64_t n : {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 4099}) {
      for (uint64_t base : {uint64_t{0}, rng(), ~uint64_t{0} - 20}) {
        const uint64_t seed = rng();
        const std::vector<float> x = RandomFloats(n, -2.0f, 2.0f, static_cast<unsigned>(seed));
        std::vector<float> s_simd(n), o_simd(n), s_ref(n), o_ref(n);
        simd::Dropout(seed, base, threshold, keep_scale, x.data(), s_simd.data(), o_simd.data(), n);
        ref::Dropout(seed, base, threshold, keep_scale, x.data(), s_ref.data(), o_ref.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(s_simd[i], s_ref[i]) << "p " << p << " n " << n << " i " << i;
          ASSERT_EQ(o_simd[i], o_ref[i]) << "p " << p << " n " << n << " i " << i;
        }
      }
    }
    const int64_t n = 200000;
    std::vector<float> x(n, 1.0f), scale(n), out(n);
    simd::Dropout(123, 456, threshold, keep_scale, x.data(), scale.data(), out.data(), n);
    int64_t kept = 0;
    for (float v : scale) kept += v != 0.0f;
    if (p >= 1.0) {
      EXPECT_EQ(kept, 0);
    } else {
      // Binomial: 6 standard deviations.
      const double sd = std::sqrt(n * p * (1 - p));
      EXPECT_NEAR(static_cast<double>(kept), n * (1 - p), 6 * sd + 1) << "p " << p;
    }
  }
}

// Adam's SIMD update is the scalar twin's bit for bit, on every built target this CPU runs:
// Adam, L2 decay, AdamW, amsgrad (with NaN in the running maximum and in the gradient), lengths
// around the vector widths, several steps in a row.
void CheckAdamKernel() {
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int variant = 0; variant < 4; ++variant) {
    ref::AdamArgs<float> a;
    a.neg_step_size = -1e-3f / (1 - 0.9f);
    a.bc2_sqrt = std::sqrt(1 - 0.999f);
    a.eps = 1e-8f;
    a.beta1 = 0.9f;
    a.one_minus_beta1 = 1 - 0.9f;
    a.beta2 = 0.999f;
    a.one_minus_beta2 = 1 - 0.999f;
    a.weight_decay = 0.01f;
    a.shrink = 1 - 1e-3f * 0.01f;
    a.l2 = variant == 1;
    a.decoupled = variant == 2;
    const bool amsgrad = variant == 3;
    for (int64_t n : {1, 5, 15, 16, 17, 33, 100, 1000}) {
      std::vector<float> p(n), g(n), m(n), v(n), vmax(n);
      for (int64_t i = 0; i < n; ++i) {
        p[i] = u(rng);
        m[i] = 0.1f * u(rng);
        v[i] = 0.01f * std::fabs(u(rng));
        vmax[i] = i % 7 == 3 ? std::nanf("") : 0.01f * std::fabs(u(rng));
      }
      std::vector<float> ps = p, ms = m, vs = v, vmaxs = vmax;
      for (int step = 0; step < 3; ++step) {
        for (int64_t i = 0; i < n; ++i) g[i] = i % 11 == 5 && step == 1 ? std::nanf("") : u(rng);
        simd::AdamUpdate(a, ps.data(), g.data(), ms.data(), vs.data(),
                         amsgrad ? vmaxs.data() : nullptr, n);
        ref::AdamUpdate(a, p.data(), g.data(), m.data(), v.data(), amsgrad ? vmax.data() : nullptr,
                        n);
        for (int64_t i = 0; i < n; ++i) {
          // Same bits (NaN where the twin has NaN): p, m, v, vmax.
          const float want[] = {p[i], m[i], v[i], amsgrad ? vmax[i] : 0.0f};
          const float got[] = {ps[i], ms[i], vs[i], amsgrad ? vmaxs[i] : 0.0f};
          for (int k = 0; k < 4; ++k) {
            if (std::isnan(want[k])) {
              ASSERT_TRUE(std::isnan(got[k])) << "variant " << variant << " i " << i << " k " << k;
            } else {
              ASSERT_EQ(want[k], got[k]) << "variant " << variant << " i " << i << " k " << k;
            }
          }
        }
      }
    }
  }
}

// The largest relative error of y against exact(x) in double, and where; each value passes to
// check(x, y, exact) as well. Records it as the test property `name` + the target's name.
template <class Exact, class Check>
double WorstRelativeError(const std::vector<float>& x, const std::vector<float>& y, Exact exact,
                          Check check, const std::string& name) {
  double worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = exact(static_cast<double>(x[i]));
    const double rel = std::abs(static_cast<double>(y[i]) - e) / e;
    if (!(rel <= worst)) {
      worst = rel;
      worst_x = x[i];
    }
    check(x[i], y[i], e);
  }
  char measured[48];
  std::snprintf(measured, sizeof(measured), "%.3g at %.6g", worst, static_cast<double>(worst_x));
  ::testing::Test::RecordProperty(name + simd::TargetName(), measured);
  return worst;
}

// The attention softmax's exp against exp in double: a grid of 2^-12 over its whole range
// [-87, 88], random points, and the edges; exactly 1 at 0, exactly 0 below -87 and at -inf, and a
// NaN stays a NaN (on the x86 vector targets). On every instruction set (the 128-bit and scalar
// ones have no fused multiply-add, so they round twice per polynomial step).
void CheckFastExp() {
  std::vector<float> x;
  for (int64_t i = -87 * 4096; i <= 88 * 4096; ++i) x.push_back(static_cast<float>(i) / 4096.0f);
  for (float f : RandomFloats(1 << 16, -87.0f, 88.0f, 11)) x.push_back(f);
  for (float f : {-87.0f, std::nextafter(-87.0f, 0.0f), 88.0f, -0.0f, 1e-30f, -1e-30f, FLT_MIN,
                  -FLT_TRUE_MIN, 0.34657359f, -0.34657359f})
    x.push_back(f);
  std::vector<float> y(x.size());
  simd::FastExp(x.data(), y.data(), static_cast<int64_t>(x.size()));
  const double worst = WorstRelativeError(
      x, y, [](double v) { return std::exp(v); }, [](float, float, double) {},
      "fast_exp_max_rel_error_");
  EXPECT_LE(worst, simd::kFastExpMaxRelError);

  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> edges = {0.0f,     -0.0f,   std::nextafter(-87.0f, -inf),
                              -87.5f,   -100.0f, -1e30f,
                              -FLT_MAX, -inf,    std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> out(edges.size());
  simd::FastExp(edges.data(), out.data(), static_cast<int64_t>(edges.size()));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f);
  for (size_t i = 2; i + 1 < edges.size(); ++i) EXPECT_EQ(out[i], 0.0f) << "x = " << edges[i];
  // x86's min and max return their second operand when one is NaN; the portable baselines may
  // not.
  const std::string target = simd::TargetName();
  if (target.rfind("AVX", 0) == 0) {
    EXPECT_TRUE(std::isnan(out.back()));
  }
}

TEST(SimdKernels, FastExpWithinItsBoundOnEveryTarget) {
  EXPECT_GE(ForEachKernelTarget(CheckFastExp), 2);
}

// The fused kernels' 2^x against exp2 in double, as CheckFastExp: a grid of 2^-12 over
// [-126, 127], random points and the edges; exactly 1 at 0 and exactly a power of two at whole
// x, exactly 0 below -126 and at -inf; every result a normal float or 0.
void CheckFastExp2() {
  std::vector<float> x;
  for (int64_t i = -126 * 4096; i <= 127 * 4096; ++i) x.push_back(static_cast<float>(i) / 4096.0f);
  for (float f : RandomFloats(1 << 16, -126.0f, 127.0f, 12)) x.push_back(f);
  for (float f : {-126.0f, std::nextafter(-126.0f, 0.0f), 127.0f, -0.0f, 1e-30f, -1e-30f, 0.5f,
                  -0.5f, std::nextafter(-0.5f, 0.0f), std::nextafter(-0.5f, -1.0f)})
    x.push_back(f);
  std::vector<float> y(x.size());
  simd::FastExp2(x.data(), y.data(), static_cast<int64_t>(x.size()));
  int bad = 0;  // reported once each: a sweep of 10^6 points would print each failure
  const double worst = WorstRelativeError(
      x, y, [](double v) { return std::exp2(v); },
      [&bad](float xi, float yi, double e) {
        const bool whole = xi == std::nearbyint(xi);
        if ((!std::isnormal(yi) || (whole && yi != static_cast<float>(e))) && bad++ == 0) {
          ADD_FAILURE() << "2^" << xi << " = " << yi << " (want " << e
                        << "): not a normal float, or not exact at a whole x";
        }
      },
      "fast_exp2_max_rel_error_");
  EXPECT_EQ(bad, 0);
  EXPECT_LE(worst, simd::kFastExp2MaxRelError);

  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> edges = {0.0f,     -0.0f, std::nextafter(-126.0f, -inf), -126.5f, -1000.0f,
                              -FLT_MAX, -inf};
  std::vector<float> out(edges.size());
  simd::FastExp2(edges.data(), out.data(), static_cast<int64_t>(edges.size()));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f);
  for (size_t i = 2; i < edges.size(); ++i) EXPECT_EQ(out[i], 0.0f) << "x = " << edges[i];
}

TEST(SimdKernels, FastExp2WithinItsBoundOnEveryTarget) {
  EXPECT_GE(ForEachKernelTarget(CheckFastExp2), 2);
}

// Whether two results are the same float bit for bit, or both NaN (whatever their payloads).
bool SameBitsOrBothNaN(float a, float b) {
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

// The fused softmaxes' FastExp2 for x <= 127, which leaves out a clamp or two, against FastExp2
// bit for bit over [-140, 127], on random points, at the clamp and far below it (-inf, -FLT_MAX),
// and NaN stays NaN exactly where FastExp2 gives NaN; on every target.
void CheckFastExp2Below128() {
  std::vector<float> x;
  for (int64_t i = -140 * 1024; i <= 127 * 1024; ++i) x.push_back(static_cast<float>(i) / 1024.0f);
  for (float f : RandomFloats(1 << 16, -130.0f, 127.0f, 14)) x.push_back(f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {-inf, -FLT_MAX, -1e30f, -1e6f, -0.0f, 1e-30f, -1e-30f,
                  std::nextafter(-126.0f, -inf), std::nextafter(-126.0f, 0.0f),
                  std::nextafter(127.0f, 0.0f), std::numeric_limits<float>::quiet_NaN()})
    x.push_back(f);
  std::vector<float> want(x.size()), got(x.size());
  simd::FastExp2(x.data(), want.data(), static_cast<int64_t>(x.size()));
  simd::FastExp2Below128(x.data(), got.data(), static_cast<int64_t>(x.size()));
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!SameBitsOrBothNaN(want[i], got[i]) && bad++ < 3)
      ADD_FAILURE() << "2^" << x[i] << ": FastExp2Below128 " << got[i] << ", FastExp2 " << want[i]
                    << " on " << simd::TargetName();
  }
  EXPECT_EQ(bad, 0);
}

TEST(SimdKernels, FastExp2Below128IsFastExp2OnEveryTarget) {
  EXPECT_GE(ForEachKernelTarget(CheckFastExp2Below128), 2);
}

// AVX-512 computes FastExp's and FastExp2's p * 2^n with vscalefps (and FastExp2's round(x) with
// vrndscaleps) where AVX2 adds n into the exponent field: the results are the same bits, over
// both functions' ranges, beyond them, at their edges and on random points (NaN stays NaN).
TEST(SimdKernels, FastExpsAreTheSameBitsOnAvx512AndAvx2) {
  if (!(hwy::SupportedTargets() & HWY_AVX3) || !(hwy::SupportedTargets() & HWY_AVX2))
    GTEST_SKIP() << "needs a CPU with AVX-512 (compares its kernels with AVX2's)";
  std::vector<float> x;
  for (int64_t i = -140 * 1024; i <= 140 * 1024; ++i) x.push_back(static_cast<float>(i) / 1024.0f);
  for (float f : RandomFloats(1 << 16, -130.0f, 130.0f, 13)) x.push_back(f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {-inf, inf, -FLT_MAX, FLT_MAX, -1e30f, 1e30f, -0.0f, 1e-30f, -1e-30f,
                  std::nextafter(-126.0f, -inf), std::nextafter(-87.0f, -inf),
                  std::numeric_limits<float>::quiet_NaN()})
    x.push_back(f);
  const auto run = [&](int64_t target, auto fn) {
    hwy::SetSupportedTargetsForTest(target);
    EXPECT_EQ(std::string(simd::TargetName()), hwy::TargetName(target));
    std::vector<float> y(x.size());
    fn(x.data(), y.data(), static_cast<int64_t>(x.size()));
    hwy::SetSupportedTargetsForTest(0);
    return y;
  };
  const auto same = [&](const std::vector<float>& a, const std::vector<float>& b, const char* f) {
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!SameBitsOrBothNaN(a[i], b[i]) && bad++ < 3)
        ADD_FAILURE() << f << "(" << x[i] << "): AVX-512 " << a[i] << ", AVX2 " << b[i];
    }
    EXPECT_EQ(bad, 0) << f;
  };
  same(run(HWY_AVX3, simd::FastExp2), run(HWY_AVX2, simd::FastExp2), "FastExp2");
  same(run(HWY_AVX3, simd::FastExp), run(HWY_AVX2, simd::FastExp), "FastExp");
}

TEST(OptimKernels, AdamSimdEqualsReference) { EXPECT_GE(ForEachKernelTarget(CheckAdamKernel), 2); }

TEST(SimdKernels, DispatchPicksATarget) { EXPECT_NE(std::string(simd::TargetName()), ""); }

}  // namespace
}  // namespace attend::cpu
