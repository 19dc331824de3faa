// Attention mechanisms: PyTorch comparisons, f64 finite-difference gradients, and properties
// (normalisation, masking, sparsity, windows, hard attention, REINFORCE, Gumbel, causality,
// errors).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"

namespace attend::attention {
namespace {

using gradcheck::GradCheck;
using gradcheck::GradCheckMulti;
using gradcheck::Mask;
using gradcheck::RandomDistinct;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::Named;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::vector<double> F64(const Tensor& t) { return t.To(DType::kF64).ToVector<double>(); }
std::vector<bool> Bools(const Tensor& t) { return t.Contiguous().ToVector<bool>(); }

// ============================================================================================
// (1) Against PyTorch: tests/reference/attention_reference.py writes the cases (op keys and input
// orders are listed in its docstring).
// ============================================================================================

const reference::LoadedCases& Cases() {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "attention_reference.bin", "tests/reference/attention_reference.py");
  return loaded;
}

// One case run through attend. sources[i] is the tensor whose .grad is torch's dx<i>: the input
// itself, or the module parameter it was copied into.
struct Replay {
  std::vector<Tensor> outputs;
  std::vector<Tensor> sources;
  // Accumulation lengths for reference::Tolerance (atol scales with them): the longest chain of
  // sums behind one forward element, and behind one gradient element.
  double n_forward = 1, n_backward = 1;
  std::shared_ptr<nn::Module> module;  // keeps the parameters alive
};

// Copies x[first], x[first + 1], .. into the module's parameters (NamedParameters order) and
// makes those parameters the gradient sources of the copied inputs.
void LoadParameters(nn::Module& m, std::vector<Tensor>& x, size_t first, Replay& r) {
  auto params = m.NamedParameters();
  if (first + params.size() > x.size())
    throw Error("attention reference: the case has fewer inputs than the module has parameters");
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& src = x[first + i];
    // CopyFrom would broadcast; a layout mismatch must fail loudly instead.
    if (params[i].second.shape() != src.shape())
      throw Error("attention reference: parameter " + params[i].first + " is " +
                  params[i].second.str() + " but the case gives " + src.str());
    NoGradGuard ng;
    params[i].second.CopyFrom(src);
    r.sources[first + i] = params[i].second;
  }
}

// The score module of a score case, with its parameters loaded from x[2..]; null for other ops.
std::shared_ptr<ScoreFunction> MakeScore(const reference::OpKey& key, std::vector<Tensor>& x,
                                         Replay& r) {
  static const char* const kScoreOps[] = {"additive", "dot",    "scaled_dot",
                                          "general",  "concat", "location",
                                          "cosine",   "mwan",   "cosine_strength"};
  const std::string& op = key.name();
  if (std::find(std::begin(kScoreOps), std::end(kScoreOps), op) == std::end(kScoreOps)) {
    return nullptr;
  }
  Generator gen(17);
  const DType dt = x[0].dtype();
  const int64_t dq = x[0].size(2), dk = x[1].size(2);
  std::shared_ptr<ScoreFunction> m;
  if (op == "additive") m = std::make_shared<AdditiveScore>(dq, dk, x[2].size(0), gen, dt);
  if (op == "dot") m = std::make_shared<DotScore>();
  if (op == "scaled_dot") m = std::make_shared<ScaledDotScore>();
  if (op == "general") m = std::make_shared<GeneralScore>(dq, dk, gen, dt);
  if (op == "concat") m = std::make_shared<ConcatScore>(dq, dk, x[3].size(0), gen, dt);
  if (op == "location") m = std::make_shared<LocationScore>(dq, key.Int("max_len"), gen, dt);
  if (op == "cosine") m = std::make_shared<CosineScore>(key.Double("beta"), key.Double("eps"));
  if (op == "cosine_strength") m = std::make_shared<CosineScore>(1.0, key.Double("eps"));
  if (op == "mwan") {
    const auto kind = key.Str("kind") == "dot" ? MwanScore::Kind::kDot : MwanScore::Kind::kMinus;
    m = std::make_shared<MwanScore>(kind, dq, x[2].size(0), gen, dt);
  }
  if (m) LoadParameters(*m, x, 2, r);
  r.module = m;
  return m;
}

// variant: the MHA cases with a causal mask run twice, once with causal=true (variant 0) and once
// with the mask passed as attn_mask (variant 1).
Replay ReplayCase(const RefCase& c, int variant) {
  const reference::OpKey key(c.op);
  const std::string& op = key.name();
  Replay r;
  std::vector<Tensor> x;
  for (int64_t i = 0; c.Find(Named("x", i)) != nullptr; ++i) {
    Tensor t = ToTensor(Ref(c, Named("x", i)));
    if (IsFloating(t.dtype())) t.set_requires_grad(true);
    x.push_back(t);
  }
  r.sources = x;
  const DType dt = x[0].dtype();
  auto opt = [&](size_t i) { return i < x.size() ? x[i] : Tensor(); };

  if (auto score = MakeScore(key, x, r)) {
    const int64_t b = x[0].size(0), tq = x[0].size(1), tk = x[1].size(1);
    // Forward: the feature contraction (Dq, Dk, A); backward: a parameter gradient sums over
    // all B·Tq·Tk scores, an input gradient over Tk (or Tq) times the feature size.
    r.n_forward = std::max({x[0].size(2), x[1].size(2), x.size() > 3 ? x[3].size(0) : int64_t{1}});
    r.n_backward = std::max<double>(b * tq * tk, r.n_forward * std::max(tq, tk));
    if (op == "cosine_strength") {
      r.outputs = {dynamic_cast<CosineScore&>(*score).ScoresWithStrength(x[0], x[1], x[2])};
    } else {
      r.outputs = {score->Forward(x[0], x[1])};
    }
  } else if (op == "match") {
    r.outputs = {MatchScore(x[0], x[1])};
    r.n_forward = x[0].size(2);
    r.n_backward = x[0].size(2) * std::max(x[0].size(1), x[1].size(1));
  } else if (op == "soft" || op == "topk" || op == "sparsemax") {
    const Tensor mask = key.Bool("mask") ? x[1] : Tensor();
    if (op == "soft") r.outputs = {SoftWeights(x[0], mask)};
    if (op == "topk") r.outputs = {TopKWeights(x[0], key.Int("k"), mask)};
    if (op == "sparsemax") r.outputs = {Sparsemax(x[0], mask)};
    r.n_forward = r.n_backward = x[0].size(-1);  // one row's sum
  } else if (op == "local_p") {
    Generator gen(18);
    auto m =
        std::make_shared<LocalPredictive>(x[1].size(2), x[2].size(0), key.Int("window"), gen, dt);
    r.module = m;
    LoadParameters(*m, x, 2, r);
    Tensor centers;
    Tensor w = m->Weights(x[0], x[1], key.Bool("lengths") ? x[4] : Tensor(), &centers);
    r.outputs = {w, centers};
    const int64_t b = x[0].size(0), tq = x[0].size(1), tk = x[0].size(2);
    r.n_forward = std::max({x[1].size(2), x[2].size(0), tk});
    r.n_backward = b * tq * tk;  // W_p and v gradients sum over every weight
  } else if (op == "sdpa") {
    Attended a = ScaledDotProductAttention(x[0], x[1], x[2], key.Bool("mask") ? x[3] : Tensor(),
                                           key.Bool("causal"));
    r.outputs = {a.context, a.weights};
    const int64_t d = x[0].size(-1), tq = x[0].size(-2), tk = x[1].size(-2);
    r.n_forward = d + tk;  // q·k, then the weighted sum over Tk
    r.n_backward = std::max(tq, tk) * (d + x[2].size(-1));
  } else if (op == "weighted_sum") {
    r.outputs = {WeightedSum(x[0], x[1])};
    r.n_forward = x[0].size(-1);
    r.n_backward = std::max(x[0].size(-2), x[1].size(-1));
  } else if (op == "mha") {
    const bool self = key.Bool("self"), bias = key.Bool("bias");
    const int64_t e = x[0].size(2), h = key.Int("heads");
    Generator gen(19);
    auto m = std::make_shared<MultiHeadAttention>(e, h, gen, 0.0, bias, dt);
    r.module = m;
    const size_t nseq = self ? 1 : 3;
    LoadParameters(*m, x, nseq, r);
    size_t next = nseq + m->NamedParameters().size();
    Tensor kpm = key.Bool("kpm") ? opt(next++) : Tensor();
    Tensor attn_mask = key.Str("am") != "none" ? opt(next++) : Tensor();
    bool causal = false;
    if (key.Bool("causal") && variant == 0) {
      attn_mask = Tensor();
      causal = true;
    }
    const Tensor& q = x[0];
    const Tensor& k = self ? x[0] : x[1];
    const Tensor& v = self ? x[0] : x[2];
    Attended a = m->Forward(q, k, v, kpm, attn_mask, causal, key.Bool("avg"));
    r.outputs = {a.context, a.weights};
    const int64_t b = q.size(0), tk = k.size(1);
    r.n_forward = e + tk + e;   // in-projection, the weighted sum, out-projection
    r.n_backward = b * tk * e;  // in_proj_weight's gradient sums over B·Tk rows of E products
  } else {
    throw Error("attention reference: unknown op " + c.op);
  }
  return r;
}

int Variants(const RefCase& c) {
  const reference::OpKey key(c.op);
  return key.name() == "mha" && key.Bool("causal") ? 2 : 1;
}

TEST(AttentionReference, MechanismsMatchTorch) {
  const auto& l = Cases();
  ASSERT_TRUE(l.error.empty()) << l.error;
  for (const RefCase& c : l.cases) {
    for (int variant = 0; variant < Variants(c); ++variant) {
      SCOPED_TRACE(c.name + (variant ? " (causal as attn_mask)" : ""));
      Replay r;
      try {
        r = ReplayCase(c, variant);
      } catch (const Error& e) {
        ADD_FAILURE() << "case " << c.name << " [" << c.op << "] threw: " << e.what();
        continue;
      }
      std::vector<Tensor> roots, grads;
      for (size_t i = 0; i < r.outputs.size(); ++i) {
        ExpectMatches(c, Named("output y", static_cast<int64_t>(i)), r.outputs[i],
                      Ref(c, Named("y", static_cast<int64_t>(i))), r.n_forward);
        if (const auto* dy = c.Find(Named("dy", static_cast<int64_t>(i)))) {
          ASSERT_TRUE(r.outputs[i].requires_grad()) << "output " << i << " has no history";
          roots.push_back(r.outputs[i]);
          grads.push_back(ToTensor(*dy));
        }
      }
      if (roots.empty()) continue;
      Backward(roots, grads);
      for (size_t i = 0; i < r.sources.size(); ++i) {
        const auto* want = c.Find(Named("dx", static_cast<int64_t>(i)));
        if (want == nullptr) continue;
        // An input the mechanism does not use (LocationScore's keys) gets no gradient; torch
        // reports zeros for it.
        Tensor got = r.sources[i].grad();
        if (!got.defined()) got = Tensor::Zeros(r.sources[i].shape(), r.sources[i].dtype());
        ExpectMatches(c, "gradient " + Named("dx", static_cast<int64_t>(i)), got, *want,
                      r.n_backward);
      }
    }
  }
  // Per dtype: 11 score cases, 3 soft, 4 top-k, 3 sparsemax, 2 local-p, 6 SDPA, 2 weighted sum
  // and 7 multi-head; a changed count means the generator and this test went out of step.
  EXPECT_EQ(l.cases.size(), 76u);
}

// The decoder's use of PrepareKeys: prepared once, then scored one query step at a time, gives
// torch's batched scores (and so attend's own batched call, compared above).
TEST(AttentionReference, PreparedKeysReusedPerStepMatchBatchedScores) {
  const auto& l = Cases();
  ASSERT_TRUE(l.error.empty()) << l.error;
  int checked = 0;
  for (const RefCase& c : l.cases) {
    const reference::OpKey key(c.op);
    if (key.name() != "additive" && key.name() != "general" && key.name() != "concat") continue;
    SCOPED_TRACE(c.name);
    Replay r;
    std::vector<Tensor> x;
    for (int64_t i = 0; c.Find(Named("x", i)) != nullptr; ++i) {
      x.push_back(ToTensor(Ref(c, Named("x", i))));
    }
    r.sources = x;
    auto score = MakeScore(key, x, r);
    NoGradGuard ng;
    const Tensor prepared = score->PrepareKeys(x[1]);
    std::vector<Tensor> steps;
    for (int64_t t = 0; t < x[0].size(1); ++t) {
      steps.push_back(score->Scores(x[0].Narrow(1, t, 1), prepared));
    }
    ExpectMatches(c, "step-by-step scores", Concat(steps, 1), Ref(c, "y0"), 7.0);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

// ============================================================================================
// (2) f64 finite-difference gradients, odd sizes (B=2, Tq=3, Tk=5, D=7 ...), with masks.
// ============================================================================================

constexpr int64_t kB = 2, kTq = 3, kTk = 5;

Tensor U(const Shape& s, uint64_t seed, double scale = 1.0) {
  return RandomUniform(s, seed, -scale, scale);
}

// A [2, 3, 5] mask with a partly masked row in every batch and row (1, 2) fully masked.
Tensor MaskWithEmptyRow() {
  return Mask(
      {0, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1},
      {kB, kTq, kTk});
}

TEST(AttentionGradCheck, AdditiveScore) {
  Generator gen(1);
  AdditiveScore m(4, 7, 6, gen, DType::kF64);
  auto fn = [&](const std::vector<Tensor>& x) {
    m.query_proj->weight = x[2];
    m.key_proj->weight = x[3];
    m.key_proj->bias = x[4];
    m.v = x[5];
    return m.Forward(x[0], x[1]);
  };
  EXPECT_TRUE(GradCheck(fn, {U({kB, kTq, 4}, 1), U({kB, kTk, 7}, 2), U({6, 4}, 3), U({6, 7}, 4),
                             U({6}, 5), U({6}, 6)}));
}

// Chorowski's location-aware score: every input and parameter, the convolution over the previous
// weights included (width 3 over 5 keys: the zero padding at both ends is exercised).
TEST(AttentionGradCheck, LocationAwareScore) {
  Generator gen(11);
  LocationAwareScore m(4, 7, 6, /*filters=*/2, /*width=*/3, gen, DType::kF64);
  auto fn = [&](const std::vector<Tensor>& x) {
    m.query_proj->weight = x[3];
    m.key_proj->weight = x[4];
    m.key_proj->bias = x[5];
    m.filters = x[6];
    m.location_proj->weight = x[7];
    m.v = x[8];
    return m.Scores(x[0], m.PrepareKeys(x[1]), x[2]);
  };
  EXPECT_TRUE(
      GradCheck(fn, {U({kB, 1, 4}, 31), U({kB, kTk, 7}, 32), U({kB, kTk}, 33), U({6, 4}, 34),
                     U({6, 7}, 35), U({6}, 36), U({2, 1, 3}, 37), U({6, 2}, 38), U({6}, 39)}));
}

TEST(LocationAwareScore, WithoutPreviousWeightsIsTheAdditiveScoreAndChecksShapes) {
  Generator gen(12);
  LocationAwareScore m(4, 7, 6, 2, 3, gen, DType::kF64);
  const Tensor q = U({kB, 1, 4}, 41), k = U({kB, kTk, 7}, 42);
  const Tensor pk = m.PrepareKeys(k);
  // Zero previous weights give zero location features: the content (additive) score remains.
  const Tensor zero = Tensor::Zeros({kB, kTk}, DType::kF64);
  EXPECT_EQ(F64(m.Scores(q, pk)), F64(m.Scores(q, pk, zero)));
  EXPECT_NE(F64(m.Scores(q, pk)), F64(m.Scores(q, pk, U({kB, kTk}, 43))));
  EXPECT_THAT(ThrownMessage([&] {
                m.Scores(U({kB, 2, 4}, 44), pk, zero);
              }),
              ::testing::HasSubstr("query must be one step"));
  EXPECT_THAT(ThrownMessage([&] {
                m.Scores(q, pk, Tensor::Zeros({kB, kTk + 1}, DType::kF64));
              }),
              ::testing::HasSubstr("previous weights"));
  EXPECT_THAT(ThrownMessage([&] { LocationAwareScore(4, 7, 6, 2, 4, gen); }),
              ::testing::HasSubstr("odd width"));
}

TEST(AttentionGradCheck, DotAndScaledDotScores) {
  DotScore dot;
  ScaledDotScore scaled;
  const std::vector<Tensor> in = {U({kB, kTq, 7}, 7), U({kB, kTk, 7}, 8)};
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return dot.Forward(x[0], x[1]); }, in));
  EXPECT_TRUE(
      GradCheck([&](const std::vector<Tensor>& x) { return scaled.Forward(x[0], x[1]); }, in));
}

TEST(AttentionGradCheck, GeneralScore) {
  Generator gen(2);
  GeneralScore m(4, 7, gen, DType::kF64);
  auto fn = [&](const std::vector<Tensor>& x) {
    m.weight = x[2];
    return m.Forward(x[0], x[1]);
  };
  EXPECT_TRUE(GradCheck(fn, {U({kB, kTq, 4}, 9), U({kB, kTk, 7}, 10), U({4, 7}, 11)}));
}

TEST(AttentionGradCheck, ConcatScore) {
  Generator gen(3);
  ConcatScore m(4, 7, 6, gen, DType::kF64);
  auto fn = [&](const std::vector<Tensor>& x) {
    m.weight = x[2];
    m.v = x[3];
    return m.Forward(x[0], x[1]);
  };
  EXPECT_TRUE(
      GradCheck(fn, {U({kB, kTq, 4}, 12), U({kB, kTk, 7}, 13), U({6, 11}, 14, 0.5), U({6}, 15)}));
}

TEST(AttentionGradCheck, LocationScore) {
  Generator gen(4);
  LocationScore m(4, 9, gen, DType::kF64);
  const Tensor keys = U({kB, kTk, 7}, 16);
  auto fn = [&](const std::vector<Tensor>& x) {
    m.proj->weight = x[1];
    m.proj->bias = x[2];
    return m.Forward(x[0], keys);
  };
  EXPECT_TRUE(GradCheck(fn, {U({kB, kTq, 4}, 17), U({9, 4}, 18), U({9}, 19)}));
}

TEST(AttentionGradCheck, CosineScoreFixedAndEmittedStrength) {
  CosineScore m(2.5);
  const std::vector<Tensor> qk = {U({kB, kTq, 7}, 20), U({kB, kTk, 7}, 21)};
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return m.Forward(x[0], x[1]); }, qk));
  auto with_beta = [&](const std::vector<Tensor>& x) {
    return m.ScoresWithStrength(x[0], x[1], x[2]);
  };
  EXPECT_TRUE(GradCheck(with_beta, {qk[0], qk[1], RandomUniform({kB, kTq}, 22, 0.5, 4.0)}));
}

TEST(AttentionGradCheck, MwanScores) {
  for (auto kind : {MwanScore::Kind::kDot, MwanScore::Kind::kMinus}) {
    SCOPED_TRACE(kind == MwanScore::Kind::kDot ? "dot" : "minus");
    Generator gen(5);
    MwanScore m(kind, 7, 6, gen, DType::kF64);
    auto fn = [&](const std::vector<Tensor>& x) {
      m.weight = x[2];
      m.v = x[3];
      return m.Forward(x[0], x[1]);
    };
    EXPECT_TRUE(
        GradCheck(fn, {U({kB, kTq, 7}, 23), U({kB, kTk, 7}, 24), U({6, 7}, 25, 0.6), U({6}, 26)}));
  }
}

TEST(AttentionGradCheck, MatchScore) {
  // Random points are far apart, away from the distance's kink at q == k.
  EXPECT_TRUE(GradCheck([](const std::vector<Tensor>& x) { return MatchScore(x[0], x[1]); },
                        {U({kB, kTq, 7}, 27), U({kB, kTk, 7}, 28)}));
}

TEST(AttentionGradCheck, SoftWeightsWithMasks) {
  const Tensor full = MaskWithEmptyRow();
  const Tensor bcast = Mask({0, 1, 0, 0, 1, 1, 0, 0, 1, 0}, {kB, 1, kTk});
  for (const Tensor& mask : {full, bcast, Tensor()}) {
    EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return SoftWeights(x[0], mask); },
                          {U({kB, kTq, kTk}, 29, 2.0)}));
  }
}

TEST(AttentionGradCheck, TopKWeightsWithMasks) {
  // Distinct scores: the selection does not change under the finite-difference step. Rows with
  // fewer unmasked positions than k, and the fully masked row, are included.
  const Tensor mask = MaskWithEmptyRow();
  for (int64_t k : {1, 2, 3}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return TopKWeights(x[0], k, mask); },
                          {RandomDistinct({kB, kTq, kTk}, 30 + k)}));
  }
}

// The smallest distance between an unmasked score and its row's threshold tau (tau = z - p on
// the support): the kinks of sparsemax that a finite difference must not straddle.
double SparsemaxKinkMargin(const Tensor& z, const Tensor& mask) {
  NoGradGuard ng;
  const Tensor p = Sparsemax(z, mask);
  const auto zv = F64(z), pv = F64(p);
  const auto mv = Bools(mask.Expand(z.shape()));
  const int64_t n = z.size(-1);
  double margin = 1e9;
  for (int64_t r = 0; r < z.numel() / n; ++r) {
    double tau = 0;
    bool any = false;
    for (int64_t j = 0; j < n; ++j)
      if (!mv[r * n + j] && pv[r * n + j] > 0) tau = zv[r * n + j] - pv[r * n + j], any = true;
    for (int64_t j = 0; any && j < n; ++j)
      if (!mv[r * n + j]) margin = std::min(margin, std::fabs(zv[r * n + j] - tau));
  }
  return margin;
}

TEST(AttentionGradCheck, SparsemaxWithMasks) {
  const Tensor mask = Mask({0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
                            0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                           {kB, kTq, 7});
  const Tensor z = MulScalar(RandomDistinct({kB, kTq, 7}, 35), 0.4);
  ASSERT_GT(SparsemaxKinkMargin(z, mask), 1e-4) << "pick another seed: a score sits on a kink";
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return Sparsemax(x[0], mask); }, {z}));
}

TEST(AttentionGradCheck, LocalPredictiveWeightsAndCentres) {
  Generator gen(6);
  const int64_t tk = 9, window = 2;
  LocalPredictive m(4, 5, window, gen, DType::kF64);
  const Tensor lengths = gradcheck::Indices({9, 6}, {kB});
  const std::vector<Tensor> in = {U({kB, kTq, tk}, 36), U({kB, kTq, 4}, 37), U({5, 4}, 38, 1.5),
                                  U({5}, 39, 1.5)};
  auto fn = [&](const std::vector<Tensor>& x) {
    m.proj->weight = x[2];
    m.v = x[3];
    Tensor centers;
    Tensor w = m.Weights(x[0], x[1], lengths, &centers);
    return std::vector<Tensor>{w, centers};
  };
  // The window edges |j - p| = D are kinks; the data must keep the centres away from them.
  {
    NoGradGuard ng;
    const auto p = F64(fn(in)[1]);
    for (double c : p)
      for (int64_t j = 0; j < tk; ++j)
        ASSERT_GT(std::fabs(std::fabs(j - c) - window), 1e-4) << "pick another seed";
  }
  EXPECT_TRUE(GradCheckMulti(fn, in));
}

TEST(AttentionGradCheck, ScaledDotProductAttentionPaddingAndCausal) {
  const Tensor pad = Mask({0, 0, 0, 1, 1, 0, 0, 0, 0, 1}, {kB, 1, kTk});
  for (bool causal : {false, true}) {
    SCOPED_TRACE(causal ? "causal" : "padding only");
    auto fn = [&](const std::vector<Tensor>& x) {
      Attended a = ScaledDotProductAttention(x[0], x[1], x[2], pad, causal);
      return std::vector<Tensor>{a.context, a.weights};
    };
    EXPECT_TRUE(
        GradCheckMulti(fn, {U({kB, kTq, 7}, 40), U({kB, kTk, 7}, 41), U({kB, kTk, 3}, 42)}));
  }
  // Heads as a leading dim, and a fully masked row (zero weights, zero gradient).
  Tensor rows = MaskWithEmptyRow().Unsqueeze(1);  // [B, 1, Tq, Tk]
  auto fn4 = [&](const std::vector<Tensor>& x) {
    Attended a = ScaledDotProductAttention(x[0], x[1], x[2], rows);
    return std::vector<Tensor>{a.context, a.weights};
  };
  EXPECT_TRUE(GradCheckMulti(
      fn4, {U({kB, 2, kTq, 7}, 43), U({kB, 2, kTk, 7}, 44), U({kB, 2, kTk, 3}, 45)}));
}

TEST(AttentionGradCheck, WeightedSum) {
  EXPECT_TRUE(GradCheck([](const std::vector<Tensor>& x) { return WeightedSum(x[0], x[1]); },
                        {U({kB, kTq, kTk}, 46), U({kB, kTk, 3}, 47)}));
}

TEST(AttentionGradCheck, MultiHeadAttentionMasksAndCausal) {
  const int64_t e = 6, h = 3;
  const Tensor kpm = Mask({0, 0, 0, 0, 1, 0, 0, 1, 1, 1}, {kB, kTk});
  const Tensor am = Mask({0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, {kTq, kTk});
  struct Config {
    bool self, causal, average;
    Tensor kpm, am;
  };
  for (const Config& cfg :
       {Config{false, false, false, kpm, am}, Config{false, true, true, kpm, Tensor()},
        Config{true, true, false, Tensor(), Tensor()}}) {
    SCOPED_TRACE(std::string(cfg.self ? "self" : "cross") + (cfg.causal ? " causal" : ""));
    Generator gen(7);
    MultiHeadAttention m(e, h, gen, 0.0, true, DType::kF64);
    const int64_t tq = cfg.self ? kTk : kTq;
    auto fn = [&](const std::vector<Tensor>& x) {
      m.in_proj_weight = x[3];
      m.in_proj_bias = x[4];
      m.out_proj->weight = x[5];
      m.out_proj->bias = x[6];
      const Tensor& q = x[0];
      Attended a = cfg.self ? m.Forward(q, q, q, cfg.kpm, cfg.am, cfg.causal, cfg.average)
                            : m.Forward(q, x[1], x[2], cfg.kpm, cfg.am, cfg.causal, cfg.average);
      return std::vector<Tensor>{a.context, a.weights};
    };
    EXPECT_TRUE(GradCheckMulti(
        fn, {U({kB, tq, e}, 48), U({kB, kTk, e}, 49), U({kB, kTk, e}, 50), U({3 * e, e}, 51, 0.6),
             U({3 * e}, 52, 0.3), U({e, e}, 53, 0.6), U({e}, 54, 0.3)}));
  }
}

// ============================================================================================
// (3) Properties.
// ============================================================================================

// Every row of w [.., Tk] is exactly zero where excluded and sums to one over the rest (rows
// with nothing left are all zero).
void ExpectNormalisedAndMasked(const Tensor& w, const Tensor& mask, double tol) {
  const auto wv = F64(w);
  const auto mv = Bools(mask.Expand(w.shape()));
  const int64_t n = w.size(-1);
  for (int64_t r = 0; r < w.numel() / n; ++r) {
    double sum = 0;
    bool any = false;
    for (int64_t j = 0; j < n; ++j) {
      if (mv[r * n + j]) {
        EXPECT_EQ(wv[r * n + j], 0.0) << "row " << r << " masked position " << j;
      } else {
        EXPECT_GE(wv[r * n + j], 0.0);
        sum += wv[r * n + j];
        any = true;
      }
    }
    EXPECT_NEAR(sum, any ? 1.0 : 0.0, tol) << "row " << r;
  }
}

TEST(AttentionProperties, SoftTopKSparsemaxAreNormalisedAndZeroWhereMasked) {
  const Tensor mask = MaskWithEmptyRow();
  for (DType dt : {DType::kF32, DType::kF64}) {
    const Tensor s = U({kB, kTq, kTk}, 60, 2.0).To(dt);
    const double tol = dt == DType::kF32 ? 1e-6 : 1e-14;
    ExpectNormalisedAndMasked(SoftWeights(s, mask), mask, tol);
    ExpectNormalisedAndMasked(TopKWeights(s, 2, mask), mask, tol);
    ExpectNormalisedAndMasked(Sparsemax(s, mask), mask, tol);
    const Tensor bcast = Mask({0, 1, 0, 0, 1, 1, 1, 1, 1, 1}, {kB, 1, kTk});
    ExpectNormalisedAndMasked(SoftWeights(s, bcast), bcast, tol);
    ExpectNormalisedAndMasked(TopKWeights(s, 3, bcast), bcast, tol);
    ExpectNormalisedAndMasked(Sparsemax(s, bcast), bcast, tol);
  }
}

TEST(AttentionProperties, TopKKeepsExactlyTheKLargest) {
  const Tensor s = RandomDistinct({4, 3, 9}, 61);
  const Tensor mask = gradcheck::RandomMask({4, 3, 9}, 62, 0.3);
  const auto sv = F64(s);
  const auto mv = Bools(mask);
  for (int64_t k : {1, 2, 4, 9, 20}) {
    const auto wv = F64(TopKWeights(s, k, mask));
    for (int64_t r = 0; r < 12; ++r) {
      int64_t unmasked = 0, nonzero = 0;
      double smallest_kept = 1e9, largest_dropped = -1e9;
      for (int64_t j = 0; j < 9; ++j) {
        const int64_t i = r * 9 + j;
        if (mv[i]) continue;
        ++unmasked;
        if (wv[i] != 0.0) ++nonzero, smallest_kept = std::min(smallest_kept, sv[i]);
        else largest_dropped = std::max(largest_dropped, sv[i]);
      }
      EXPECT_EQ(nonzero, std::min(k, unmasked)) << "k " << k << " row " << r;
      EXPECT_GT(smallest_kept, largest_dropped) << "k " << k << " row " << r;
    }
  }
}

TEST(AttentionProperties, FullyMaskedRowGivesZeroWeightsAndZeroGradient) {
  const Tensor mask = MaskWithEmptyRow();
  const Tensor keys = U({kB, kTk, kTk}, 76).To(DType::kF32);
  using Fn = std::function<Tensor(const Tensor&)>;
  const std::map<std::string, Fn> mechanisms = {
      {"SoftWeights", [&](const Tensor& s) { return SoftWeights(s, mask); }},
      {"TopKWeights", [&](const Tensor& s) { return TopKWeights(s, 2, mask); }},
      {"Sparsemax", [&](const Tensor& s) { return Sparsemax(s, mask); }},
      // Here s is the query [B, Tq, D=5] against fixed keys [B, Tk, 5].
      {"ScaledDotProductAttention weights",
       [&](const Tensor& s) { return ScaledDotProductAttention(s, keys, keys, mask).weights; }}};
  for (const auto& [name, fn] : mechanisms) {
    SCOPED_TRACE(name);
    Tensor s = U({kB, kTq, kTk}, 63, 2.0).To(DType::kF32);
    s.set_requires_grad(true);
    const Tensor w = fn(s);
    const auto wv = F64(w);
    for (int64_t j = 0; j < kTk; ++j) EXPECT_EQ(wv[(1 * kTq + 2) * kTk + j], 0.0);
    for (double v : wv) EXPECT_FALSE(std::isnan(v));
    // Only the empty row gets a cotangent: every gradient must then be exactly zero.
    Tensor cot = Tensor::Zeros(w.shape());
    cot.Select(0, 1).Select(0, 2).Fill(1.0);
    ASSERT_EQ(Sum(cot).item(), kTk) << "the cotangent must reach the empty row";
    w.Backward(cot);
    for (double g : F64(s.grad())) EXPECT_EQ(g, 0.0);
  }
  for (auto mode : {HardAttention::Mode::kArgmax, HardAttention::Mode::kReinforce,
                    HardAttention::Mode::kGumbelStraightThrough}) {
    HardAttention hard(mode, 1);
    EXPECT_THAT(ThrownMessage([&] {
                  hard.Weights(U({kB, kTq, kTk}, 64), mask);
                }),
                HasSubstr("HardAttention"));
  }
}

TEST(AttentionProperties, FullyMaskedRowInMultiHeadAttentionIsZeroNotNaN) {
  Generator gen(8);
  MultiHeadAttention m(6, 2, gen);
  const Tensor x = U({kB, kTk, 6}, 65).To(DType::kF32);
  const Tensor kpm = Mask({0, 0, 1, 0, 0, 1, 1, 1, 1, 1}, {kB, kTk});  // sentence 1: all padding
  Attended a = m.Forward(x, x, x, kpm, Tensor(), false, false);
  for (double v : F64(a.context)) EXPECT_FALSE(std::isnan(v));
  for (double v : F64(a.weights.Select(0, 1))) EXPECT_EQ(v, 0.0);
}

TEST(AttentionProperties, LocalMonotonicWindowKeepsWeightInside) {
  const int64_t tq = 6, tk = 9, window = 2;
  const Tensor mask = LocalMonotonicMask(tq, tk, window);
  ASSERT_EQ(mask.shape(), (Shape{tq, tk}));
  const auto mv = Bools(mask);
  for (int64_t t = 0; t < tq; ++t)
    for (int64_t j = 0; j < tk; ++j) EXPECT_EQ(mv[t * tk + j], std::llabs(j - t) > window);
  const Tensor w = SoftWeights(U({3, tq, tk}, 66, 3.0).To(DType::kF32), mask);
  const auto wv = F64(w);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t t = 0; t < tq; ++t)
      for (int64_t j = 0; j < tk; ++j)
        if (std::llabs(j - t) > window) {
          EXPECT_EQ(wv[(b * tq + t) * tk + j], 0.0);
        }
  ExpectNormalisedAndMasked(w, mask, 1e-6);
}

TEST(AttentionProperties, LocalPredictiveSoftmaxPartIsNormalisedInsideWindowAndSentence) {
  Generator gen(9);
  const int64_t tk = 11, window = 2;
  LocalPredictive m(4, 5, window, gen, DType::kF64);
  const Tensor lengths = gradcheck::Indices({11, 7, 3}, {3});
  Tensor centers;
  const Tensor w = m.Weights(U({3, 4, tk}, 67, 2.0), U({3, 4, 4}, 68, 2.0), lengths, &centers);
  const auto wv = F64(w), cv = F64(centers);
  const std::vector<int64_t> len = {11, 7, 3};
  const double sigma = window / 2.0;
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t t = 0; t < 4; ++t) {
      const double p = cv[b * 4 + t];
      EXPECT_GE(p, 0.0);
      EXPECT_LE(p, static_cast<double>(len[b]));
      double soft_sum = 0;
      for (int64_t j = 0; j < tk; ++j) {
        const double wj = wv[(b * 4 + t) * tk + j];
        if (std::fabs(j - p) > window || j >= len[b]) {
          EXPECT_EQ(wj, 0.0) << "b " << b << " t " << t << " j " << j << " centre " << p;
        } else {
          // Undo the Gaussian: what is left is the softmax over the window.
          soft_sum += wj / std::exp(-(j - p) * (j - p) / (2 * sigma * sigma));
        }
      }
      EXPECT_NEAR(soft_sum, 1.0, 1e-12) << "b " << b << " t " << t;
    }
  }
}

// argmax of each row of s (first maximum) among positions not masked.
std::vector<int64_t> RowArgmax(const std::vector<double>& s, const std::vector<bool>& masked,
                               int64_t n) {
  std::vector<int64_t> out;
  for (size_t r = 0; r < s.size() / n; ++r) {
    int64_t best = -1;
    for (int64_t j = 0; j < n; ++j)
      if (!masked[r * n + j] && (best < 0 || s[r * n + j] > s[r * n + best])) best = j;
    out.push_back(best);
  }
  return out;
}

// Each row one-hot; returns the hot positions.
std::vector<int64_t> ExpectOneHot(const Tensor& w) {
  const auto wv = F64(w);
  const int64_t n = w.size(-1);
  std::vector<int64_t> hot;
  for (size_t r = 0; r < wv.size() / n; ++r) {
    int64_t ones = 0, at = -1;
    for (int64_t j = 0; j < n; ++j) {
      const double v = wv[r * n + j];
      EXPECT_TRUE(v == 0.0 || v == 1.0) << "row " << r << " position " << j << " is " << v;
      if (v == 1.0) ++ones, at = j;
    }
    EXPECT_EQ(ones, 1) << "row " << r;
    hot.push_back(at);
  }
  return hot;
}

TEST(AttentionProperties, HardAttentionIsOneHotAndArgmaxPicksTheArgmax) {
  const Tensor s = RandomDistinct({kB, kTq, kTk}, 69);
  const Tensor mask = Mask(
      {0, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1},
      {kB, kTq, kTk});
  const auto mv = Bools(mask);
  for (auto mode : {HardAttention::Mode::kArgmax, HardAttention::Mode::kReinforce,
                    HardAttention::Mode::kGumbelStraightThrough}) {
    SCOPED_TRACE(static_cast<int>(mode));
    HardAttention hard(mode, 11);
    for (DType dt : {DType::kF32, DType::kF64}) {
      const auto hot = ExpectOneHot(hard.Weights(s.To(dt), mask));
      for (size_t r = 0; r < hot.size(); ++r)
        if (hot[r] >= 0) {
          EXPECT_FALSE(mv[r * kTk + hot[r]]) << "picked a masked position, row " << r;
        }
      if (mode == HardAttention::Mode::kArgmax) {
        EXPECT_EQ(hot, RowArgmax(F64(s), mv, kTk));
        EXPECT_EQ(ExpectOneHot(hard.Weights(s.To(dt))),
                  RowArgmax(F64(s), std::vector<bool>(s.numel(), false), kTk));
      }
    }
  }
}

TEST(AttentionProperties, ReinforceSamplesFollowTheSoftmax) {
  // 20000 rows with the same scores: each position's frequency is within 5 standard errors
  // (sqrt(p (1 - p) / n) <= 0.0036) of its softmax probability; the masked one is never drawn.
  const int64_t rows = 20000;
  const std::vector<double> row = {0.3, -0.5, 1.1, 0.0};
  std::vector<double> all;
  for (int64_t r = 0; r < rows; ++r) all.insert(all.end(), row.begin(), row.end());
  const Tensor s = Tensor::FromVector(all, {rows, 4});
  const Tensor mask = Mask({0, 0, 0, 1}, {4});
  HardAttention hard(HardAttention::Mode::kReinforce, 12);
  const auto counts = F64(Sum(hard.Weights(s, mask), {0}));
  const double z = std::exp(0.3) + std::exp(-0.5) + std::exp(1.1);
  const std::vector<double> p = {std::exp(0.3) / z, std::exp(-0.5) / z, std::exp(1.1) / z, 0.0};
  for (int j = 0; j < 4; ++j) {
    const double se = std::sqrt(p[j] * (1 - p[j]) / rows);
    EXPECT_NEAR(counts[j] / rows, p[j], 5 * se + 1e-12) << "position " << j;
  }
}

TEST(AttentionProperties, ReinforceLossGradientAndBaseline) {
  // A tiny case: B = 2, Tq = 2, Tk = 3. The gradient of the surrogate loss w.r.t. the scores is
  // -(reward_b - baseline) * (onehot - softmax) / B, with the baseline as it was before the call;
  // the first call starts the baseline at the batch's mean reward, and every call then moves it
  // to decay * baseline + (1 - decay) * mean(reward).
  const std::vector<double> sv = {0.2, -0.4, 1.0, 0.5, 0.1, -0.3, -1.0, 0.3, 0.6, 0.0, 0.0, 0.7};
  const Tensor mask = Mask({0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, {2, 2, 3});
  const auto mv = Bools(mask);
  HardAttention hard(HardAttention::Mode::kReinforce, 13, 1.0, 0.8);
  const std::vector<std::vector<double>> rewards = {{1.0, -0.5}, {2.0, 0.0}, {-1.0, 3.0}};
  double expected_baseline = 0.0;
  for (size_t step = 0; step < rewards.size(); ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    Tensor s = Tensor::FromVector(sv, {2, 2, 3});
    s.set_requires_grad(true);
    const auto hot = ExpectOneHot(hard.Weights(s, mask));
    const auto& r = rewards[step];
    const double mean = (r[0] + r[1]) / 2;
    const double used = step == 0 ? mean : expected_baseline;
    Tensor loss = hard.ReinforceLoss(Tensor::FromVector(r, {2}));
    expected_baseline = 0.8 * used + 0.2 * mean;
    EXPECT_NEAR(hard.baseline, expected_baseline, 1e-15);
    loss.Backward();
    const auto g = F64(s.grad());
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t t = 0; t < 2; ++t) {
        const int64_t row = b * 2 + t;
        double z = 0;
        for (int64_t j = 0; j < 3; ++j)
          if (!mv[row * 3 + j]) z += std::exp(sv[row * 3 + j]);
        for (int64_t j = 0; j < 3; ++j) {
          const double soft = mv[row * 3 + j] ? 0.0 : std::exp(sv[row * 3 + j]) / z;
          const double onehot = hot[row] == j ? 1.0 : 0.0;
          EXPECT_NEAR(g[row * 3 + j], -(r[b] - used) * (onehot - soft) / 2, 1e-14)
              << "b " << b << " t " << t << " j " << j;
        }
      }
    }
  }
  // The log-probabilities are consumed: a second loss needs a new sample.
  EXPECT_THAT(ThrownMessage([&] { hard.ReinforceLoss(Tensor::FromVector(rewards[0], {2})); }),
              HasSubstr("HardAttention"));
}

TEST(AttentionProperties, ReinforceLossCoversEveryStepSinceTheLastLoss) {
  // A decoder samples once per step (two Weights calls on [B, Tk] scores), then one loss: each
  // step's scores get -(reward_b - baseline) * (onehot - softmax) / B.
  HardAttention hard(HardAttention::Mode::kReinforce, 15);
  hard.baseline = 0.5;
  hard.baseline_initialized = true;
  const std::vector<std::vector<double>> steps = {{0.1, 0.9, -0.2, 0.4, -1.0, 0.0},
                                                  {1.2, -0.3, 0.5, 0.0, 0.2, -0.6}};
  std::vector<Tensor> scores;
  std::vector<std::vector<int64_t>> hot;
  for (const auto& v : steps) {
    Tensor s = Tensor::FromVector(v, {2, 3});
    s.set_requires_grad(true);
    hot.push_back(ExpectOneHot(hard.Weights(s)));
    scores.push_back(s);
  }
  const std::vector<double> reward = {2.0, -1.0};
  hard.ReinforceLoss(Tensor::FromVector(reward, {2})).Backward();
  EXPECT_NEAR(hard.baseline, 0.9 * 0.5 + 0.1 * 0.5, 1e-15);
  for (size_t t = 0; t < steps.size(); ++t) {
    const auto g = F64(scores[t].grad());
    for (int64_t b = 0; b < 2; ++b) {
      double z = 0;
      for (int64_t j = 0; j < 3; ++j) z += std::exp(steps[t][b * 3 + j]);
      for (int64_t j = 0; j < 3; ++j) {
        const double soft = std::exp(steps[t][b * 3 + j]) / z;
        const double onehot = hot[t][b] == j ? 1.0 : 0.0;
        EXPECT_NEAR(g[b * 3 + j], -(reward[b] - 0.5) * (onehot - soft) / 2, 1e-14)
            << "step " << t << " b " << b << " j " << j;
      }
    }
  }
}

TEST(AttentionProperties, MatchScoreIsOneWithZeroGradientAtEqualVectors) {
  // |q - k| has no derivative at q == k: the score is 1 there and the gradient must stay finite.
  Tensor q = U({1, 2, 4}, 80);
  q.set_requires_grad(true);
  const Tensor k = Concat({q.Detach(), U({1, 1, 4}, 81)}, 1);  // key 0 and 1 equal the queries
  const Tensor m = MatchScore(q, k);
  EXPECT_EQ(F64(m)[0], 1.0);
  EXPECT_EQ(F64(m)[4], 1.0);
  Sum(m).Backward();
  for (double g : F64(q.grad())) EXPECT_TRUE(std::isfinite(g));
}

TEST(AttentionProperties, GumbelStraightThroughIsOneHotWithSoftmaxGradient) {
  const double tau = 0.7;
  const Tensor mask = Mask(
      {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1},
      {kB, kTq, kTk});
  const auto mv = Bools(mask);
  for (DType dt : {DType::kF64, DType::kF32}) {
    SCOPED_TRACE(DTypeName(dt));
    HardAttention hard(HardAttention::Mode::kGumbelStraightThrough, 14, tau);
    Tensor s = U({kB, kTq, kTk}, 70, 2.0).To(dt).Detach();
    s.set_requires_grad(true);
    // Re-seeding: a copy of the generator draws the same uniforms the mechanism will draw.
    Generator replay = hard.gen;
    const Tensor w = hard.Weights(s, mask);
    const auto u = Tensor::Rand(s.shape(), replay, DType::kF64).ToVector<double>();
    std::vector<double> noise(u.size()), perturbed(u.size());
    const auto svals = F64(s);
    for (size_t i = 0; i < u.size(); ++i) {
      noise[i] = -std::log(-std::log(std::min(std::max(u[i], 1e-20), 1.0 - 1e-12)));
      perturbed[i] = svals[i] + noise[i];
    }
    EXPECT_EQ(ExpectOneHot(w), RowArgmax(perturbed, mv, kTk));
    const Tensor cot = U(s.shape(), 71).To(dt);
    w.Backward(cot);
    Tensor s2 = s.Detach().Clone();
    s2.set_requires_grad(true);
    const Tensor g = Tensor::FromVector(noise, s.shape()).To(dt);
    Softmax(MulScalar(Add(s2, g), 1.0 / tau), -1, mask).Backward(cot);
    const auto got = F64(s.grad()), want = F64(s2.grad());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], dt == DType::kF64 ? 1e-14 : 1e-6) << "element " << i;
  }
}

TEST(AttentionProperties, CausalAttentionNeverSeesTheFuture) {
  // Tq = 4 queries against Tk = 6 keys: query i sees keys j <= i + 2.
  const int64_t tq = 4, tk = 6, shift = 2;
  const Tensor q = U({kB, tq, 5}, 72).To(DType::kF32), k = U({kB, tk, 5}, 73).To(DType::kF32);
  const Tensor v = U({kB, tk, 3}, 74).To(DType::kF32);
  const Attended a = ScaledDotProductAttention(q, k, v, Tensor(), true);
  const auto wv = F64(a.weights);
  const auto cm = Bools(CausalMask(tq, tk));
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t i = 0; i < tq; ++i)
      for (int64_t j = 0; j < tk; ++j) {
        EXPECT_EQ(cm[i * tk + j], j > i + shift);
        if (j > i + shift) {
          EXPECT_EQ(wv[(b * tq + i) * tk + j], 0.0);
        }
      }
  // Changing the last key and value changes nothing for queries 0..2 (they cannot see key 5).
  Tensor k2 = k.Clone(), v2 = v.Clone();
  k2.Narrow(1, tk - 1, 1).Fill(9.0);
  v2.Narrow(1, tk - 1, 1).Fill(-9.0);
  const Attended a2 = ScaledDotProductAttention(q, k2, v2, Tensor(), true);
  EXPECT_EQ(F64(a.context.Narrow(1, 0, tq - 1)), F64(a2.context.Narrow(1, 0, tq - 1)));
  EXPECT_NE(F64(a.context.Narrow(1, tq - 1, 1)), F64(a2.context.Narrow(1, tq - 1, 1)));

  // Causal multi-head self-attention: changing position 3 leaves outputs 0..2 as they were.
  Generator gen(10);
  MultiHeadAttention m(6, 2, gen);
  const Tensor x = U({kB, 5, 6}, 75).To(DType::kF32);
  Tensor x2 = x.Clone();
  x2.Narrow(1, 3, 1).Fill(4.0);
  const Attended o = m.Forward(x, x, x, Tensor(), Tensor(), true);
  const Attended o2 = m.Forward(x2, x2, x2, Tensor(), Tensor(), true);
  EXPECT_EQ(F64(o.context.Narrow(1, 0, 3)), F64(o2.context.Narrow(1, 0, 3)));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = i + 1; j < 5; ++j)
      for (int64_t b = 0; b < kB; ++b) EXPECT_EQ(F64(o.weights)[(b * 5 + i) * 5 + j], 0.0);
}

TEST(AttentionProperties, StridedScoresGiveTheSameWeightsAndGradients) {
  // Scores that are a transposed view (as a caller's K^T Q would give) against a contiguous copy.
  const Tensor base = U({kB, kTk, kTq}, 77, 2.0).To(DType::kF32);
  const Tensor mask = MaskWithEmptyRow();
  const Tensor cot = U({kB, kTq, kTk}, 78).To(DType::kF32);
  using Fn = std::function<Tensor(const Tensor&)>;
  const std::map<std::string, Fn> mechanisms = {
      {"SoftWeights", [&](const Tensor& s) { return SoftWeights(s, mask); }},
      {"TopKWeights", [&](const Tensor& s) { return TopKWeights(s, 2, mask); }},
      {"Sparsemax", [&](const Tensor& s) { return Sparsemax(s, mask); }}};
  for (const auto& [name, fn] : mechanisms) {
    SCOPED_TRACE(name);
    Tensor strided = base.Clone(), contiguous = base.Transpose(1, 2).Contiguous();
    strided.set_requires_grad(true);
    contiguous.set_requires_grad(true);
    const Tensor a = fn(strided.Transpose(1, 2)), b = fn(contiguous);
    EXPECT_EQ(F64(a), F64(b));
    a.Backward(cot);
    b.Backward(cot);
    EXPECT_EQ(F64(strided.grad().Transpose(1, 2)), F64(contiguous.grad()));
  }
  HardAttention hard(HardAttention::Mode::kArgmax);
  EXPECT_EQ(F64(hard.Weights(base.Transpose(1, 2), mask.Select(1, 0).Unsqueeze(1))),
            F64(hard.Weights(base.Transpose(1, 2).Contiguous(), mask.Select(1, 0).Unsqueeze(1))));
}

TEST(AttentionProperties, MultiHeadDropoutIsActiveInTrainingAndIndependentPerModule) {
  // Two layers built from one generator, with the same weights: their dropout masks must still
  // differ, or every layer of a stack would drop the same positions.
  Generator gen(13);
  MultiHeadAttention a(8, 2, gen, 0.5), b(8, 2, gen, 0.5);
  {
    NoGradGuard ng;
    auto pa = a.NamedParameters(), pb = b.NamedParameters();
    for (size_t i = 0; i < pa.size(); ++i) pb[i].second.CopyFrom(pa[i].second);
  }
  const Tensor x = U({1, 6, 8}, 79).To(DType::kF32);
  a.Eval();
  const auto eval = F64(a.Forward(x, x, x).context);
  a.Train();
  const auto train_a = F64(a.Forward(x, x, x).context);
  const auto train_b = F64(b.Forward(x, x, x).context);
  EXPECT_FALSE(eval == train_a) << "dropout 0.5 in training changed nothing";
  EXPECT_FALSE(train_a == train_b) << "two modules from one generator drew the same dropout masks";
}

TEST(AttentionProperties, ModuleParametersHaveTorchNamesAndShapes) {
  Generator gen(11);
  auto names = [](const nn::Module& m) {
    std::vector<std::string> out;
    for (const auto& [n, p] : m.NamedParameters()) out.push_back(n + p.shape().str());
    return out;
  };
  using V = std::vector<std::string>;
  // Own parameters first, then sub-modules' (torch's named_parameters() order).
  EXPECT_EQ(names(AdditiveScore(4, 6, 7, gen)),
            (V{"v[7]", "query_proj.weight[7, 4]", "key_proj.weight[7, 6]", "key_proj.bias[7]"}));
  EXPECT_EQ(names(MultiHeadAttention(8, 2, gen)), (V{"in_proj_weight[24, 8]", "in_proj_bias[24]",
                                                     "out_proj.weight[8, 8]", "out_proj.bias[8]"}));
  EXPECT_EQ(names(LocalPredictive(4, 5, 2, gen)), (V{"v[5]", "proj.weight[5, 4]"}));
}

// ---- bad shapes: attend::Error naming the mechanism and the offending shapes ----

struct BadCall {
  std::string what;                 // the mechanism the message must name
  std::vector<std::string> shapes;  // substrings the message must contain
  std::function<void()> call;
};

TEST(AttentionErrors, BadShapesNameTheMechanismAndShapes) {
  Generator gen(12);
  const Tensor q4 = Tensor::Zeros({2, 3, 4}), k6 = Tensor::Zeros({2, 5, 6});
  const Tensor q6 = Tensor::Zeros({2, 3, 6}), k6b3 = Tensor::Zeros({3, 5, 6});
  const Tensor s = Tensor::Zeros({2, 3, 5}), bad_mask = Tensor::Zeros({2, 3, 4}, DType::kBool);
  AdditiveScore additive(4, 6, 7, gen);
  GeneralScore general(4, 6, gen);
  ConcatScore concat(4, 6, 7, gen);
  LocationScore location(4, 8, gen);
  MwanScore mwan(MwanScore::Kind::kDot, 6, 7, gen);
  LocalPredictive local(4, 5, 2, gen);
  MultiHeadAttention mha(8, 2, gen);
  const Tensor x8 = Tensor::Zeros({2, 5, 8});
  const std::vector<BadCall> calls = {
      {"DotScore", {"[2, 3, 4]", "[2, 5, 6]"}, [&] { DotScore().Forward(q4, k6); }},
      {"DotScore", {"[2, 3, 6]", "[3, 5, 6]"}, [&] { DotScore().Forward(q6, k6b3); }},
      {"ScaledDotScore", {"[2, 3, 4]", "[2, 5, 6]"}, [&] { ScaledDotScore().Forward(q4, k6); }},
      {"CosineScore", {"[2, 3, 4]", "[2, 5, 6]"}, [&] { CosineScore().Forward(q4, k6); }},
      {"CosineScore",
       {"[3, 3]"},
       [&] {
         CosineScore().ScoresWithStrength(q6, k6, Tensor::Ones({3, 3}));
       }},
      {"MatchScore", {"[2, 3, 4]", "[2, 5, 6]"}, [&] { MatchScore(q4, k6); }},
      {"AdditiveScore",
       {"[2, 5, 4]"},
       [&] {
         additive.Forward(q4, Tensor::Zeros({2, 5, 4}));
       }},
      {"AdditiveScore", {"[2, 3, 6]"}, [&] { additive.Forward(q6, k6); }},
      {"AdditiveScore", {"[3, 5, 6]"}, [&] { additive.Forward(q4, k6b3); }},
      {"GeneralScore",
       {"[2, 5, 4]"},
       [&] {
         general.Forward(q4, Tensor::Zeros({2, 5, 4}));
       }},
      {"GeneralScore", {"[2, 3, 6]"}, [&] { general.Forward(q6, k6); }},
      {"ConcatScore", {"[2, 3, 6]"}, [&] { concat.Forward(q6, k6); }},
      {"ConcatScore",
       {"[2, 5, 4]"},
       [&] {
         concat.Forward(q4, Tensor::Zeros({2, 5, 4}));
       }},
      {"LocationScore", {"[2, 3, 6]"}, [&] { location.Forward(q6, k6); }},
      {"LocationScore",
       {"9"},
       [&] {
         location.Forward(q4, Tensor::Zeros({2, 9, 6}));
       }},
      {"MwanScore",
       {"[2, 3, 4]", "[2, 5, 4]"},
       [&] {
         mwan.Forward(q4, Tensor::Zeros({2, 5, 4}));
       }},
      {"WeightedSum",
       {"[2, 3, 5]", "[2, 4, 3]"},
       [&] {
         WeightedSum(s, Tensor::Zeros({2, 4, 3}));
       }},
      {"SoftWeights", {"[2, 3, 5]", "[2, 3, 4]"}, [&] { SoftWeights(s, bad_mask); }},
      {"TopKWeights", {"[2, 3, 5]", "[2, 3, 4]"}, [&] { TopKWeights(s, 2, bad_mask); }},
      {"TopKWeights", {"0"}, [&] { TopKWeights(s, 0); }},
      {"Sparsemax", {"[2, 3, 5]", "[2, 3, 4]"}, [&] { Sparsemax(s, bad_mask); }},
      {"HardAttention",
       {"[2, 3, 5]", "[2, 3, 4]"},
       [&] { HardAttention(HardAttention::Mode::kArgmax).Weights(s, bad_mask); }},
      {"LocalPredictive",
       {"[2, 3, 5]", "[2, 4, 4]"},
       [&] {
         local.Weights(s, Tensor::Zeros({2, 4, 4}), Tensor());
       }},
      {"LocalPredictive", {"[2, 3, 6]"}, [&] { local.Weights(s, q6, Tensor()); }},
      {"LocalPredictive",
       {"[3]"},
       [&] {
         local.Weights(s, q4, gradcheck::Indices({5, 5, 5}, {3}));
       }},
      {"LocalPredictive",
       {"7"},
       [&] {
         local.Weights(s, q4, gradcheck::Indices({7, 5}, {2}));
       }},
      {"ScaledDotProductAttention",
       {"[2, 3, 4]", "[2, 5, 6]"},
       [&] { ScaledDotProductAttention(q4, k6, k6); }},
      {"ScaledDotProductAttention",
       {"[2, 3, 6]", "[3, 5, 6]"},
       [&] { ScaledDotProductAttention(q6, k6b3, k6b3); }},
      {"ScaledDotProductAttention",
       {"[2, 3, 4]"},
       [&] { ScaledDotProductAttention(q6, k6, k6, bad_mask); }},
      {"MultiHeadAttention", {"[2, 3, 6]"}, [&] { mha.Forward(q6, x8, x8); }},
      {"MultiHeadAttention",
       {"[2, 4]"},
       [&] {
         mha.Forward(x8, x8, x8, Tensor::Zeros({2, 4}, DType::kBool));
       }},
      {"MultiHeadAttention",
       {"[5, 4]"},
       [&] {
         mha.Forward(x8, x8, x8, Tensor(), Tensor::Zeros({5, 4}, DType::kBool));
       }},
      {"MultiHeadAttention", {"8", "3"}, [&] { MultiHeadAttention(8, 3, gen); }},
      {"LocalMonotonicMask", {"-1"}, [&] { LocalMonotonicMask(3, 5, -1); }},
  };
  for (const BadCall& c : calls) {
    const std::string msg = ThrownMessage(c.call);
    EXPECT_THAT(msg, HasSubstr(c.what)) << "expected an error naming " << c.what;
    for (const std::string& shape : c.shapes)
      EXPECT_THAT(msg, HasSubstr(shape)) << c.what << ": the message should name " << shape;
  }
  HardAttention reinforce(HardAttention::Mode::kReinforce, 1);
  reinforce.Weights(s);
  EXPECT_THAT(ThrownMessage([&] { reinforce.ReinforceLoss(Tensor::Zeros({3})); }),
              AllOf(HasSubstr("HardAttention"), HasSubstr("[3]")));
}

// KVCache::Reorder against its definition (row i of the result = row rows[i] of the cache, over
// the filled positions), for random row lists: orders and duplicates (copied), increasing subsets
// (compacted in place when nothing else holds the cache), and a cache that another tensor holds,
// which must be left as it was.
TEST(KVCacheProperties, ReorderKeepsTheRowsAskedForAndWritesNoHeldCache) {
  const int64_t n = 6, h = 2, cap = 5, hd = 3, length = 3;
  // Row `row`'s filled positions, every head.
  auto Filled = [&](const Tensor& cache, int64_t row) {
    return cache.Narrow(0, row, 1).Narrow(2, 0, length).Contiguous().ToVector<float>();
  };
  std::mt19937 rng(29);
  for (int trial = 0; trial < 200; ++trial) {
    KVCache c = KVCache::Empty(n, h, cap, hd, DType::kF32);
    c.k.CopyFrom(RandomUniform({n, h, cap, hd}, 100 + trial));
    c.v.CopyFrom(RandomUniform({n, h, cap, hd}, 500 + trial));
    c.length = length;
    const Tensor k0 = c.k.Clone(), v0 = c.v.Clone();
    std::vector<int64_t> rows;
    const int kind = trial % 3;
    if (kind == 0) {  // any rows, any order, repeats
      const int64_t m = 1 + static_cast<int64_t>(rng() % 8);
      for (int64_t i = 0; i < m; ++i) rows.push_back(static_cast<int64_t>(rng() % n));
    } else {  // an increasing subset: a greedy search's survivors
      for (int64_t i = 0; i < n; ++i)
        if (rng() % 3 != 0) rows.push_back(i);
      if (rows.empty()) rows.push_back(static_cast<int64_t>(rng() % n));
    }
    const Tensor held = kind == 2 ? c.k : Tensor();  // another holder of the keys
    c.Reorder(rows, cap);
    ASSERT_EQ(c.k.size(0), static_cast<int64_t>(rows.size()));
    ASSERT_EQ(c.v.size(0), static_cast<int64_t>(rows.size()));
    ASSERT_EQ(c.capacity(), cap);
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t r = rows[i], ii = static_cast<int64_t>(i);
      EXPECT_EQ(Filled(c.k, ii), Filled(k0, r)) << "trial " << trial << " row " << i;
      EXPECT_EQ(Filled(c.v, ii), Filled(v0, r)) << "trial " << trial << " row " << i;
    }
    if (held.defined()) {
      EXPECT_EQ(held.Contiguous().ToVector<float>(), k0.ToVector<float>()) << "trial " << trial;
    }
  }
}

}  // namespace
}  // namespace attend::attention
