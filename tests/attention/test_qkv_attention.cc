// QkvScore (the encyclopedia's "encoder-decoder QKV" and "encoder QKV"): against PyTorch
// (tests/reference/qkv_attention_reference.py), f64 finite differences, and properties (prepared
// keys reused per step, normalised and masked weights, the scaled dot product of the projections,
// the context a mix of the projected values, parameter names, errors).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
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
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::Named;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::AllOf;
using ::testing::HasSubstr;

const reference::LoadedCases& Cases() {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "qkv_attention_reference.bin", "tests/reference/qkv_attention_reference.py");
  return loaded;
}

Tensor U(const Shape& s, uint64_t seed, double scale = 1.0) {
  return RandomUniform(s, seed, -scale, scale);
}

// Puts the case's projections into a QkvScore of matching sizes: W_q, W_k and (when given) W_v.
std::unique_ptr<QkvScore> ScoreFor(const Tensor& wq, const Tensor& wk, const Tensor& wv) {
  Generator gen(5);
  const int64_t value_dim = wv.defined() ? wv.size(0) : 1;
  auto m =
      std::make_unique<QkvScore>(wq.size(1), wk.size(1), wq.size(0), value_dim, gen, wq.dtype());
  m->query_proj->weight = wq;
  m->key_proj->weight = wk;
  if (wv.defined()) m->value_proj->weight = wv;
  return m;
}

TEST(QkvScoreReference, ScoresContextsWeightsAndGradientsMatchTorch) {
  const auto& l = Cases();
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(l.error.empty()) << l.error;
  std::vector<std::string> ops;
  for (const RefCase& c : l.cases) {
    SCOPED_TRACE(c.name + " [" + c.op + "]");
    const reference::OpKey key(c.op);
    std::vector<Tensor> x;
    for (int64_t i = 0; c.Find(Named("x", i)) != nullptr; ++i) {
      Tensor t = ToTensor(Ref(c, Named("x", i)));
      if (IsFloating(t.dtype())) t.set_requires_grad(true);
      x.push_back(t);
    }
    const bool self = key.name() == "qkv_self";
    // self: x0 is the query and the keys; the projections follow it.
    const size_t w0 = self ? 1 : 2;
    const Tensor& query = x[0];
    const Tensor& keys = self ? x[0] : x[1];
    const Tensor wv = x.size() > w0 + 2 && IsFloating(x[w0 + 2].dtype()) ? x[w0 + 2] : Tensor();
    const std::unique_ptr<QkvScore> score = ScoreFor(x[w0], x[w0 + 1], wv);
    const QkvScore& m = *score;
    std::vector<Tensor> outputs;
    if (key.name() == "qkv_scores") {
      outputs = {m.Forward(query, keys)};
    } else {
      const Tensor mask = key.Str("mask") == "none" ? Tensor() : x.back();
      Attended a = m.Attend(query, keys, mask);
      outputs = {a.context, a.weights};
    }
    // Forward: the projections (Dq, Dk), the dot product (A) and the weighted sum (Tk);
    // backward: a projection's gradient sums over every (query, key) pair, an input's over the
    // other side's positions times the feature sizes.
    const int64_t tq = query.size(1), tk = keys.size(1), a = m.query_proj->weight.size(0);
    const double n_forward = static_cast<double>(std::max({query.size(2), keys.size(2), a, tk}));
    const double n_backward = std::max(static_cast<double>(query.size(0) * tq * tk),
                                       n_forward * static_cast<double>(std::max(tq, tk)));
    std::vector<Tensor> roots, grads;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const auto n = static_cast<int64_t>(i);
      ExpectMatches(c, Named("output y", n), outputs[i], Ref(c, Named("y", n)), n_forward);
      roots.push_back(outputs[i]);
      grads.push_back(ToTensor(Ref(c, Named("dy", n))));
    }
    Backward(roots, grads);
    for (size_t i = 0; i < x.size(); ++i) {
      const auto* want = c.Find(Named("dx", static_cast<int64_t>(i)));
      if (want == nullptr) continue;
      ASSERT_TRUE(x[i].grad().defined()) << "input " << i << " got no gradient";
      ExpectMatches(c, "gradient " + Named("dx", static_cast<int64_t>(i)), x[i].grad(), *want,
                    n_backward);
    }
    ops.push_back(key.name() + (key.Has("mask") ? "|" + key.Str("mask") : ""));
  }
  // Per dtype: the scores, attention without a mask, with a full and a padding mask, and
  // self-attention; a changed count means the generator and this test went out of step.
  EXPECT_EQ(l.cases.size(), 10u);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "qkv_self|padding"), 2);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "qkv_attend|padding"), 2);
}

// ---- f64 finite differences ----

constexpr int64_t kB = 2, kTq = 3, kTk = 5, kDq = 4, kDk = 6, kA = 7, kDv = 3;

TEST(QkvScoreGradCheck, Scores) {
  Generator gen(1);
  QkvScore m(kDq, kDk, kA, kDv, gen, DType::kF64);
  auto fn = [&](const std::vector<Tensor>& x) {
    m.query_proj->weight = x[2];
    m.key_proj->weight = x[3];
    return m.Forward(x[0], x[1]);
  };
  EXPECT_TRUE(GradCheck(
      fn, {U({kB, kTq, kDq}, 1), U({kB, kTk, kDk}, 2), U({kA, kDq}, 3), U({kA, kDk}, 4)}));
}

// Context and weights together, with a mask that leaves one row with no key at all (zero
// weights and context there, and no gradient through it).
TEST(QkvScoreGradCheck, AttendWithMaskAndAnEmptyRow) {
  Generator gen(2);
  QkvScore m(kDq, kDk, kA, kDv, gen, DType::kF64);
  const Tensor mask = Mask(
      {0, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1},
      {kB, kTq, kTk});
  auto fn = [&](const std::vector<Tensor>& x) {
    m.query_proj->weight = x[2];
    m.key_proj->weight = x[3];
    m.value_proj->weight = x[4];
    Attended a = m.Attend(x[0], x[1], mask);
    return std::vector<Tensor>{a.context, a.weights};
  };
  EXPECT_TRUE(GradCheckMulti(fn, {U({kB, kTq, kDq}, 11), U({kB, kTk, kDk}, 12), U({kA, kDq}, 13),
                                  U({kA, kDk}, 14), U({kDv, kDk}, 15)}));
}

// Self-attention: one tensor is the query and the keys, so its gradient sums both paths.
TEST(QkvScoreGradCheck, SelfAttentionWithPadding) {
  Generator gen(3);
  QkvScore m(kDk, kDk, kA, kDk, gen, DType::kF64);
  const Tensor padding = Mask({0, 0, 0, 0, 0, 0, 0, 1, 1}, {3, 1, 3});
  auto fn = [&](const std::vector<Tensor>& x) {
    m.query_proj->weight = x[1];
    m.key_proj->weight = x[2];
    m.value_proj->weight = x[3];
    return Add(x[0], m.Attend(x[0], x[0], padding).context);  // the encoder's residual
  };
  EXPECT_TRUE(
      GradCheck(fn, {U({3, 3, kDk}, 21), U({kA, kDk}, 22), U({kA, kDk}, 23), U({kDk, kDk}, 24)}));
}

// ---- properties ----

// A decoder prepares the keys once and scores one step at a time: the same scores as one call.
TEST(QkvScoreProperties, PreparedKeysReusedPerStepEqualOneCall) {
  Generator gen(4);
  QkvScore m(kDq, kDk, kA, kDv, gen, DType::kF64);
  const Tensor q = U({kB, kTq, kDq}, 31), k = U({kB, kTk, kDk}, 32);
  const Tensor all = m.Forward(q, k);
  const Tensor prepared = m.PrepareKeys(k);
  for (int64_t t = 0; t < kTq; ++t) {
    const auto got = m.Scores(q.Narrow(1, t, 1), prepared).Contiguous().ToVector<double>();
    const auto want = all.Narrow(1, t, 1).Contiguous().ToVector<double>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-13) << t;
  }
}

// The scores are the library's scaled dot product of the projected query and keys, and the
// context is the weights applied to the projected values: the layer is exactly its formula.
TEST(QkvScoreProperties, IsTheScaledDotProductOfTheProjections) {
  Generator gen(5);
  QkvScore m(kDq, kDk, kA, kDv, gen, DType::kF64);
  const Tensor q = U({kB, kTq, kDq}, 41), k = U({kB, kTk, kDk}, 42);
  const Tensor mask = Mask({0, 0, 1, 0, 1, 0, 0, 0, 0, 0}, {kB, 1, kTk});
  const Tensor pq = m.query_proj->Forward(q), pk = m.key_proj->Forward(k);
  const Tensor want_scores = ScaledDotScore().Forward(pq, pk);
  const Attended want = ScaledDotProductAttention(pq, pk, m.value_proj->Forward(k), mask);
  const Attended got = m.Attend(q, k, mask);
  auto near = [](const Tensor& a, const Tensor& b) {
    const auto x = a.Contiguous().ToVector<double>(), y = b.Contiguous().ToVector<double>();
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-13) << i;
  };
  near(m.Forward(q, k), want_scores);
  near(got.weights, want.weights);
  near(got.context, want.context);
  EXPECT_EQ(got.context.shape(), Shape({kB, kTq, kDv}));
}

// Weights are distributions over the kept keys (zero on the masked ones; a row with none kept is
// all zero, and so is its context), and keeping one key returns that key's value W_v h_j.
TEST(QkvScoreProperties, WeightsAreMaskedDistributionsAndOneKeyGivesItsValue) {
  Generator gen(6);
  QkvScore m(kDq, kDk, kA, kDv, gen, DType::kF64);
  const Tensor q = U({kB, kTq, kDq}, 51, 3.0), k = U({kB, kTk, kDk}, 52, 3.0);
  // Batch 0: every query sees only key 3; batch 1: row 0 sees keys 0, 1; row 1 none; row 2 all.
  std::vector<bool> bits(kB * kTq * kTk, true);
  for (int64_t t = 0; t < kTq; ++t) bits[t * kTk + 3] = false;
  bits[kTq * kTk + 0] = bits[kTq * kTk + 1] = false;
  for (int64_t j = 0; j < kTk; ++j) bits[(kTq + 2) * kTk + j] = false;
  const Tensor mask = Mask(bits, {kB, kTq, kTk});
  const Attended a = m.Attend(q, k, mask);
  const auto w = a.weights.ToVector<double>();
  const auto ctx = a.context.Contiguous().ToVector<double>();
  const auto value = m.value_proj->Forward(k).Contiguous().ToVector<double>();  // [B, Tk, Dv]
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t t = 0; t < kTq; ++t) {
      double sum = 0;
      for (int64_t j = 0; j < kTk; ++j) {
        const size_t i = (b * kTq + t) * kTk + j;
        if (bits[i]) {
          EXPECT_EQ(w[i], 0.0) << b << " " << t << " " << j;
        }
        EXPECT_GE(w[i], 0.0);
        sum += w[i];
      }
      const bool empty = b == 1 && t == 1;
      EXPECT_NEAR(sum, empty ? 0.0 : 1.0, 1e-12) << b << " " << t;
      for (int64_t d = 0; d < kDv; ++d) {
        const double got = ctx[(b * kTq + t) * kDv + d];
        if (empty) {
          EXPECT_EQ(got, 0.0);
        }
        if (b == 0) {
          EXPECT_NEAR(got, value[(0 * kTk + 3) * kDv + d], 1e-13);
        }
      }
    }
}

TEST(QkvScoreProperties, ParametersHaveTorchNamesAndShapes) {
  Generator gen(7);
  std::vector<std::string> names;
  for (const auto& [n, p] : QkvScore(4, 6, 7, 3, gen).NamedParameters())
    names.push_back(n + p.shape().str());
  EXPECT_EQ(names, (std::vector<std::string>{"query_proj.weight[7, 4]", "key_proj.weight[7, 6]",
                                             "value_proj.weight[3, 6]"}));
}

TEST(QkvScoreErrors, BadShapesNameTheLayerAndShapes) {
  Generator gen(8);
  QkvScore m(4, 6, 7, 3, gen);
  const Tensor q4 = Tensor::Zeros({2, 3, 4}), k6 = Tensor::Zeros({2, 5, 6});
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(q4, Tensor::Zeros({2, 5, 4}));
              }),
              AllOf(HasSubstr("QkvScore"), HasSubstr("[2, 5, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3, 6}), k6);
              }),
              AllOf(HasSubstr("QkvScore"), HasSubstr("[2, 3, 6]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Attend(q4, Tensor::Zeros({3, 5, 6}));
              }),
              AllOf(HasSubstr("QkvScore"), HasSubstr("[3, 5, 6]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Scores(q4, Tensor::Zeros({2, 5, 6}));
              }),
              AllOf(HasSubstr("QkvScore: prepared keys"), HasSubstr("[2, 5, 6]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Attend(q4, k6, Tensor::Zeros({2, 3, 4}, DType::kBool));
              }),
              HasSubstr("QkvScore"));
  EXPECT_THAT(ThrownMessage([&] { QkvScore(4, 6, 0, 3, gen); }),
              AllOf(HasSubstr("QkvScore"), HasSubstr("attention 0")));
}

}  // namespace
}  // namespace attend::attention
