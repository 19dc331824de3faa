// Tests of nn::AdvancedLSTM (Tao and Liu 2018): f64 finite-difference gradients of the inputs,
// states and parameters; properties (history 1 is nn::LSTM on the same weights, one step at a
// time or in chunks equals the whole sequence, padding never changes real outputs, the weights
// are distributions over the filled slots); plumbing (names, shapes, init, dropout, time-major,
// errors); and the PyTorch mirror on the same weights (tests/reference/advanced_lstm_reference.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/autograd.h"
#include "attend/nn.h"
#include "attend/nn/advanced_lstm.h"
#include "attend/nn/rnn.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend {
namespace {

using gradcheck::GradCheckMulti;
using gradcheck::Indices;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using nn::AdvancedLSTM;
using ::testing::HasSubstr;

Tensor U(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return RandomUniform(s, seed, lo, hi);
}

std::vector<double> Values(const Tensor& t) { return t.To(DType::kF64).ToVector<double>(); }

// max |a - b| <= tol, with the first offending element named.
::testing::AssertionResult Close(const Tensor& a, const Tensor& b, double tol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << a.str() << " vs " << b.str();
  const std::vector<double> x = Values(a), y = Values(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= tol))
      return ::testing::AssertionFailure()
             << "element " << i << " of " << a.str() << ": " << x[i] << " vs " << y[i];
  return ::testing::AssertionSuccess();
}

nn::RnnOptions F64Options(int64_t layers, bool bidir, bool bias = true) {
  nn::RnnOptions o;
  o.num_layers = layers;
  o.bidirectional = bidir;
  o.bias = bias;
  o.dtype = DType::kF64;
  return o;
}

AdvancedLSTM::State MakeState(const Tensor& h, const Tensor& c = Tensor(),
                              const Tensor& past_h = Tensor(), const Tensor& past_c = Tensor(),
                              const Tensor& past_count = Tensor()) {
  AdvancedLSTM::State s;
  s.h = h;
  s.c = c;
  s.past_h = past_h;
  s.past_c = past_c;
  s.past_count = past_count;
  return s;
}

nn::AdvancedLstmOptions History(int64_t k, int64_t attention_dim = 0) {
  nn::AdvancedLstmOptions a;
  a.history = k;
  a.attention_dim = attention_dim;
  return a;
}

// Widens every attention vector v so the weights over the history spread well away from uniform
// (the default init gives scores within a few tenths of each other).
void SpreadScores(AdvancedLSTM& m) {
  for (int64_t l = 0; l < m.options().num_layers; ++l)
    for (int d = 0; d < m.num_directions(); ++d) {
      Tensor v = m.weights(l, d).attn_v;
      v.CopyFrom(v * 4.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Gradients against central differences (f64).
// ---------------------------------------------------------------------------------------------

// The inputs x, h0, c0 and the past states, through a 2-layer bidirectional module with
// padding, past counts that differ per row, and every result (output, states, weights) checked.
TEST(AdvancedLstmGrad, InputsAndStatesTwoLayersBidirectionalPadded) {
  Generator gen(11);
  AdvancedLSTM m(3, 3, gen, F64Options(2, true), History(3, 4));
  SpreadScores(m);
  const int64_t nb = 3, nt = 4, k = 3;
  const Tensor lengths = Indices({4, 1, 3}, Shape{nb});
  const Tensor count = Indices({2, 0, 1}, Shape{nb});
  std::vector<Tensor> inputs{U({nb, nt, 3}, 1), U({4, nb, 3}, 2, -0.5, 0.5),
                             U({4, nb, 3}, 3, -0.5, 0.5), U({k - 1, 4, nb, 3}, 4, -0.5, 0.5),
                             U({k - 1, 4, nb, 3}, 5, -0.5, 0.5)};
  auto fn = [&](const std::vector<Tensor>& in) {
    AdvancedLSTM::State st = MakeState(in[1], in[2], in[3], in[4], count);
    std::vector<Tensor> weights;
    Tensor out = m.Forward(in[0], lengths, &st, &weights);
    std::vector<Tensor> outs{out, st.h, st.c, st.past_h, st.past_c};
    outs.insert(outs.end(), weights.begin(), weights.end());
    return outs;
  };
  EXPECT_TRUE(GradCheckMulti(fn, inputs));
}

// Unidirectional, history longer than the sequence, no initial state (the slots before the
// start stay excluded throughout).
TEST(AdvancedLstmGrad, InputHistoryLongerThanSequence) {
  Generator gen(12);
  AdvancedLSTM m(4, 3, gen, F64Options(1, false), History(5, 2));
  SpreadScores(m);
  auto fn = [&](const std::vector<Tensor>& in) {
    AdvancedLSTM::State st;
    std::vector<Tensor> weights;
    Tensor out = m.Forward(in[0], Indices({3, 2}, Shape{2}), &st, &weights);
    return std::vector<Tensor>{out, st.h, st.c, st.past_h, st.past_c, weights[0]};
  };
  EXPECT_TRUE(GradCheckMulti(fn, {U({2, 3, 4}, 7)}));
}

// d/dp of sum_i <out_i, w_i> for every parameter p of the module, against central differences
// (the module owns its parameters, so they are perturbed in place).
::testing::AssertionResult CheckModuleParams(nn::Module& m,
                                             const std::function<std::vector<Tensor>()>& run) {
  std::vector<Tensor> outs = run();
  std::vector<Tensor> cots;
  for (size_t i = 0; i < outs.size(); ++i) cots.push_back(U(outs[i].shape(), 900 + i));
  m.ZeroGrad();
  Backward(outs, cots);
  std::vector<std::vector<double>> w;
  for (const Tensor& c : cots) w.push_back(c.ToVector<double>());
  // Only the differences of the outputs are summed, so outputs that do not move add no rounding.
  auto numeric = [&](double* p) {
    const double eps = 1e-6, saved = *p;
    std::vector<std::vector<double>> plus, minus;
    {
      NoGradGuard ng;
      *p = saved + eps;
      for (const Tensor& o : run()) plus.push_back(o.ToVector<double>());
      *p = saved - eps;
      for (const Tensor& o : run()) minus.push_back(o.ToVector<double>());
    }
    *p = saved;
    double s = 0.0;
    for (size_t i = 0; i < plus.size(); ++i)
      for (size_t k = 0; k < plus[i].size(); ++k) s += (plus[i][k] - minus[i][k]) * w[i][k];
    return s / (2 * eps);
  };
  int bad = 0;
  std::ostringstream msg;
  for (auto& [name, param] : m.NamedParameters()) {
    Tensor p = param;
    Tensor g = p.grad();
    if (!g.defined()) return ::testing::AssertionFailure() << name << " got no gradient";
    std::vector<double> analytic = g.ToVector<double>();
    double* data = p.data<double>();
    for (int64_t k = 0; k < p.numel(); ++k) {
      const double num = numeric(data + k);
      if (std::abs(analytic[k] - num) > 1e-7 + 1e-5 * std::abs(num)) {
        if (bad++ < 8)
          msg << "\n  " << name << "[" << k << "]: analytic " << analytic[k] << ", numeric " << num;
      }
    }
  }
  if (bad)
    return ::testing::AssertionFailure() << bad << " parameter gradients differ:" << msg.str();
  return ::testing::AssertionSuccess();
}

TEST(AdvancedLstmGrad, ParametersTwoLayersBidirectionalPadded) {
  Generator gen(13);
  AdvancedLSTM m(3, 3, gen, F64Options(2, true), History(3, 4));
  SpreadScores(m);
  const Tensor x = U({3, 4, 3}, 1), h0 = U({4, 3, 3}, 2, -0.5, 0.5);
  const Tensor c0 = U({4, 3, 3}, 3, -0.5, 0.5), lengths = Indices({4, 1, 3}, Shape{3});
  EXPECT_TRUE(CheckModuleParams(m, [&] {
    AdvancedLSTM::State st = MakeState(h0, c0);
    std::vector<Tensor> weights;
    Tensor out = m.Forward(x, lengths, &st, &weights);
    std::vector<Tensor> outs{out, st.h, st.c, st.past_h, st.past_c};
    outs.insert(outs.end(), weights.begin(), weights.end());
    return outs;
  }));
}

TEST(AdvancedLstmGrad, ParametersNoBiasTimeMajorWithPast) {
  Generator gen(14);
  nn::RnnOptions o = F64Options(1, false, /*bias=*/false);
  o.batch_first = false;
  AdvancedLSTM m(2, 3, gen, o, History(2, 3));
  SpreadScores(m);
  const Tensor x = U({5, 2, 2}, 1);  // [T, B, in]
  const Tensor ph = U({1, 1, 2, 3}, 2, -0.5, 0.5), pc = U({1, 1, 2, 3}, 3, -0.5, 0.5);
  const Tensor h0 = U({1, 2, 3}, 4, -0.5, 0.5), count = Indices({1, 0}, Shape{2});
  EXPECT_TRUE(CheckModuleParams(m, [&] {
    AdvancedLSTM::State st = MakeState(h0, Tensor(), ph, pc, count);
    std::vector<Tensor> weights;
    Tensor out = m.Forward(x, Indices({5, 3}, Shape{2}), &st, &weights);
    return std::vector<Tensor>{out, st.h, st.c, st.past_h, st.past_c, weights[0]};
  }));
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

// With history 1 the single weight is 1: the module is nn::LSTM on the same weights, in values
// and in every gradient; the attention's own parameters get zero gradients.
TEST(AdvancedLstmProperty, HistoryOneIsTheLstm) {
  for (bool bias : {true, false}) {
    Generator g1(21), g2(22);
    const nn::RnnOptions o = F64Options(2, true, bias);
    AdvancedLSTM a(4, 5, g1, o, History(1, 3));
    nn::LSTM lstm(4, 5, g2, o);
    for (auto& [name, p] : lstm.NamedParameters()) {
      bool found = false;
      for (auto& [an, ap] : a.NamedParameters())
        if (an == name) {
          Tensor q = p;
          q.CopyFrom(ap);
          found = true;
        }
      ASSERT_TRUE(found) << name;
    }
    const Tensor lengths = Indices({6, 2, 5}, Shape{3});
    const Tensor x0 = U({3, 6, 4}, 1), h0 = U({4, 3, 5}, 2), c0 = U({4, 3, 5}, 3);
    Tensor xa = x0.Clone().set_requires_grad(true), xl = x0.Clone().set_requires_grad(true);
    AdvancedLSTM::State st = MakeState(h0, c0);
    std::vector<Tensor> weights;
    Tensor out = a.Forward(xa, lengths, &st, &weights);
    nn::LSTM::Output r = lstm.Forward(xl, lengths, h0, c0);
    EXPECT_TRUE(Close(out, r.output, 1e-13));
    EXPECT_TRUE(Close(st.h, r.h_n, 1e-13));
    EXPECT_TRUE(Close(st.c, r.c_n, 1e-13));
    EXPECT_FALSE(st.past_h.defined());
    for (const Tensor& w : weights) {  // 1 at real steps, 0 at padding
      const std::vector<double> v = Values(w);
      const std::vector<int64_t> len{6, 2, 5};
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t t = 0; t < 6; ++t) EXPECT_EQ(v[b * 6 + t], t < len[b] ? 1.0 : 0.0);
    }
    const Tensor cot = U(out.shape(), 5), cot_h = U(st.h.shape(), 6), cot_c = U(st.c.shape(), 7);
    Backward({out, st.h, st.c}, {cot, cot_h, cot_c});
    Backward({r.output, r.h_n, r.c_n}, {cot, cot_h, cot_c});
    EXPECT_TRUE(Close(xa.grad(), xl.grad(), 1e-12));
    for (auto& [name, p] : a.NamedParameters()) {
      bool in_lstm = false;
      for (auto& [ln, lp] : lstm.NamedParameters())
        if (ln == name) {
          in_lstm = true;
          EXPECT_TRUE(Close(p.grad(), lp.grad(), 1e-12)) << name;
        }
      if (!in_lstm) {
        EXPECT_TRUE(Close(p.grad(), Tensor::Zeros(p.shape(), DType::kF64), 0)) << name;
      }
    }
  }
}

// Decoding one token at a time (and in uneven chunks) continues exactly where a whole-sequence
// run is: outputs, weights and the final state (with its past) are the same.
TEST(AdvancedLstmProperty, StepByStepEqualsTheWholeSequence) {
  for (int64_t k : {1, 2, 3, 5}) {
    Generator gen(30 + k);
    AdvancedLSTM m(4, 5, gen, F64Options(2, false), History(k, 3));
    SpreadScores(m);
    const int64_t nb = 3, nt = 6;
    const Tensor x = U({nb, nt, 4}, 1);
    AdvancedLSTM::State full = MakeState(U({2, nb, 5}, 2), U({2, nb, 5}, 3));
    const AdvancedLSTM::State start = full;
    std::vector<Tensor> full_w;
    const Tensor full_out = m.Forward(x, Tensor(), &full, &full_w);
    for (const std::vector<int64_t>& chunks :
         {std::vector<int64_t>(nt, 1), std::vector<int64_t>{2, 3, 1}}) {
      AdvancedLSTM::State st = start;
      std::vector<Tensor> outs, w0, w1;
      int64_t t0 = 0;
      for (int64_t len : chunks) {
        std::vector<Tensor> w;
        outs.push_back(m.Forward(x.Narrow(1, t0, len), Tensor(), &st, &w));
        w0.push_back(w[0]);
        w1.push_back(w[1]);
        t0 += len;
      }
      SCOPED_TRACE("history " + std::to_string(k) + ", " + std::to_string(chunks.size()) +
                   " chunks");
      EXPECT_TRUE(Close(Concat(outs, 1), full_out, 1e-13));
      EXPECT_TRUE(Close(Concat(w0, 1), full_w[0], 1e-13));
      EXPECT_TRUE(Close(Concat(w1, 1), full_w[1], 1e-13));
      EXPECT_TRUE(Close(st.h, full.h, 1e-13));
      EXPECT_TRUE(Close(st.c, full.c, 1e-13));
      ASSERT_EQ(st.past_h.defined(), k > 1);
      if (k > 1) {
        EXPECT_TRUE(Close(st.past_h, full.past_h, 1e-13));
        EXPECT_TRUE(Close(st.past_c, full.past_c, 1e-13));
        EXPECT_EQ(st.past_count.ToVector<int64_t>(), full.past_count.ToVector<int64_t>());
      }
    }
  }
}

// Beam search's reordering: selecting rows of a state and continuing equals continuing the
// same rows selected from the start.
TEST(AdvancedLstmProperty, SelectRowsReordersTheState) {
  Generator gen(40);
  AdvancedLSTM m(3, 4, gen, F64Options(2, false), History(3));
  SpreadScores(m);
  const Tensor x = U({3, 5, 3}, 1), rows = Indices({2, 0, 0, 1}, Shape{4});
  AdvancedLSTM::State st;
  m.Forward(x.Narrow(1, 0, 2), Indices({2, 1, 2}, Shape{3}), &st);  // per-row past counts differ
  EXPECT_EQ(st.past_count.ToVector<int64_t>(), (std::vector<int64_t>{2, 1, 2}));
  st.SelectRows(rows);
  const Tensor tail = m.Forward(IndexSelect(x, 0, rows).Narrow(1, 2, 3), Tensor(), &st);
  AdvancedLSTM::State ref;
  m.Forward(IndexSelect(x.Narrow(1, 0, 2), 0, rows), Indices({2, 2, 2, 1}, Shape{4}), &ref);
  const Tensor want = m.Forward(IndexSelect(x, 0, rows).Narrow(1, 2, 3), Tensor(), &ref);
  EXPECT_TRUE(Close(tail, want, 1e-13));
  EXPECT_TRUE(Close(st.past_h, ref.past_h, 1e-13));
  EXPECT_EQ(st.past_count.ToVector<int64_t>(), ref.past_count.ToVector<int64_t>());
}

// Each sequence of a padded batch gets exactly what it gets alone; outputs and weights are zero
// past its end.
TEST(AdvancedLstmProperty, PaddingNeverChangesRealOutputs) {
  Generator gen(50);
  AdvancedLSTM m(3, 4, gen, F64Options(2, true), History(3, 5));
  SpreadScores(m);
  const std::vector<int64_t> len{5, 2, 4, 1};
  const int64_t nb = 4, nt = 6;  // max(len) < T: the last step is padding for every sequence
  const Tensor x = U({nb, nt, 3}, 1), h0 = U({4, nb, 4}, 2), c0 = U({4, nb, 4}, 3);
  AdvancedLSTM::State st = MakeState(h0, c0);
  std::vector<Tensor> w;
  const Tensor out = m.Forward(x, Indices(len, Shape{nb}), &st, &w);
  for (int64_t b = 0; b < nb; ++b) {
    SCOPED_TRACE("row " + std::to_string(b));
    AdvancedLSTM::State one = MakeState(h0.Narrow(1, b, 1), c0.Narrow(1, b, 1));
    std::vector<Tensor> w1;
    const Tensor o1 = m.Forward(x.Narrow(0, b, 1).Narrow(1, 0, len[b]), Tensor(), &one, &w1);
    EXPECT_TRUE(Close(out.Narrow(0, b, 1).Narrow(1, 0, len[b]), o1, 1e-13));
    const int64_t pad = nt - len[b];
    EXPECT_TRUE(Close(out.Narrow(0, b, 1).Narrow(1, len[b], pad),
                      Tensor::Zeros({1, pad, 8}, DType::kF64), 0));
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_TRUE(Close(w[i].Narrow(0, b, 1).Narrow(1, 0, len[b]), w1[i], 1e-13));
      EXPECT_TRUE(Close(w[i].Narrow(0, b, 1).Narrow(1, len[b], pad),
                        Tensor::Zeros({1, pad, 3}, DType::kF64), 0));
    }
    EXPECT_TRUE(Close(st.h.Narrow(1, b, 1), one.h, 1e-13));
    EXPECT_TRUE(Close(st.c.Narrow(1, b, 1), one.c, 1e-13));
    EXPECT_TRUE(Close(st.past_h.Narrow(2, b, 1), one.past_h, 1e-13));
    EXPECT_TRUE(Close(st.past_c.Narrow(2, b, 1), one.past_c, 1e-13));
    EXPECT_EQ(st.past_count.ToVector<int64_t>()[b], one.past_count.ToVector<int64_t>()[0]);
  }
}

// At a sequence's j-th step (0-based, in the direction's own order) the weights are a
// distribution over the first min(j + 1, K) slots and zero on the others; with a past of n
// states, over min(j + 1 + n, K).
TEST(AdvancedLstmProperty, WeightsAreDistributionsOverFilledSlots) {
  Generator gen(60);
  const int64_t k = 4, nb = 3, nt = 6;
  AdvancedLSTM m(3, 4, gen, F64Options(1, true), History(k));
  SpreadScores(m);
  const std::vector<int64_t> len{6, 3, 5}, past{0, 2, 3};
  AdvancedLSTM::State st = MakeState(Tensor(), Tensor(), U({k - 1, 2, nb, 4}, 1),
                                     U({k - 1, 2, nb, 4}, 2), Indices(past, Shape{nb}));
  std::vector<Tensor> w;
  m.Forward(U({nb, nt, 3}, 3), Indices(len, Shape{nb}), &st, &w);
  ASSERT_EQ(w.size(), 2u);
  bool spread = false;
  for (int d = 0; d < 2; ++d) {
    const std::vector<double> v = Values(w[d]);
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t t = 0; t < len[b]; ++t) {
        const int64_t j = d == 0 ? t : len[b] - 1 - t;
        const int64_t filled = std::min(j + 1 + past[b], k);
        double sum = 0.0;
        for (int64_t s = 0; s < k; ++s) {
          const double a = v[(b * nt + t) * k + s];
          if (s < filled) {
            EXPECT_GT(a, 0.0);
            sum += a;
            spread = spread || (filled > 1 && std::abs(a - 1.0 / filled) > 0.05);
          } else {
            EXPECT_EQ(a, 0.0) << "direction " << d << " row " << b << " step " << t;
          }
        }
        EXPECT_NEAR(sum, 1.0, 1e-14);
      }
  }
  EXPECT_TRUE(spread) << "the weights never moved away from uniform: the scores do not matter";
  EXPECT_EQ(st.past_count.ToVector<int64_t>(), (std::vector<int64_t>{3, 3, 3}));
}

// ---------------------------------------------------------------------------------------------
// Plumbing.
// ---------------------------------------------------------------------------------------------

TEST(AdvancedLstmModule, ParameterNamesShapesAndInit) {
  Generator gen(1);
  nn::RnnOptions o;
  o.bidirectional = true;
  AdvancedLSTM m(5, 4, gen, o, History(3, 6));
  std::vector<std::string> names;
  for (auto& [n, p] : m.NamedParameters()) {
    names.push_back(n + p.shape().str());
    EXPECT_TRUE(p.requires_grad()) << n;
    // Every bound is 1/sqrt(n) for some n >= 4 here: 1/2 at most.
    for (double v : Values(p)) EXPECT_LE(std::abs(v), 0.5) << n;
  }
  const std::vector<std::string> want{"weight_ih_l0[16, 5]",
                                      "weight_hh_l0[16, 4]",
                                      "bias_ih_l0[16]",
                                      "bias_hh_l0[16]",
                                      "attn_weight_hist_l0[6, 4]",
                                      "attn_weight_in_l0[6, 5]",
                                      "attn_bias_l0[6]",
                                      "attn_v_l0[6]",
                                      "weight_ih_l0_reverse[16, 5]",
                                      "weight_hh_l0_reverse[16, 4]",
                                      "bias_ih_l0_reverse[16]",
                                      "bias_hh_l0_reverse[16]",
                                      "attn_weight_hist_l0_reverse[6, 4]",
                                      "attn_weight_in_l0_reverse[6, 5]",
                                      "attn_bias_l0_reverse[6]",
                                      "attn_v_l0_reverse[6]"};
  EXPECT_EQ(names, want);
  nn::RnnOptions two;
  two.num_layers = 2;
  two.bias = false;
  AdvancedLSTM n(3, 2, gen, two);  // attention_dim 0 = hidden_size; history 2 by default
  names.clear();
  for (auto& [nm, p] : n.NamedParameters()) names.push_back(nm + p.shape().str());
  EXPECT_EQ(names, (std::vector<std::string>{"weight_ih_l0[8, 3]", "weight_hh_l0[8, 2]",
                                             "attn_weight_hist_l0[2, 2]", "attn_weight_in_l0[2, 3]",
                                             "attn_v_l0[2]", "weight_ih_l1[8, 2]",
                                             "weight_hh_l1[8, 2]", "attn_weight_hist_l1[2, 2]",
                                             "attn_weight_in_l1[2, 2]", "attn_v_l1[2]"}));
  EXPECT_EQ(n.history(), 2);
  EXPECT_EQ(n.attention_dim(), 2);
  Generator g1(9), g2(9);
  AdvancedLSTM a(5, 4, g1, o, History(3)), b(5, 4, g2, o, History(3));
  EXPECT_EQ(Values(a.weights(0, 1).attn_v), Values(b.weights(0, 1).attn_v));
}

TEST(AdvancedLstmModule, BatchFirstFalseIsTheTransposedComputation) {
  Generator g1(2), g2(2);
  nn::RnnOptions tm = F64Options(2, true);
  tm.batch_first = false;
  AdvancedLSTM a(3, 4, g1, F64Options(2, true), History(3)), b(3, 4, g2, tm, History(3));
  const Tensor x = U({3, 5, 3}, 1), lengths = Indices({5, 2, 4}, Shape{3});
  AdvancedLSTM::State sa, sb;
  std::vector<Tensor> wa, wb;
  const Tensor oa = a.Forward(x, lengths, &sa, &wa);
  const Tensor ob = b.Forward(x.Transpose(0, 1), lengths, &sb, &wb);
  EXPECT_EQ(ob.shape(), (Shape{5, 3, 8}));
  EXPECT_TRUE(Close(oa, ob.Transpose(0, 1), 0));
  EXPECT_TRUE(Close(sa.past_c, sb.past_c, 0));
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(Close(wa[i], wb[i].Transpose(0, 1), 0));
}

TEST(AdvancedLstmModule, DropoutBetweenLayersOnlyInTraining) {
  nn::RnnOptions o = F64Options(3, false);
  o.dropout = 0.5;
  o.dropout_seed = 42;
  Generator g1(3), g2(3), g3(3);
  AdvancedLSTM drop(4, 6, g1, o), same(4, 6, g2, o), plain(4, 6, g3, F64Options(3, false));
  const Tensor x = U({2, 5, 4}, 1);
  AdvancedLSTM::State s1, s2, s3;
  const Tensor t1 = drop.Forward(x, Tensor(), &s1), t2 = same.Forward(x, Tensor(), &s2);
  const Tensor ref = plain.Forward(x, Tensor(), &s3);
  EXPECT_EQ(Values(t1), Values(t2));
  EXPECT_NE(Values(t1), Values(ref));
  EXPECT_EQ(Values(s1.h.Narrow(0, 0, 1)), Values(s3.h.Narrow(0, 0, 1)));  // before any dropout
  drop.Eval();
  EXPECT_EQ(Values(drop.Forward(x)), Values(ref));
}

TEST(AdvancedLstmModule, F32AgreesWithF64) {
  Generator g1(4), g2(4);
  nn::RnnOptions o32;
  o32.num_layers = 2;
  o32.bidirectional = true;
  nn::RnnOptions o64 = o32;
  o64.dtype = DType::kF64;
  AdvancedLSTM a(6, 8, g1, o32, History(4)), b(6, 8, g2, o64, History(4));
  const nn::NamedTensors pa = a.NamedParameters(), pb = b.NamedParameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    Tensor q = pa[i].second;
    q.CopyFrom(pb[i].second);  // the same values, rounded to f32
  }
  const Tensor x = U({4, 7, 6}, 1), lengths = Indices({7, 3, 5, 1}, Shape{4});
  const Tensor o = a.Forward(x.To(DType::kF32), lengths), w = b.Forward(x, lengths);
  EXPECT_TRUE(Close(o, w, 1e-5));
}

TEST(AdvancedLstmModule, ErrorsNameTheModuleAndShapes) {
  Generator gen(5);
  AdvancedLSTM m(3, 4, gen, {}, History(3));
  const Tensor x = Tensor::Zeros({2, 5, 3});
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 5}));
              }),
              HasSubstr("AdvancedLSTM: input must be 3-D [B, T, in]"));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 5, 4}));
              }),
              HasSubstr("has width 4 but the module was built for input_size 3"));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 5, 3}, DType::kF64));
              }),
              HasSubstr("but parameters are f32"));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(x, Indices({5, 6}, Shape{2}));
              }),
              HasSubstr("lengths[1] = 6 is outside [1, 5]"));
  EXPECT_THAT(ThrownMessage([&] { m.Forward(x, Indices({5}, Shape{1})); }),
              HasSubstr("must be i64 [2]"));
  AdvancedLSTM::State bad_h = MakeState(Tensor::Zeros({2, 2, 4}));
  EXPECT_THAT(ThrownMessage([&] { m.Forward(x, Tensor(), &bad_h); }),
              HasSubstr("state h f32[2, 2, 4] must be f32 [num_layers * num_directions, B, H] = "
                        "[1, 2, 4]"));
  AdvancedLSTM::State half = MakeState(Tensor(), Tensor(), Tensor::Zeros({2, 1, 2, 4}));
  EXPECT_THAT(ThrownMessage([&] { m.Forward(x, Tensor(), &half); }),
              HasSubstr("past_h, past_c and past_count go together"));
  AdvancedLSTM::State bad_past = MakeState(Tensor(), Tensor(), Tensor::Zeros({3, 1, 2, 4}),
                                           Tensor::Zeros({3, 1, 2, 4}), Indices({0, 0}, Shape{2}));
  EXPECT_THAT(ThrownMessage([&] { m.Forward(x, Tensor(), &bad_past); }),
              HasSubstr("[history - 1, num_layers * num_directions, B, H] = [2, 1, 2, 4]"));
  AdvancedLSTM::State bad_count = MakeState(Tensor(), Tensor(), Tensor::Zeros({2, 1, 2, 4}),
                                            Tensor::Zeros({2, 1, 2, 4}), Indices({0, 3}, Shape{2}));
  EXPECT_THAT(ThrownMessage([&] { m.Forward(x, Tensor(), &bad_count); }),
              HasSubstr("past_count[1] = 3 is outside [0, 2]"));
  AdvancedLSTM one(3, 4, gen, {}, History(1));
  EXPECT_THAT(ThrownMessage([&] { one.Forward(x, Tensor(), &bad_count); }),
              HasSubstr("history is 1"));
  EXPECT_THAT(ThrownMessage([&] { AdvancedLSTM(3, 4, gen, {}, History(0)); }),
              HasSubstr("history (the number of previous steps weighed) must be at least 1"));
  EXPECT_THAT(ThrownMessage([&] { AdvancedLSTM(3, 4, gen, {}, History(2, -1)); }),
              HasSubstr("attention_dim must be positive"));
  EXPECT_THAT(ThrownMessage([&] { m.weights(1, 0); }), HasSubstr("no layer 1 direction 0"));
}

// Not a test: the cost of a forward and backward pass against nn::LSTM, for the record.
// build/tests/attend_tests --gtest_also_run_disabled_tests --gtest_filter='*AdvancedLstmSpeed*'
TEST(AdvancedLstmSpeed, DISABLED_ForwardBackwardAgainstLstm) {
  Generator gen(7);
  const int64_t nb = 32, nt = 30, in = 256, h = 256;
  for (int64_t k : {1, 3}) {
    AdvancedLSTM a(in, h, gen, {}, History(k));
    nn::LSTM lstm(in, h, gen);
    const Tensor x = Tensor::Randn({nb, nt, in}, gen);
    auto time = [](const std::function<void()>& f) {
      f();  // warm the allocator
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 3; ++i) f();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
    };
    const double ta = time([&] { Sum(a.Forward(x)).Backward(); });
    const double tl = time([&] { Sum(lstm.Forward(x).output).Backward(); });
    std::printf("B=%lld T=%lld in=H=%lld K=%lld: AdvancedLSTM %.1f ms, LSTM %.1f ms\n",
                static_cast<long long>(nb), static_cast<long long>(nt), static_cast<long long>(h),
                static_cast<long long>(k), ta * 1e3, tl * 1e3);
  }
}

// ---------------------------------------------------------------------------------------------
// PyTorch mirror on the same weights and inputs: every result and gradient compared.
// ---------------------------------------------------------------------------------------------

using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  const OpKey k(c.op);
  nn::RnnOptions o;
  o.num_layers = k.Int("layers");
  o.bidirectional = k.Bool("bidir");
  o.bias = k.Bool("bias");
  o.batch_first = k.Bool("batch_first");
  o.dtype = k.Str("dtype") == "f64" ? DType::kF64 : DType::kF32;
  const int64_t in = k.Int("inp"), hidden = k.Int("hidden"), hist = k.Int("history");
  Generator gen(0);
  AdvancedLSTM m(in, hidden, gen, o, History(hist, k.Int("attn")));
  for (auto& [name, p] : m.NamedParameters()) {
    Tensor q = p;
    q.CopyFrom(ToTensor(Ref(c, name)));
  }
  auto leaf = [&](const char* name) {
    const reference::RefTensor* r = c.Find(name);
    return r ? ToTensor(*r).set_requires_grad(true) : Tensor();
  };
  const Tensor x = leaf("x"), h0 = leaf("h0"), c0 = leaf("c0");
  const Tensor ph = leaf("past_h0"), pc = leaf("past_c0");
  const Tensor count = c.Find("past_count0") ? ToTensor(*c.Find("past_count0")) : Tensor();
  const Tensor lengths = c.Find("lengths") ? ToTensor(*c.Find("lengths")) : Tensor();
  AdvancedLSTM::State st = MakeState(h0, c0, ph, pc, count);
  std::vector<Tensor> weights;
  const Tensor out = m.Forward(x, lengths, &st, &weights);

  std::vector<std::string> names{"output", "h_n", "c_n"};
  std::vector<Tensor> outs{out, st.h, st.c};
  if (hist > 1) {
    names.insert(names.end(), {"past_h", "past_c"});
    outs.insert(outs.end(), {st.past_h, st.past_c});
    EXPECT_EQ(st.past_count.ToVector<int64_t>(),
              ToTensor(Ref(c, "past_count")).ToVector<int64_t>());
  }
  const int nd = m.num_directions();
  ASSERT_EQ(weights.size(), static_cast<size_t>(o.num_layers * nd));
  for (int64_t l = 0; l < o.num_layers; ++l)
    for (int d = 0; d < nd; ++d) {
      names.push_back("attn_l" + std::to_string(l) + (d ? "_reverse" : ""));
      outs.push_back(weights[static_cast<size_t>(l * nd + d)]);
    }
  std::vector<Tensor> cots;
  for (const std::string& n : names) cots.push_back(ToTensor(Ref(c, "d_" + n)));
  Backward(outs, cots);

  // Tolerance scales (reference_compare.h): a step's gate sums in + H products, its scores A,
  // its mix K; a parameter gradient sums over every row, step and slot; the input and state
  // gradients come back through the 4H + A-long sums of each direction.
  const int64_t a = m.attention_dim(), nb = x.size(o.batch_first ? 0 : 1);
  const int64_t nt = x.size(o.batch_first ? 1 : 0);
  const int64_t widest_in = o.num_layers > 1 ? std::max(in, nd * hidden) : in;
  const double forward = static_cast<double>(widest_in + hidden + a + hist);
  const double params = static_cast<double>(nb * nt * hist);
  const double inputs = static_cast<double>(nd * (4 * hidden + a));
  for (size_t i = 0; i < outs.size(); ++i)
    ExpectMatches(c, names[i], outs[i], Ref(c, names[i]), forward);
  ExpectMatches(c, "grad_x", x.grad(), Ref(c, "grad_x"), inputs);
  for (const auto& [t, n] : {std::pair{h0, "grad_h0"}, std::pair{c0, "grad_c0"},
                             std::pair{ph, "grad_past_h0"}, std::pair{pc, "grad_past_c0"}})
    if (t.defined()) ExpectMatches(c, n, t.grad(), Ref(c, n), inputs);
  for (auto& [name, p] : m.NamedParameters())
    ExpectMatches(c, "grad_" + name, p.grad(), Ref(c, "grad_" + name), params);
}

TEST(AdvancedLstmTorchReference, AllCases) {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "advanced_lstm_reference.bin", "tests/reference/advanced_lstm_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  for (const RefCase& c : loaded.cases) ReplayCase(c);
  EXPECT_GE(loaded.cases.size(), 17u);  // every case the generator writes
}

}  // namespace
}  // namespace attend
