// Fused scaled dot-product attention: against the unfused composition (values and gradients,
// masks, causal, odd sizes, the single-query split, dropout), f64 finite differences, the scalar
// reference against the Highway kernel, and MultiHeadAttention's fused path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attention/fused_internal.h"
#include "backend/cpu/reference/attention_kernels.h"
#include "backend/cpu/simd/attention_kernels.h"
#include "support/gradcheck.h"

namespace attend::attention {
namespace {

using gradcheck::GradCheck;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;

constexpr int64_t kBq = cpu::simd::kSdpaQueryBlock;
constexpr int64_t kBk = cpu::simd::kSdpaKeyBlock;

// max |a - b| / max |b| over the tensor (0 when both are all zero).
double RelError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<double> x = a.To(DType::kF64).ToVector<double>();
  const std::vector<double> y = b.To(DType::kF64).ToVector<double>();
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return scale == 0.0 ? diff : diff / scale;
}

// Bernoulli(p) padding mask [B, Tk] from a fixed seed; batch rows listed in `all_masked` exclude
// every key.
Tensor PaddingMask(int64_t b, int64_t tk, double p, uint64_t seed,
                   const std::vector<int64_t>& all_masked = {}) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<bool> m(b * tk);
  for (int64_t i = 0; i < b * tk; ++i) m[i] = u(rng) < p;
  for (int64_t r : all_masked)
    for (int64_t j = 0; j < tk; ++j) m[r * tk + j] = true;
  return Tensor::FromVector(m, Shape{b, tk});
}

struct Case {
  std::string name;
  int64_t b, h, tq, tk, d, dv;
  double pad_p = 0.0;                    // padding probability (0: no mask)
  std::vector<int64_t> all_masked = {};  // batch rows whose keys are all excluded
  bool causal = false;
  bool three_d = false;  // q, k, v as [B, T, D] (h must be 1)
  bool strided = false;  // q, k, v as transposed views of [B, T, H, D]
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

struct Inputs {
  Tensor q, k, v, mask, w;  // w: cotangent of the output
};

Inputs MakeInputs(const Case& c, DType dt = DType::kF32) {
  Generator gen(17);
  Inputs in;
  auto make = [&](int64_t t, int64_t dim) {
    if (c.three_d) return Tensor::Randn({c.b, t, dim}, gen, dt);
    if (c.strided) return Tensor::Randn({c.b, t, c.h, dim}, gen, dt).Transpose(1, 2);
    return Tensor::Randn({c.b, c.h, t, dim}, gen, dt);
  };
  // Leaves that require grad: the strided ones are views, so the leaf is their base.
  in.q = make(c.tq, c.d);
  in.k = make(c.tk, c.d);
  in.v = make(c.tk, c.dv);
  in.w = c.three_d ? Tensor::Randn({c.b, c.tq, c.dv}, gen, dt)
                   : Tensor::Randn({c.b, c.h, c.tq, c.dv}, gen, dt);
  if (c.pad_p > 0.0 || !c.all_masked.empty())
    in.mask = PaddingMask(c.b, c.tk, c.pad_p, 99, c.all_masked);
  return in;
}

// The unfused composition's mask: padding [B, Tk] broadcast over heads and queries.
Tensor CompositionMask(const Case& c, const Tensor& mask) {
  if (!mask.defined()) return Tensor();
  return c.three_d ? mask.View({c.b, 1, c.tk}) : mask.View({c.b, 1, 1, c.tk});
}

struct Result {
  Tensor out, dq, dk, dv;
};

Result RunFused(const Case& c, const Inputs& in, double dropout = 0.0, Generator* gen = nullptr) {
  Tensor q = in.q.Detach().set_requires_grad(true), k = in.k.Detach().set_requires_grad(true),
         v = in.v.Detach().set_requires_grad(true);
  Tensor out =
      FusedScaledDotProductAttention(q, k, v, in.mask, c.causal, dropout, dropout > 0, gen);
  out.Backward(in.w);
  return {out.Detach(), q.grad(), k.grad(), v.grad()};
}

Result RunComposition(const Case& c, const Inputs& in, double dropout = 0.0,
                      Generator* gen = nullptr) {
  Tensor q = in.q.Detach().set_requires_grad(true), k = in.k.Detach().set_requires_grad(true),
         v = in.v.Detach().set_requires_grad(true);
  Tensor out = ScaledDotProductAttention(q, k, v, CompositionMask(c, in.mask), c.causal, dropout,
                                         dropout > 0, gen)
                   .context;
  out.Backward(in.w);
  return {out.Detach(), q.grad(), k.grad(), v.grad()};
}

// f32 against f32: both sides round differently (blocked online softmax vs one softmax), well
// inside 1e-5 of the largest element.
constexpr double kRelTol = 1e-5;

void ExpectSame(const Result& fused, const Result& comp) {
  EXPECT_LE(RelError(fused.out, comp.out), kRelTol) << "output";
  EXPECT_LE(RelError(fused.dq, comp.dq), kRelTol) << "dq";
  EXPECT_LE(RelError(fused.dk, comp.dk), kRelTol) << "dk";
  EXPECT_LE(RelError(fused.dv, comp.dv), kRelTol) << "dv";
}

class FusedAttentionVsComposition : public ::testing::TestWithParam<Case> {};

TEST_P(FusedAttentionVsComposition, OutputsAndGradients) {
  const Case& c = GetParam();
  const Inputs in = MakeInputs(c);
  ExpectSame(RunFused(c, in), RunComposition(c, in));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FusedAttentionVsComposition,
    ::testing::Values(
        Case{"OneBlock", 2, 3, 20, 20, 16, 16},
        Case{"BlocksAndTails", 2, 2, kBq + 5, 2 * kBk + 3, 32, 32},
        Case{"OddHeadDims", 1, 2, 67, 131, 13, 7}, Case{"TqDiffersFromTk", 2, 2, 37, 150, 24, 40},
        Case{"Padding", 3, 2, 50, 150, 16, 16, 0.3},
        Case{"PaddingWholeBlocks", 2, 2, 30, 3 * kBk, 16, 16, 0.9},
        Case{"FullyMaskedBatchRow", 3, 2, 20, 90, 8, 8, 0.2, {1}},
        Case{"Causal", 2, 2, 130, 130, 16, 16, 0.0, {}, true},
        Case{"CausalTqBelowTk", 1, 2, 40, 200, 16, 16, 0.0, {}, true},
        Case{"CausalTqAboveTkHasEmptyRows", 1, 2, 150, 70, 16, 24, 0.0, {}, true},
        Case{"PaddingAndCausal", 2, 3, 100, 100, 32, 16, 0.3, {}, true},
        Case{"SingleQueryLongKeysSplit", 2, 3, 1, 1000, 64, 64, 0.2},
        Case{"SingleQueryCausal", 1, 2, 1, 777, 32, 32, 0.0, {}, true},
        Case{"SingleQueryAllMasked", 2, 1, 1, 600, 16, 16, 0.1, {0}},
        // The decoding path: one query, short keys, no dropout (padding, a fully masked row,
        // head dims off the vector width).
        Case{"DecodeShortKeysPadded", 3, 4, 1, 23, 64, 64, 0.3, {2}},
        Case{"DecodeOddDims", 2, 3, 1, 9, 13, 7},
        Case{"DecodeStrided", 2, 3, 1, 17, 16, 16, 0.2, {}, false, false, true},
        Case{"ThreeD", 2, 1, 45, 77, 20, 12, 0.2, {}, false, true},
        Case{"StridedLikeMultiHead", 2, 4, 70, 90, 16, 16, 0.1, {}, true, false, true},
        // Whole key blocks of v read in place with the row stride of [B, T, H, Dv] (the forward
        // reads v where Dv is a whole number of vectors), the last block from the packed copy.
        Case{"StridedWholeKeyBlocks", 2, 3, 70, 2 * kBk + 9, 32, 32, 0.1, {}, false, false, true},
        Case{"StridedWholeKeyBlocksCausal",
             1,
             2,
             2 * kBk,
             2 * kBk,
             16,
             48,
             0.0,
             {},
             true,
             false,
             true},
        // Large enough for threads: many heads, and one head (backward splits its key blocks).
        Case{"ThreadedHeads", 2, 4, 256, 256, 64, 64, 0.1, {}, true},
        Case{"ThreadedOneHead", 1, 1, 300, 500, 64, 64, 0.1}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(FusedAttention, FullyMaskedRowsGiveZeroOutputAndGradient) {
  const Case c{"masked", 2, 2, 30, 70, 8, 8, 0.0, {0}};
  const Inputs in = MakeInputs(c);
  const Result r = RunFused(c, in);
  for (const Tensor& t : {r.out, r.dq, r.dk, r.dv}) {
    const std::vector<float> x = t.Select(0, 0).Contiguous().ToVector<float>();
    EXPECT_TRUE(std::all_of(x.begin(), x.end(), [](float f) { return f == 0.0f; }));
    const std::vector<float> y = t.Select(0, 1).Contiguous().ToVector<float>();
    EXPECT_TRUE(std::any_of(y.begin(), y.end(), [](float f) { return f != 0.0f; }));
  }
}

// The fused kernel draws the counters Dropout would draw for the weights [B, H, Tq, Tk], so two
// generators in the same state give the composition's exact dropout mask.
TEST(FusedAttention, DropoutMatchesCompositionWithTheSameCounters) {
  for (const Case& c : {Case{"drop", 2, 3, 70, 130, 16, 16, 0.2, {}, true},
                        Case{"drop_split", 2, 2, 1, 900, 32, 32, 0.1}}) {
    const Inputs in = MakeInputs(c);
    Generator g1(123), g2(123);
    g1.Reserve(5);
    g2.Reserve(5);
    const Result fused = RunFused(c, in, 0.3, &g1);
    const Result comp = RunComposition(c, in, 0.3, &g2);
    EXPECT_EQ(g1.offset(), g2.offset()) << c.name;
    ExpectSame(fused, comp);
    // Dropout changed something: the result differs from the one without it.
    EXPECT_GT(RelError(fused.out, RunFused(c, in).out), 1e-2) << c.name;
  }
}

TEST(FusedAttention, DropoutWithoutGeneratorIsAnError) {
  const Case c{"g", 1, 1, 4, 4, 4, 4};
  const Inputs in = MakeInputs(c);
  EXPECT_THAT(ThrownMessage([&] {
                FusedScaledDotProductAttention(in.q, in.k, in.v, Tensor(), false, 0.5, true);
              }),
              HasSubstr("needs a Generator"));
}

TEST(FusedAttention, ChecksShapes) {
  Generator gen(1);
  Tensor q = Tensor::Randn({2, 3, 5, 8}, gen), k = Tensor::Randn({2, 3, 7, 8}, gen);
  Tensor v = Tensor::Randn({2, 3, 7, 4}, gen);
  EXPECT_THAT(ThrownMessage([&] {
                FusedScaledDotProductAttention(q, Tensor::Randn({2, 3, 7, 6}, gen), v);
              }),
              HasSubstr("do not fit"));
  EXPECT_THAT(ThrownMessage([&] {
                FusedScaledDotProductAttention(q, k, v, Tensor::Zeros({2, 5}, DType::kBool));
              }),
              HasSubstr("key_padding_mask bool[2, 5] must be bool [2, 7]"));
  EXPECT_THAT(ThrownMessage([&] { FusedScaledDotProductAttention(q, k, v.Select(1, 0)); }),
              HasSubstr("must all be"));
  EXPECT_THAT(ThrownMessage([&] { FusedScaledDotProductAttention(q, k, v.To(DType::kF64)); }),
              HasSubstr("share one floating dtype"));
}

// ---- Gathered: query rows over shared keys (beam search's hypotheses over their sentence) ------

// GatheredScaledDotProductAttention reads batch rows[n] of k, v and the mask in place: the same
// numbers, bit for bit, as the fused op over the gathered copies, on every kernel path (single
// query, single query split over long keys, tiled), in f32 (Highway) and f64 (scalar).
TEST(GatheredAttention, EqualsTheFusedOpOverGatheredCopies) {
  struct G {
    int64_t n, b, h, tq, tk, d, dv;
  };
  NoGradGuard no_grad;
  for (DType dt : {DType::kF32, DType::kF64})
    for (const G& g : {G{7, 3, 4, 1, 23, 16, 16}, G{5, 2, 2, 1, 1500, 32, 24},
                       G{4, 3, 2, 70, 140, 16, 8}, G{1, 1, 1, 1, 1, 8, 8}}) {
      Generator gen(9);
      const Tensor q = Tensor::Randn({g.n, g.h, g.tq, g.d}, gen).To(dt);
      // k and v as views into a larger cache (strided over the position axis), as decoding holds.
      const Tensor k = Tensor::Randn({g.b, g.h, g.tk + 3, g.d}, gen).To(dt).Narrow(2, 0, g.tk);
      const Tensor v = Tensor::Randn({g.b, g.h, g.tk + 3, g.dv}, gen).To(dt).Narrow(2, 0, g.tk);
      Tensor mask = PaddingMask(g.b, g.tk, 0.3, 5);
      std::vector<int64_t> r(static_cast<size_t>(g.n));
      std::mt19937 rng(static_cast<unsigned>(g.n * 31 + g.tk));
      for (int64_t& x : r) x = static_cast<int64_t>(rng() % static_cast<unsigned>(g.b));
      const Tensor rows = Tensor::FromVector(r, {g.n});
      for (const Tensor& m : {Tensor(), mask}) {
        const Tensor got = GatheredScaledDotProductAttention(q, k, v, m, rows);
        const Tensor want =
            FusedScaledDotProductAttention(q, IndexSelect(k, 0, rows), IndexSelect(v, 0, rows),
                                           m.defined() ? IndexSelect(m, 0, rows) : Tensor());
        ASSERT_EQ(got.shape(), Shape({g.n, g.h, g.tq, g.dv}));
        EXPECT_EQ(got.To(DType::kF64).ToVector<double>(), want.To(DType::kF64).ToVector<double>())
            << DTypeName(dt) << " n " << g.n << " tq " << g.tq << " tk " << g.tk
            << (m.defined() ? " masked" : "");
      }
    }
}

// The Highway kernel and its scalar twin agree with kv_batch set too.
TEST(GatheredAttention, SimdKernelMatchesScalarReference) {
  for (int64_t tq : {int64_t{1}, int64_t{70}}) {
    cpu::SdpaArgs a;
    a.batch = 5, a.heads = 2, a.tq = tq, a.tk = 90, a.d = 16, a.dv = 8;
    a.scale = 0.25;
    const int64_t kb = 3;  // batches of k and v
    a.q_stride[0] = a.heads * tq * a.d, a.q_stride[1] = tq * a.d, a.q_stride[2] = a.d;
    a.k_stride[0] = a.heads * a.tk * a.d, a.k_stride[1] = a.tk * a.d, a.k_stride[2] = a.d;
    a.v_stride[0] = a.heads * a.tk * a.dv, a.v_stride[1] = a.tk * a.dv, a.v_stride[2] = a.dv;
    Generator gen(4);
    const std::vector<float> q = Tensor::Randn({a.batch * a.q_stride[0]}, gen).ToVector<float>();
    const std::vector<float> k = Tensor::Randn({kb * a.k_stride[0]}, gen).ToVector<float>();
    const std::vector<float> v = Tensor::Randn({kb * a.v_stride[0]}, gen).ToVector<float>();
    const std::vector<bool> bits = PaddingMask(kb, a.tk, 0.4, 6).ToVector<bool>();
    std::unique_ptr<bool[]> mask(new bool[bits.size()]);
    std::copy(bits.begin(), bits.end(), mask.get());
    const std::vector<int64_t> kv = {2, 0, 2, 1, 1};
    a.key_padding = mask.get();
    a.kv_batch = kv.data();
    const size_t outs = static_cast<size_t>(a.batch * a.heads * tq);
    std::vector<float> out_s(outs * a.dv), out_r(outs * a.dv), lse_s(outs), lse_r(outs);
    cpu::simd::SdpaForward(a, q.data(), k.data(), v.data(), out_s.data(), lse_s.data());
    cpu::ref::SdpaForward(a, q.data(), k.data(), v.data(), out_r.data(), lse_r.data());
    for (size_t i = 0; i < out_s.size(); ++i)
      ASSERT_NEAR(out_s[i], out_r[i], 2e-6 * (1.0 + std::abs(out_r[i]))) << "tq " << tq << " " << i;
    for (size_t i = 0; i < lse_s.size(); ++i)
      ASSERT_NEAR(lse_s[i], lse_r[i], 1e-6 * (1.0 + std::abs(lse_r[i]))) << "tq " << tq << " " << i;
  }
}

TEST(GatheredAttention, ChecksRowsShapesAndGradients) {
  Generator gen(1);
  Tensor q = Tensor::Randn({4, 2, 1, 8}, gen), k = Tensor::Randn({2, 2, 7, 8}, gen);
  Tensor v = Tensor::Randn({2, 2, 7, 8}, gen);
  auto rows = [](std::vector<int64_t> r) {
    return Tensor::FromVector(r, {static_cast<int64_t>(r.size())});
  };
  NoGradGuard no_grad;
  EXPECT_THAT(ThrownMessage([&] {
                GatheredScaledDotProductAttention(q, k, v, {}, rows({0, 1}));
              }),
              HasSubstr("rows must be i64 [4]"));
  EXPECT_THAT(ThrownMessage([&] {
                GatheredScaledDotProductAttention(q, k, v, {}, rows({0, 1, 2, 0}));
              }),
              HasSubstr("rows[2] = 2 is outside [0, 2)"));
  EXPECT_THAT(ThrownMessage([&] {
                GatheredScaledDotProductAttention(q, k, v, Tensor::Zeros({4, 7}, DType::kBool),
                                                  rows({0, 1, 1, 0}));
              }),
              HasSubstr("must be bool [2, 7]"));
  EXPECT_THAT(ThrownMessage([&] {
                GatheredScaledDotProductAttention(q, k.Narrow(3, 0, 4), v, {}, rows({0, 1, 1, 0}));
              }),
              HasSubstr("do not fit"));
  {
    GradMode::set_enabled(true);
    Tensor qg = q.Detach();
    qg.set_requires_grad(true);
    EXPECT_THAT(ThrownMessage([&] {
                  GatheredScaledDotProductAttention(qg, k, v, {}, rows({0, 1, 1, 0}));
                }),
                HasSubstr("inference only"));
    GradMode::set_enabled(false);
  }
}

// ---- f64: finite differences through the scalar path -------------------------------------------

TEST(FusedAttentionGradCheck, MasksCausalAndDropout) {
  struct G {
    int64_t b, h, tq, tk, d, dv;
    bool pad, causal;
    double dropout;
  };
  for (const G& g : {G{1, 2, 5, 7, 3, 4, false, false, 0.0}, G{2, 1, 6, 6, 4, 3, true, true, 0.0},
                     G{2, 2, 4, 9, 3, 2, true, false, 0.4}, G{1, 1, 1, 11, 5, 5, true, true, 0.0},
                     G{1, 2, 8, 5, 3, 3, false, true, 0.0}}) {
    Tensor mask = g.pad ? PaddingMask(g.b, g.tk, 0.3, 5, {}) : Tensor();
    auto fn = [&](const std::vector<Tensor>& x) {
      Generator gen(11);  // the same dropout mask at every evaluation
      return FusedScaledDotProductAttention(x[0], x[1], x[2], mask, g.causal, g.dropout,
                                            g.dropout > 0, &gen);
    };
    EXPECT_TRUE(GradCheck(fn, {gradcheck::RandomUniform({g.b, g.h, g.tq, g.d}, 1),
                               gradcheck::RandomUniform({g.b, g.h, g.tk, g.d}, 2),
                               gradcheck::RandomUniform({g.b, g.h, g.tk, g.dv}, 3)}))
        << "b " << g.b << " tq " << g.tq << " tk " << g.tk << " causal " << g.causal;
  }
}

// ---- the Highway kernel against the scalar reference -------------------------------------------

struct RawCase {
  int64_t b, h, tq, tk, d, dv;
  double pad_p;
  bool causal;
  double dropout;
};

TEST(FusedAttentionKernel, SimdMatchesScalarReference) {
  for (const RawCase& rc :
       {RawCase{2, 2, 70, 140, 16, 16, 0.0, false, 0.0},
        RawCase{1, 3, 65, 65, 13, 21, 0.3, true, 0.0},
        RawCase{2, 1, 100, 30, 8, 8, 0.0, true, 0.25},
        RawCase{3, 2, 1, 1000, 64, 32, 0.2, false, 0.1},
        RawCase{1, 1, 200, 333, 64, 64, 0.1, true, 0.0},
        // Single-query decoding (no dropout): whole, odd and short sizes.
        RawCase{3, 2, 1, 37, 64, 64, 0.3, false, 0.0}, RawCase{2, 3, 1, 9, 13, 7, 0.0, false, 0.0},
        RawCase{1, 2, 1, 1, 16, 80, 0.0, false, 0.0}}) {
    cpu::SdpaArgs a;
    a.batch = rc.b, a.heads = rc.h, a.tq = rc.tq, a.tk = rc.tk, a.d = rc.d, a.dv = rc.dv;
    a.causal = rc.causal;
    a.scale = 1.0 / std::sqrt(static_cast<double>(rc.d));
    a.dropout = rc.dropout;
    a.seed = 77;
    a.offset = 1000;
    const int64_t bh = rc.b * rc.h;
    // Contiguous q, k, v.
    a.q_stride[0] = rc.h * rc.tq * rc.d, a.q_stride[1] = rc.tq * rc.d, a.q_stride[2] = rc.d;
    a.k_stride[0] = rc.h * rc.tk * rc.d, a.k_stride[1] = rc.tk * rc.d, a.k_stride[2] = rc.d;
    a.v_stride[0] = rc.h * rc.tk * rc.dv, a.v_stride[1] = rc.tk * rc.dv, a.v_stride[2] = rc.dv;
    Generator gen(3);
    const std::vector<float> q = Tensor::Randn({bh * rc.tq * rc.d}, gen).ToVector<float>();
    const std::vector<float> k = Tensor::Randn({bh * rc.tk * rc.d}, gen).ToVector<float>();
    const std::vector<float> v = Tensor::Randn({bh * rc.tk * rc.dv}, gen).ToVector<float>();
    const std::vector<float> g = Tensor::Randn({bh * rc.tq * rc.dv}, gen).ToVector<float>();
    std::vector<bool> mask_bits;
    std::unique_ptr<bool[]> mask;
    if (rc.pad_p > 0.0) {
      mask_bits = PaddingMask(rc.b, rc.tk, rc.pad_p, 8).ToVector<bool>();
      mask.reset(new bool[mask_bits.size()]);
      std::copy(mask_bits.begin(), mask_bits.end(), mask.get());
      a.key_padding = mask.get();
    }
    std::vector<float> out_s(bh * rc.tq * rc.dv), lse_s(bh * rc.tq), out_r(out_s.size()),
        lse_r(lse_s.size());
    cpu::simd::SdpaForward(a, q.data(), k.data(), v.data(), out_s.data(), lse_s.data());
    cpu::ref::SdpaForward(a, q.data(), k.data(), v.data(), out_r.data(), lse_r.data());
    auto rel = [](const std::vector<float>& x, const std::vector<float>& y) {
      double diff = 0, scale = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        if (std::isinf(y[i]) || std::isinf(x[i])) {
          if (x[i] != y[i]) return 1.0;
          continue;
        }
        diff = std::max(diff, std::abs(double(x[i]) - y[i]));
        scale = std::max(scale, std::abs(double(y[i])));
      }
      return scale == 0 ? diff : diff / scale;
    };
    EXPECT_LE(rel(out_s, out_r), 2e-6) << "out, tq " << rc.tq << " tk " << rc.tk;
    EXPECT_LE(rel(lse_s, lse_r), 1e-6) << "lse, tq " << rc.tq << " tk " << rc.tk;
    std::vector<float> dq_s(q.size()), dk_s(k.size()), dv_s(v.size());
    std::vector<float> dq_r(q.size()), dk_r(k.size()), dv_r(v.size());
    cpu::simd::SdpaBackward(a, q.data(), k.data(), v.data(), out_r.data(), g.data(), lse_r.data(),
                            dq_s.data(), dk_s.data(), dv_s.data());
    cpu::ref::SdpaBackward(a, q.data(), k.data(), v.data(), out_r.data(), g.data(), lse_r.data(),
                           dq_r.data(), dk_r.data(), dv_r.data());
    EXPECT_LE(rel(dq_s, dq_r), 5e-6) << "dq, tq " << rc.tq << " tk " << rc.tk;
    EXPECT_LE(rel(dk_s, dk_r), 5e-6) << "dk, tq " << rc.tq << " tk " << rc.tk;
    EXPECT_LE(rel(dv_s, dv_r), 5e-6) << "dv, tq " << rc.tq << " tk " << rc.tk;
  }
}

TEST(FusedAttentionKernel, SingleQueryDecodingSplitsLongKeys) {
  EXPECT_EQ(cpu::simd::SdpaSplitChunks(2, 100000), 1);
  EXPECT_EQ(cpu::simd::SdpaSplitChunks(1, kBk), 1);
  EXPECT_GT(cpu::simd::SdpaSplitChunks(1, 1000), 1);
  EXPECT_LE(cpu::simd::SdpaSplitChunks(1, 1 << 20), 16);
}

// ---- MultiHeadAttention -------------------------------------------------------------------------

TEST(FusedAttention, MultiHeadAttentionWithoutWeightsTakesTheFusedPath) {
  Generator gen(5);
  MultiHeadAttention mha(32, 4, gen, 0.25);
  // 130 x 130 (query, key) pairs per head: at least MultiHeadAttention::kFusedMinPairs, so the
  // fused kernel runs once no weights are wanted (below it the composition runs: checked last).
  Tensor x = Tensor::Randn({2, 130, 32}, gen), mem = Tensor::Randn({2, 130, 32}, gen);
  Tensor pad = PaddingMask(2, 130, 0.2, 4);
  Tensor w = Tensor::Randn({2, 130, 32}, gen);
  ASSERT_GE(130 * 130, MultiHeadAttention::kFusedMinPairs);
  for (bool training : {false, true}) {
    mha.Train(training);
    for (bool causal : {false, true}) {
      const uint64_t seed = mha.gen.seed(), offset = mha.gen.offset();
      mha.ZeroGrad();
      Attended with = mha.Forward(x, mem, mem, pad, Tensor(), causal);
      Sum(with.context * w).Backward();
      const Tensor grad_with = mha.in_proj_weight.grad();
      ASSERT_TRUE(with.weights.defined());

      mha.gen.set_state(seed, offset);  // the same dropout counters
      mha.ZeroGrad();
      const uint64_t calls = internal::FusedSdpaCalls();
      Attended without = mha.Forward(x, mem, mem, pad, Tensor(), causal, true, false);
      EXPECT_EQ(internal::FusedSdpaCalls(), calls + 1);
      EXPECT_FALSE(without.weights.defined());
      Sum(without.context * w).Backward();
      EXPECT_LE(RelError(without.context, with.context), kRelTol);
      EXPECT_LE(RelError(mha.in_proj_weight.grad(), grad_with), kRelTol);
    }
  }
  // An arbitrary attn_mask needs the composition: no weights, but no fused call either.
  mha.Train(false);
  const uint64_t calls = internal::FusedSdpaCalls();
  Attended am = mha.Forward(x, x, x, Tensor(), CausalMask(130, 130), false, true, false);
  EXPECT_EQ(internal::FusedSdpaCalls(), calls);
  EXPECT_FALSE(am.weights.defined());
  EXPECT_LE(RelError(am.context, mha.Forward(x, x, x, Tensor(), Tensor(), true).context), kRelTol);
  // A small problem (70 x 90 pairs) runs the composition, which gives the same result: the one
  // rule, MultiHeadAttention::UsesFusedKernel, that the Transformer's layers follow too.
  Tensor xs = Tensor::Randn({2, 70, 32}, gen), ms = Tensor::Randn({2, 90, 32}, gen);
  EXPECT_FALSE(mha.UsesFusedKernel(70, 90, /*need_weights=*/false));
  EXPECT_TRUE(mha.UsesFusedKernel(1, 90, /*need_weights=*/false));  // a decoding step (eval)
  const uint64_t before_small = internal::FusedSdpaCalls();
  Attended small = mha.Forward(xs, ms, ms, Tensor(), Tensor(), false, true, false);
  EXPECT_EQ(internal::FusedSdpaCalls(), before_small);
  EXPECT_LE(RelError(small.context, mha.Forward(xs, ms, ms).context), kRelTol);
}

}  // namespace
}  // namespace attend::attention
