// Fused additive (Bahdanau) attention: against the unfused composition (values and gradients),
// f64 finite differences, the Highway kernels against the scalar reference on every compiled
// target, the fast tanh's error bound, and that AdditiveScore takes the fused path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attend/additive_attention.h"
#include "attend/attention.h"
#include "attend/autograd.h"
#include "autograd/node.h"
#include "backend/cpu/reference/additive_kernels.h"
#include "backend/cpu/simd/additive_kernels.h"
#include "backend/cpu/simd/elementwise_kernels.h"
#include "hwy/targets.h"
#include "support/gradcheck.h"
#include "support/random.h"

namespace attend::attention {
namespace {

using attend::testing::RandomFloats;

using gradcheck::GradCheck;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Runs the Highway kernels on one instruction set for its lifetime (then back to the best one).
class TargetScope {
 public:
  explicit TargetScope(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
  ~TargetScope() { hwy::SetSupportedTargetsForTest(0); }
};

// The targets libattend is built for (AVX-512, AVX2 and the scalar baseline) that this CPU runs:
// a candidate counts when selecting it makes the library's dispatcher report it.
std::vector<int64_t> KernelTargets() {
  std::vector<int64_t> out;
  for (int64_t t :
       {int64_t{HWY_AVX3}, int64_t{HWY_AVX2}, int64_t{HWY_EMU128}, int64_t{HWY_SCALAR}}) {
    if (!(hwy::SupportedTargets() & t)) continue;
    TargetScope scope(t);
    if (std::string(cpu::simd::TargetName()) == hwy::TargetName(t)) out.push_back(t);
  }
  return out;
}

TEST(AdditiveAttention, KernelsAreTestedOnTheBestAndTheBaselineTargets) {
  const std::vector<int64_t> targets = KernelTargets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(hwy::TargetName(targets.front()), std::string(cpu::simd::TargetName()));
  EXPECT_GE(targets.size(), 2u);  // a vector target and the scalar baseline at least
}

// The unfused composition the fused op replaces: v^T tanh(qp[:, :, None] + kp[:, None]).
Tensor Unfused(const Tensor& qp, const Tensor& kp, const Tensor& v) {
  return Matmul(Tanh(Add(qp.Unsqueeze(2), kp.Unsqueeze(1))), v);  // [B, Tq, Tk]
}

double MaxAbs(const Tensor& t) {
  double m = 0;
  for (double x : t.To(DType::kF64).ToVector<double>()) m = std::max(m, std::abs(x));
  return m;
}

// ||got - want||_inf <= rtol * ||want||_inf (relative error of the whole tensor).
::testing::AssertionResult RelClose(const Tensor& got, const Tensor& want, double rtol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shapes " << got.str() << " vs " << want.str();
  const std::vector<double> a = got.To(DType::kF64).ToVector<double>();
  const std::vector<double> b = want.To(DType::kF64).ToVector<double>();
  double diff = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > diff) {
      diff = std::abs(a[i] - b[i]);
      at = i;
    }
  }
  const double scale = MaxAbs(want);
  if (diff <= rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |difference| " << diff << " at flat index " << at << " (" << a[at] << " vs "
         << b[at] << ") exceeds " << rtol << " x max |reference| " << scale;
}

struct Case {
  int64_t nb, nq, nk, na;
  double range;  // query_proj and key_proj drawn from U(-range, range)
};

// Fused against unfused in f32: outputs and the gradients of all three inputs for a random
// cotangent, within 1e-5 relative. Returns a description for failure messages.
void CheckAgainstComposition(const Case& c, uint64_t seed) {
  SCOPED_TRACE("B=" + std::to_string(c.nb) + " Tq=" + std::to_string(c.nq) +
               " Tk=" + std::to_string(c.nk) + " A=" + std::to_string(c.na) +
               " range=" + std::to_string(c.range));
  const Tensor qp0 = RandomUniform({c.nb, c.nq, c.na}, seed, -c.range, c.range).To(DType::kF32);
  const Tensor kp0 = RandomUniform({c.nb, c.nk, c.na}, seed + 1, -c.range, c.range).To(DType::kF32);
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(c.na, 1)));
  const Tensor v0 = RandomUniform({c.na}, seed + 2, -bound, bound).To(DType::kF32);
  const Tensor w = RandomUniform({c.nb, c.nq, c.nk}, seed + 3).To(DType::kF32);
  Tensor outs[2], grads[2][3];
  for (int fused = 0; fused < 2; ++fused) {
    Tensor qp = qp0.Clone().set_requires_grad(true);
    Tensor kp = kp0.Clone().set_requires_grad(true);
    Tensor v = v0.Clone().set_requires_grad(true);
    outs[fused] = fused ? FusedAdditiveScores(qp, kp, v) : Unfused(qp, kp, v);
    Sum(Mul(outs[fused], w)).Backward();
    grads[fused][0] = qp.grad();
    grads[fused][1] = kp.grad();
    grads[fused][2] = v.grad();
  }
  EXPECT_TRUE(RelClose(outs[1], outs[0], 1e-5)) << "scores";
  const char* names[] = {"d query_proj", "d key_proj", "d v"};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(grads[1][i].defined()) << names[i];
    EXPECT_TRUE(RelClose(grads[1][i], grads[0][i], 1e-5)) << names[i];
  }
}

TEST(AdditiveAttention, FastTanhWithinItsBoundOnEveryTarget) {
  // Every float in [-12, 12] on a grid of 2^-13, plus the extremes and the saturation region
  // where the bound is tightest (|x| near 8.6), against std::tanh in double.
  std::vector<float> x;
  for (int64_t i = -12 * 8192; i <= 12 * 8192; ++i) x.push_back(static_cast<float>(i) / 8192.0f);
  for (float s : {1.0f, -1.0f}) {
    for (float m : {0.0f, FLT_MIN, FLT_TRUE_MIN, 1e-30f, 1e-8f, 8.5f, 8.6f, 8.7f, 9.0f, 9.0001f,
                    30.0f, 1e30f, FLT_MAX, std::numeric_limits<float>::infinity()})
      x.push_back(s * m);
  }
  std::vector<float> fine = RandomFloats(1 << 16, 8.0f, 9.5f, 7);
  for (float f : fine) {
    x.push_back(f);
    x.push_back(-f);
  }
  std::vector<float> y(x.size());
  for (int64_t target : KernelTargets()) {
    TargetScope scope(target);
    cpu::simd::FastTanh(x.data(), y.data(), static_cast<int64_t>(x.size()));
    double worst = 0;
    float worst_x = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double e = std::abs(double(y[i]) - std::tanh(double(x[i])));
      if (!(e <= worst)) {
        worst = e;
        worst_x = x[i];
      }
    }
    EXPECT_LE(worst, cpu::simd::kFastTanhMaxError)
        << "on " << hwy::TargetName(target) << " at x = " << worst_x;
    char measured[32];
    std::snprintf(measured, sizeof(measured), "%.3g at %.6g", worst, double(worst_x));
    RecordProperty(std::string("max_error_") + hwy::TargetName(target), measured);
  }
}

TEST(AdditiveAttention, MatchesTheUnfusedCompositionInF32) {
  const Case cases[] = {
      {2, 3, 5, 7, 1.5},     // everything odd and smaller than a vector
      {3, 1, 13, 37, 1.5},   // one decoder step; Tk % 4 != 0; A % 16 != 0
      {1, 1, 1, 1, 1.5},     // a single pair
      {2, 1, 32, 128, 1.0},  // the decoder's shape
      {2, 4, 9, 128, 1.0},  {1, 2, 31, 100, 2.0},
      {4, 2, 6, 16, 1.5},                          // A exactly one AVX-512 vector
      {2, 5, 17, 33, 1.5},  {2, 3, 11, 24, 12.0},  // saturated tanh: the clamp and the flat tails
  };
  uint64_t seed = 100;
  for (const Case& c : cases) CheckAgainstComposition(c, seed += 10);
}

TEST(AdditiveAttention, MatchesTheUnfusedCompositionWhenThreaded) {
  // Large enough for the threaded kernels: many items (split over items) and a single item
  // (queries split, each thread its own dk), with odd Tk and A.
  const int saved = GetNumThreads();
  SetNumThreads(2);
  CheckAgainstComposition({8, 8, 41, 130, 1.5}, 500);
  CheckAgainstComposition({1, 33, 70, 130, 1.5}, 600);
  CheckAgainstComposition({3, 40, 27, 129, 1.5}, 700);  // 1 < B < ... items < threads x 2
  SetNumThreads(saved);
}

// An RNN decoder's use: one key_proj that every step reads, a query per step. From the second
// step on, the kernel adds the keys' gradient into the engine's running sum (accumulate_dk).
// Against the unfused composition in f32 (key_proj a leaf and an op's output: both have a running
// sum), and the gradient check in f64.
Tensor DecoderSteps(const Tensor& queries, const Tensor& kp, const Tensor& v, const Tensor& w,
                    bool fused) {
  Tensor loss;
  for (int64_t t = 0; t < queries.size(1); ++t) {
    const Tensor q = queries.Narrow(1, t, 1);  // [B, 1, A]
    const Tensor s = fused ? FusedAdditiveScores(q, kp, v) : Unfused(q, kp, v);
    const Tensor term = Sum(Mul(s, w.Narrow(1, t, 1)));
    loss = loss.defined() ? Add(loss, term) : term;
  }
  return loss;
}

TEST(AdditiveAttention, KeysReadByManyStepsGetTheirSummedGradient) {
  for (const bool projected : {false, true}) {
    SCOPED_TRACE(projected ? "key_proj an op's output" : "key_proj a leaf");
    const Tensor q0 = RandomUniform({3, 5, 37}, 41, -1.5, 1.5).To(DType::kF32);
    const Tensor k0 = RandomUniform({3, 11, 37}, 42, -1.5, 1.5).To(DType::kF32);
    const Tensor v0 = RandomUniform({37}, 43, -0.2, 0.2).To(DType::kF32);
    const Tensor w = RandomUniform({3, 5, 11}, 44).To(DType::kF32);
    Tensor grads[2][3];
    for (int fused = 0; fused < 2; ++fused) {
      Tensor q = q0.Clone().set_requires_grad(true), k = k0.Clone().set_requires_grad(true);
      Tensor v = v0.Clone().set_requires_grad(true);
      const Tensor kp = projected ? MulScalar(k, 1.5) : k;
      DecoderSteps(q, kp, v, w, fused != 0).Backward();
      grads[fused][0] = q.grad(), grads[fused][1] = k.grad(), grads[fused][2] = v.grad();
    }
    const char* names[] = {"d queries", "d key_proj", "d v"};
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(grads[1][i].defined()) << names[i];
      EXPECT_TRUE(RelClose(grads[1][i], grads[0][i], 1e-5)) << names[i];
    }
  }
  const Tensor w = RandomUniform({2, 4, 3}, 54);
  EXPECT_TRUE(GradCheck(
      [&w](const std::vector<Tensor>& in) {
        return DecoderSteps(in[0], MulScalar(in[1], 1.5), in[2], w, true);
      },
      {RandomUniform({2, 4, 5}, 51, -1.5, 1.5), RandomUniform({2, 3, 5}, 52, -1.5, 1.5),
       RandomUniform({5}, 53)}));
}

TEST(AdditiveAttention, EmptyShapes) {
  for (const Case& c :
       {Case{2, 3, 0, 5, 1}, Case{2, 0, 4, 5, 1}, Case{0, 2, 3, 4, 1}, Case{2, 3, 4, 0, 1}}) {
    Tensor qp = RandomUniform({c.nb, c.nq, c.na}, 1).To(DType::kF32).set_requires_grad(true);
    Tensor kp = RandomUniform({c.nb, c.nk, c.na}, 2).To(DType::kF32).set_requires_grad(true);
    Tensor v = RandomUniform({c.na}, 3).To(DType::kF32).set_requires_grad(true);
    Tensor s = FusedAdditiveScores(qp, kp, v);
    EXPECT_EQ(s.shape(), Shape({c.nb, c.nq, c.nk}));
    for (float x : s.ToVector<float>()) EXPECT_EQ(x, 0.0f);  // A = 0: an empty sum
    Sum(s).Backward();
    EXPECT_EQ(qp.grad().shape(), qp.shape());
    EXPECT_EQ(kp.grad().shape(), kp.shape());
    EXPECT_EQ(v.grad().shape(), v.shape());
  }
}

TEST(AdditiveAttention, NonContiguousInputs) {
  // key_proj as a transposed view, query_proj as a narrowed one: the op copies them to rows.
  Tensor qfull = RandomUniform({2, 3, 20}, 11).To(DType::kF32);
  Tensor kt = RandomUniform({2, 19, 7}, 12).To(DType::kF32);
  Tensor v = RandomUniform({19}, 13).To(DType::kF32);
  Tensor qp = qfull.Narrow(2, 1, 19);  // [2, 3, 19]
  Tensor kp = kt.Transpose(1, 2);      // [2, 7, 19]
  EXPECT_TRUE(RelClose(FusedAdditiveScores(qp, kp, v), Unfused(qp, kp, v), 1e-5));
}

TEST(AdditiveAttention, GradCheckF64) {
  for (const Case& c : {Case{2, 3, 5, 4, 1.5}, Case{1, 1, 3, 2, 1.5}, Case{2, 2, 1, 3, 3.0}}) {
    EXPECT_TRUE(GradCheck(
        [](const std::vector<Tensor>& in) { return FusedAdditiveScores(in[0], in[1], in[2]); },
        {RandomUniform({c.nb, c.nq, c.na}, 21, -c.range, c.range),
         RandomUniform({c.nb, c.nk, c.na}, 22, -c.range, c.range), RandomUniform({c.na}, 23)}));
  }
}

TEST(AdditiveAttention, F64MatchesTheComposition) {
  Tensor qp = RandomUniform({2, 4, 9}, 31), kp = RandomUniform({2, 6, 9}, 32);
  Tensor v = RandomUniform({9}, 33);
  EXPECT_TRUE(RelClose(FusedAdditiveScores(qp, kp, v), Unfused(qp, kp, v), 1e-13));
}

// Per-element error bounds of the f32 kernels against the double reference: each tanh is off by
// at most e = kFastTanhMaxError (so 1 - tanh^2 by at most 2e), and a sum of n terms in f32 by at
// most about n ulp of the sum of their magnitudes (the factor 2 leaves room for the products).
double SumBound(double magnitude_sum, int64_t n, double per_term) {
  return magnitude_sum * (per_term + 2.0 * (n + 16) * FLT_EPSILON);
}

TEST(AdditiveAttention, SimdKernelsMatchTheScalarReferenceOnEveryTarget) {
  const double e = cpu::simd::kFastTanhMaxError;
  struct Dims {
    int64_t nb, nq, nk, na;
  };
  for (const Dims z : {Dims{2, 3, 7, 5}, Dims{1, 1, 9, 17}, Dims{3, 2, 13, 40}, Dims{2, 5, 4, 128},
                       Dims{1, 6, 21, 129}}) {
    const auto q = RandomFloats(z.nb * z.nq * z.na, -2, 2, 1);
    const auto k = RandomFloats(z.nb * z.nk * z.na, -2, 2, 2);
    const auto v = RandomFloats(z.na, -0.5f, 0.5f, 3);
    const auto g = RandomFloats(z.nb * z.nq * z.nk, -1, 1, 4);
    std::vector<float> s_ref(z.nb * z.nq * z.nk), dq_ref(q.size()), dk_ref(k.size(), 0.0f),
        dv_ref(z.na, 0.0f);
    for (int64_t b = 0; b < z.nb; ++b) {
      cpu::ref::AdditiveScoresForward(q.data() + b * z.nq * z.na, k.data() + b * z.nk * z.na,
                                      v.data(), s_ref.data() + b * z.nq * z.nk, z.nq, z.nk, z.na);
      cpu::ref::AdditiveScoresBackward(
          q.data() + b * z.nq * z.na, k.data() + b * z.nk * z.na, v.data(),
          g.data() + b * z.nq * z.nk, dq_ref.data() + b * z.nq * z.na,
          dk_ref.data() + b * z.nk * z.na, dv_ref.data(), z.nq, z.nk, z.na);
    }
    double sum_abs_v = 0;
    for (float x : v) sum_abs_v += std::abs(x);
    for (int64_t target : KernelTargets()) {
      for (int threads : {1, 2}) {
        SCOPED_TRACE(std::string(hwy::TargetName(target)) + ", threads " + std::to_string(threads) +
                     ", A=" + std::to_string(z.na));
        TargetScope scope(target);
        std::vector<float> s(s_ref.size()), dq(q.size()), dk(k.size(), 7.0f), dv(z.na, 7.0f);
        cpu::simd::AdditiveScoresForward(q.data(), k.data(), v.data(), s.data(), z.nb, z.nq, z.nk,
                                         z.na, threads);
        cpu::simd::AdditiveScoresBackward(q.data(), k.data(), v.data(), g.data(), dq.data(),
                                          dk.data(), dv.data(), z.nb, z.nq, z.nk, z.na, threads);
        // accumulate_dk: the same gradient added into what dk holds (here: the gradient itself).
        std::vector<float> dq2(q.size()), dk2(dk), dv2(z.na);
        cpu::simd::AdditiveScoresBackward(q.data(), k.data(), v.data(), g.data(), dq2.data(),
                                          dk2.data(), dv2.data(), z.nb, z.nq, z.nk, z.na, threads,
                                          true);
        const double tol_s = SumBound(sum_abs_v, z.na, e);
        for (size_t i = 0; i < s.size(); ++i) ASSERT_NEAR(s[i], s_ref[i], tol_s) << "s at " << i;
        for (int64_t b = 0; b < z.nb; ++b) {
          for (int64_t a = 0; a < z.na; ++a) {
            for (int64_t t = 0; t < z.nq; ++t) {
              double gs = 0;
              for (int64_t j = 0; j < z.nk; ++j) gs += std::abs(g[(b * z.nq + t) * z.nk + j]);
              const size_t i = (b * z.nq + t) * z.na + a;
              ASSERT_NEAR(dq[i], dq_ref[i], std::abs(v[a]) * SumBound(gs, z.nk, 2 * e))
                  << "dq at " << i;
            }
            for (int64_t j = 0; j < z.nk; ++j) {
              double gs = 0;
              for (int64_t t = 0; t < z.nq; ++t) gs += std::abs(g[(b * z.nq + t) * z.nk + j]);
              const size_t i = (b * z.nk + j) * z.na + a;
              ASSERT_NEAR(dk[i], dk_ref[i], std::abs(v[a]) * SumBound(gs, z.nq, 2 * e))
                  << "dk at " << i;
              ASSERT_NEAR(dk2[i], dk[i] + dk_ref[i],
                          2 * std::abs(v[a]) * SumBound(gs, z.nq, 2 * e) +
                              2 * FLT_EPSILON * std::abs(dk[i]))
                  << "dk accumulated at " << i;
            }
          }
        }
        double gs_all = 0;
        for (float x : g) gs_all += std::abs(x);
        for (int64_t a = 0; a < z.na; ++a)
          ASSERT_NEAR(dv[a], dv_ref[a], SumBound(gs_all, z.nb * z.nq * z.nk, e)) << "dv at " << a;
      }
    }
  }
}

TEST(AdditiveAttention, AdditiveScoreTakesTheFusedPath) {
  Generator gen(5);
  AdditiveScore score(/*query_dim=*/12, /*key_dim=*/10, /*attn_dim=*/256, gen);
  Tensor query = Tensor::Randn({2, 64, 12}, gen);
  Tensor keys = Tensor::Randn({2, 64, 10}, gen);
  // The unfused composition would hold [2, 64, 64, 256] floats (8 MiB) at least twice (the sum
  // and its tanh); everything the fused path allocates is under 1 MiB.
  const uint64_t intermediate_bytes = 2ull * 64 * 64 * 256 * sizeof(float);
  EmptyCache();
  ResetPeakBytes();
  const uint64_t before = GetAllocatorStats().bytes_in_use;
  Tensor s = score.Forward(query, keys);  // [2, 64, 64]
  ASSERT_TRUE(s.grad_fn());
  EXPECT_STREQ(s.grad_fn()->name(), "FusedAdditiveScores");
  Sum(s).Backward();
  EXPECT_LT(GetAllocatorStats().peak_bytes_in_use - before, intermediate_bytes / 8);
  // And it is the same function of the module's parameters as the composition.
  Tensor pk = score.PrepareKeys(keys);
  Tensor wq = score.query_proj->Forward(query);
  EXPECT_TRUE(RelClose(s, Unfused(wq, pk, score.v), 1e-5));
  // Decoder-style use: one query step against keys prepared once.
  Tensor step = score.Scores(query.Narrow(1, 5, 1), pk);  // [2, 1, 64]
  EXPECT_EQ(step.shape(), Shape({2, 1, 64}));
  EXPECT_TRUE(RelClose(step, Unfused(wq.Narrow(1, 5, 1), pk, score.v), 1e-5));
}

TEST(AdditiveAttention, ErrorsNameTheOpAndShapes) {
  Tensor q = Tensor::Zeros({2, 3, 4}), k = Tensor::Zeros({2, 5, 4}), v = Tensor::Zeros({4});
  EXPECT_THAT(
      ThrownMessage([&] {
        FusedAdditiveScores(q, Tensor::Zeros({3, 5, 4}), v);
      }),
      AllOf(HasSubstr("FusedAdditiveScores"), HasSubstr("[2, 3, 4]"), HasSubstr("[3, 5, 4]")));
  EXPECT_THAT(ThrownMessage([&] { FusedAdditiveScores(q, k, Tensor::Zeros({5})); }),
              AllOf(HasSubstr("FusedAdditiveScores"), HasSubstr("[5]")));
  EXPECT_THAT(ThrownMessage([&] {
                FusedAdditiveScores(q, Tensor::Zeros({2, 5, 6}), v);
              }),
              AllOf(HasSubstr("FusedAdditiveScores"), HasSubstr("[2, 5, 6]")));
  EXPECT_THAT(ThrownMessage([&] { FusedAdditiveScores(q.To(DType::kF64), k, v); }),
              AllOf(HasSubstr("FusedAdditiveScores"), HasSubstr("dtypes differ")));
  EXPECT_THAT(ThrownMessage([&] { FusedAdditiveScores(q.Flatten(0, 1), k, v); }),
              AllOf(HasSubstr("FusedAdditiveScores"), HasSubstr("[6, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                FusedAdditiveScores(Tensor::Zeros({2, 3, 4}, DType::kI64), k, v);
              }),
              HasSubstr("FusedAdditiveScores"));
}

}  // namespace
}  // namespace attend::attention
