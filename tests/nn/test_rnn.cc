// Tests of the recurrent layers: the gate kernels (vector against scalar), f64 finite-difference
// gradient checks of the fused layer op and of the modules' parameters, packed-sequence
// properties (padding never leaks, final states at each sequence's last step), module plumbing
// (names, shapes, init, dropout, errors), and PyTorch's torch.nn.GRU/LSTM/GRUCell/LSTMCell on the
// same weights (tests/reference/rnn_reference.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/autograd.h"
#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "backend/cpu/reference/rnn_kernels.h"
#include "backend/cpu/simd/rnn_kernels.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"
#include "support/random.h"

namespace attend {

// Names the mode in gtest's listings of parameterised tests.
void PrintTo(RnnMode mode, std::ostream* os) { *os << (mode == RnnMode::kLstm ? "LSTM" : "GRU"); }

namespace {

using attend::testing::RandomFloats;

using gradcheck::GradCheckMulti;
using gradcheck::Indices;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Gate kernels: Highway f32 against the scalar reference (in f32), on widths with tails.
// ---------------------------------------------------------------------------------------------

// Highway's Exp and Tanh are within a few ulp of std::exp/std::tanh; the kernels chain at most
// three of them, so 2e-6 relative (about 17 ulp) is ample while any formula slip shows at 1e-2.
void ExpectCloseVec(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 2e-6f * std::max(1.0f, std::abs(want[i])))
        << what << " at " << i << " of " << got.size();
}

const int64_t kWidths[] = {1, 5, 16, 17, 37, 64};

TEST(RnnKernels, LstmForwardAndBackwardMatchReference) {
  for (int64_t h : kWidths) {
    for (bool bias : {false, true}) {
      auto xp = RandomFloats(4 * h, -3, 3, 1), hp = RandomFloats(4 * h, -3, 3, 2);
      auto b = RandomFloats(4 * h, -1, 1, 3), c0 = RandomFloats(h, -2, 2, 4);
      std::vector<float> act(4 * h), act_r(4 * h), c(h), c_r(h), tc(h), tc_r(h), y(h), y_r(h);
      cpu::simd::LstmForwardRow(xp.data(), hp.data(), bias ? b.data() : nullptr, c0.data(),
                                act.data(), c.data(), tc.data(), y.data(), h);
      cpu::ref::LstmForwardRow<float>(xp.data(), hp.data(), bias ? b.data() : nullptr, c0.data(),
                                      act_r.data(), c_r.data(), tc_r.data(), y_r.data(), h);
      const std::string what = "LSTM h=" + std::to_string(h);
      ExpectCloseVec(act, act_r, what + " act");
      ExpectCloseVec(c, c_r, what + " c");
      ExpectCloseVec(tc, tc_r, what + " tanh(c)");
      ExpectCloseVec(y, y_r, what + " h");
      // In place, as the layer op runs it: c_prev and c_new the same buffer.
      std::vector<float> c_in = c0;
      cpu::simd::LstmForwardRow(xp.data(), hp.data(), bias ? b.data() : nullptr, c_in.data(),
                                act.data(), c_in.data(), tc.data(), y.data(), h);
      ExpectCloseVec(c_in, c_r, what + " c in place");

      for (bool with_dy : {false, true}) {
        auto dy = RandomFloats(h, -1, 1, 5);
        auto dh = RandomFloats(h, -1, 1, 6), dc = RandomFloats(h, -1, 1, 7);
        auto dh_r = dh, dc_r = dc;
        std::vector<float> dg(4 * h), dg_r(4 * h);
        cpu::simd::LstmBackwardRow(act_r.data(), c0.data(), tc_r.data(),
                                   with_dy ? dy.data() : nullptr, dh.data(), dc.data(), dg.data(),
                                   h);
        cpu::ref::LstmBackwardRow<float>(act_r.data(), c0.data(), tc_r.data(),
                                         with_dy ? dy.data() : nullptr, dh_r.data(), dc_r.data(),
                                         dg_r.data(), h);
        ExpectCloseVec(dg, dg_r, what + " dgates");
        ExpectCloseVec(dc, dc_r, what + " dc");
        ExpectCloseVec(dh, dh_r, what + " dh");
      }
    }
  }
}

TEST(RnnKernels, GruForwardAndBackwardMatchReference) {
  for (int64_t h : kWidths) {
    for (bool bias : {false, true}) {
      auto xp = RandomFloats(3 * h, -3, 3, 11), hp = RandomFloats(3 * h, -3, 3, 12);
      auto bx = RandomFloats(3 * h, -1, 1, 13), bhn = RandomFloats(h, -1, 1, 14);
      auto h0 = RandomFloats(h, -1, 1, 15);
      std::vector<float> act(3 * h), act_r(3 * h), hn(h), hn_r(h), y(h), y_r(h);
      cpu::simd::GruForwardRow(xp.data(), hp.data(), bias ? bx.data() : nullptr,
                               bias ? bhn.data() : nullptr, h0.data(), act.data(), hn.data(),
                               y.data(), h);
      cpu::ref::GruForwardRow<float>(xp.data(), hp.data(), bias ? bx.data() : nullptr,
                                     bias ? bhn.data() : nullptr, h0.data(), act_r.data(),
                                     hn_r.data(), y_r.data(), h);
      const std::string what = "GRU h=" + std::to_string(h);
      ExpectCloseVec(act, act_r, what + " act");
      ExpectCloseVec(hn, hn_r, what + " hn");
      ExpectCloseVec(y, y_r, what + " h");
      for (bool with_dy : {false, true}) {
        auto dy = RandomFloats(h, -1, 1, 16), dh = RandomFloats(h, -1, 1, 17);
        auto dh_r = dh;
        std::vector<float> dgx(3 * h), dgx_r(3 * h), dgh(3 * h), dgh_r(3 * h);
        cpu::simd::GruBackwardRow(act_r.data(), hn_r.data(), h0.data(),
                                  with_dy ? dy.data() : nullptr, dh.data(), dgx.data(), dgh.data(),
                                  h);
        cpu::ref::GruBackwardRow<float>(act_r.data(), hn_r.data(), h0.data(),
                                        with_dy ? dy.data() : nullptr, dh_r.data(), dgx_r.data(),
                                        dgh_r.data(), h);
        ExpectCloseVec(dgx, dgx_r, what + " dgx");
        ExpectCloseVec(dgh, dgh_r, what + " dgh");
        ExpectCloseVec(dh, dh_r, what + " dh");
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient checks of the layer op (f64, central differences; tests/support/gradcheck.h).
// ---------------------------------------------------------------------------------------------

Tensor U(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return RandomUniform(s, seed, lo, hi);
}

// Weights of one layer for D directions, drawn like PyTorch's init (bound 1/sqrt(H)) but a
// little wider so every gate is exercised away from saturation.
struct LayerParams {
  std::vector<Tensor> w_ih, w_hh, b_ih, b_hh;
};
LayerParams MakeLayer(int64_t gates, int64_t in, int64_t h, int nd, bool bias, uint64_t seed) {
  LayerParams p;
  for (int d = 0; d < nd; ++d) {
    p.w_ih.push_back(U({gates * h, in}, seed + 10 * d + 1, -0.7, 0.7));
    p.w_hh.push_back(U({gates * h, h}, seed + 10 * d + 2, -0.7, 0.7));
    if (bias) {
      p.b_ih.push_back(U({gates * h}, seed + 10 * d + 3, -0.5, 0.5));
      p.b_hh.push_back(U({gates * h}, seed + 10 * d + 4, -0.5, 0.5));
    }
  }
  return p;
}

// Flattens the parameters into one list, in the order (w_ih, w_hh, [b_ih, b_hh]) per direction.
void AppendParams(const LayerParams& p, std::vector<Tensor>* out) {
  for (size_t d = 0; d < p.w_ih.size(); ++d) {
    out->push_back(p.w_ih[d]);
    out->push_back(p.w_hh[d]);
    if (!p.b_ih.empty()) {
      out->push_back(p.b_ih[d]);
      out->push_back(p.b_hh[d]);
    }
  }
}

// Reads back a LayerParams from the gradcheck inputs starting at *pos.
LayerParams TakeParams(const std::vector<Tensor>& in, size_t* pos, int nd, bool bias) {
  LayerParams p;
  for (int d = 0; d < nd; ++d) {
    p.w_ih.push_back(in[(*pos)++]);
    p.w_hh.push_back(in[(*pos)++]);
    if (bias) {
      p.b_ih.push_back(in[(*pos)++]);
      p.b_hh.push_back(in[(*pos)++]);
    }
  }
  return p;
}

struct LayerCase {
  RnnMode mode;
  int nd;
  bool bias;
  int64_t nb, nt, in, h;
  std::vector<int64_t> lengths;  // empty: all T
  bool h0, c0;
};

::testing::AssertionResult CheckLayer(const LayerCase& lc) {
  const bool lstm = lc.mode == RnnMode::kLstm;
  const int64_t gates = lstm ? 4 : 3;
  std::vector<Tensor> inputs{U({lc.nb, lc.nt, lc.in}, 100)};
  AppendParams(MakeLayer(gates, lc.in, lc.h, lc.nd, lc.bias, 200), &inputs);
  const size_t first_state = inputs.size();
  if (lc.h0) inputs.push_back(U({lc.nd, lc.nb, lc.h}, 300, -0.8, 0.8));
  if (lc.c0) inputs.push_back(U({lc.nd, lc.nb, lc.h}, 301, -0.8, 0.8));
  Tensor lengths = lc.lengths.empty() ? Tensor() : Indices(lc.lengths, Shape{lc.nb});
  auto fn = [&](const std::vector<Tensor>& in) {
    size_t pos = 1;
    LayerParams p = TakeParams(in, &pos, lc.nd, lc.bias);
    Tensor h0 = lc.h0 ? in[first_state] : Tensor();
    Tensor c0 = lc.c0 ? in[first_state + (lc.h0 ? 1 : 0)] : Tensor();
    RnnLayerOutput r = RnnLayer(lc.mode, in[0], p.w_ih, p.w_hh, p.b_ih, p.b_hh, h0, c0, lengths);
    std::vector<Tensor> outs{r.output, r.h_n};
    if (lstm) outs.push_back(r.c_n);
    return outs;
  };
  return GradCheckMulti(fn, inputs);
}

TEST(RnnLayerGrad, LstmUnidirectionalPaddedWithStates) {
  EXPECT_TRUE(CheckLayer({RnnMode::kLstm, 1, true, 3, 4, 5, 3, {4, 2, 3}, true, true}));
}
TEST(RnnLayerGrad, LstmUnidirectionalFullLengthNoStates) {
  EXPECT_TRUE(CheckLayer({RnnMode::kLstm, 1, true, 2, 3, 3, 5, {}, false, false}));
}
TEST(RnnLayerGrad, LstmBidirectionalPaddedOnlyC0NoBias) {
  // max(lengths) < T: the last steps are padding for every sequence.
  EXPECT_TRUE(CheckLayer({RnnMode::kLstm, 2, false, 3, 5, 2, 3, {3, 1, 2}, false, true}));
}
TEST(RnnLayerGrad, LstmBidirectionalPaddedWithStates) {
  EXPECT_TRUE(CheckLayer({RnnMode::kLstm, 2, true, 3, 5, 3, 3, {5, 1, 3}, true, true}));
}
TEST(RnnLayerGrad, GruUnidirectionalPaddedWithH0) {
  EXPECT_TRUE(CheckLayer({RnnMode::kGru, 1, true, 3, 4, 5, 3, {2, 4, 1}, true, false}));
}
TEST(RnnLayerGrad, GruBidirectionalPadded) {
  EXPECT_TRUE(CheckLayer({RnnMode::kGru, 2, true, 3, 5, 2, 3, {5, 1, 3}, false, false}));
}
TEST(RnnLayerGrad, GruBidirectionalNoBiasWithH0) {
  EXPECT_TRUE(CheckLayer({RnnMode::kGru, 2, false, 2, 3, 3, 5, {2, 3}, true, false}));
}

// A decoder steps the layer one time step per call with the same weights: each call's weight
// gradients are added by its GEMM into the engine's running sum (autograd/node.h,
// PendingGradient), and the input's slices into one gradient. The result equals one call over
// the whole sequence and the finite differences.
TEST(RnnLayerGrad, SteppedOneCallPerTimeStepEqualsTheWholeSequence) {
  for (RnnMode mode : {RnnMode::kGru, RnnMode::kLstm}) {
    const bool lstm = mode == RnnMode::kLstm;
    const int64_t gates = lstm ? 4 : 3, nb = 3, nt = 4, in = 3, h = 5;
    std::vector<Tensor> inputs{U({nb, nt, in}, 800)};
    AppendParams(MakeLayer(gates, in, h, 1, true, 810), &inputs);
    inputs.push_back(U({1, nb, h}, 820, -0.8, 0.8));
    if (lstm) inputs.push_back(U({1, nb, h}, 821, -0.8, 0.8));
    auto run = [&](const std::vector<Tensor>& inp, bool stepped) {
      size_t pos = 1;
      LayerParams p = TakeParams(inp, &pos, 1, true);
      Tensor hs = inp[pos], cs = lstm ? inp[pos + 1] : Tensor();
      if (!stepped) {
        RnnLayerOutput r = RnnLayer(mode, inp[0], p.w_ih, p.w_hh, p.b_ih, p.b_hh, hs, cs, Tensor());
        return std::vector<Tensor>{r.output, r.h_n};
      }
      std::vector<Tensor> steps;
      for (int64_t t = 0; t < nt; ++t) {
        RnnLayerOutput r = RnnLayer(mode, inp[0].Narrow(1, t, 1), p.w_ih, p.w_hh, p.b_ih, p.b_hh,
                                    hs, cs, Tensor());
        steps.push_back(r.output);
        hs = r.h_n;
        cs = r.c_n;
      }
      return std::vector<Tensor>{Concat(steps, 1), hs};
    };
    EXPECT_TRUE(
        GradCheckMulti([&](const std::vector<Tensor>& inp) { return run(inp, true); }, inputs));
    // The same cotangents through both: every gradient agrees to rounding.
    std::vector<std::vector<Tensor>> grads(2);
    for (int stepped = 0; stepped < 2; ++stepped) {
      std::vector<Tensor> leaves;
      for (const Tensor& t : inputs) {
        leaves.push_back(t.Clone());
        leaves.back().set_requires_grad(true);
      }
      std::vector<Tensor> outs = run(leaves, stepped == 1);
      Sum(Add(Sum(Mul(outs[0], U(outs[0].shape(), 830))),
              Sum(Mul(outs[1], U(outs[1].shape(), 831)))))
          .Backward();
      for (const Tensor& l : leaves) grads[stepped].push_back(l.grad());
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::vector<double> a = grads[0][i].ToVector<double>(),
                                b = grads[1][i].ToVector<double>();
      ASSERT_EQ(a.size(), b.size());
      for (size_t j = 0; j < a.size(); ++j)
        EXPECT_NEAR(a[j], b[j], 1e-12)
            << (lstm ? "LSTM" : "GRU") << " input " << i << " element " << j;
    }
  }
}

// Two stacked bidirectional layers with padding, and a strided (time-major) input view.
::testing::AssertionResult CheckTwoLayers(RnnMode mode) {
  const bool lstm = mode == RnnMode::kLstm;
  const int64_t gates = lstm ? 4 : 3, nb = 3, nt = 4, in = 3, h = 3;
  Tensor lengths = Indices({2, 4, 3}, Shape{nb});
  std::vector<Tensor> inputs{U({nt, nb, in}, 400)};  // time-major: transposed inside fn
  AppendParams(MakeLayer(gates, in, h, 2, true, 500), &inputs);
  AppendParams(MakeLayer(gates, 2 * h, h, 2, true, 600), &inputs);
  inputs.push_back(U({4, nb, h}, 700, -0.8, 0.8));  // h0 [L*D, B, H]
  if (lstm) inputs.push_back(U({4, nb, h}, 701, -0.8, 0.8));
  auto fn = [&](const std::vector<Tensor>& inp) {
    size_t pos = 1;
    LayerParams p0 = TakeParams(inp, &pos, 2, true), p1 = TakeParams(inp, &pos, 2, true);
    Tensor h0 = inp[pos], c0 = lstm ? inp[pos + 1] : Tensor();
    Tensor x = inp[0].Transpose(0, 1);  // [B, T, in], not contiguous
    RnnLayerOutput r0 = RnnLayer(mode, x, p0.w_ih, p0.w_hh, p0.b_ih, p0.b_hh, h0.Narrow(0, 0, 2),
                                 lstm ? c0.Narrow(0, 0, 2) : Tensor(), lengths);
    RnnLayerOutput r1 = RnnLayer(mode, r0.output, p1.w_ih, p1.w_hh, p1.b_ih, p1.b_hh,
                                 h0.Narrow(0, 2, 2), lstm ? c0.Narrow(0, 2, 2) : Tensor(), lengths);
    std::vector<Tensor> outs{r1.output, Concat({r0.h_n, r1.h_n}, 0)};
    if (lstm) outs.push_back(Concat({r0.c_n, r1.c_n}, 0));
    return outs;
  };
  return GradCheckMulti(fn, inputs);
}

TEST(RnnLayerGrad, LstmTwoLayersBidirectionalPadded) {
  EXPECT_TRUE(CheckTwoLayers(RnnMode::kLstm));
}
TEST(RnnLayerGrad, GruTwoLayersBidirectionalPadded) { EXPECT_TRUE(CheckTwoLayers(RnnMode::kGru)); }

// ---------------------------------------------------------------------------------------------
// Module parameter gradients against central differences (f64): the gradcheck harness takes
// its inputs as arguments, but a module owns its parameters, so this perturbs them in place.
// ---------------------------------------------------------------------------------------------

::testing::AssertionResult CheckModuleParams(nn::Module& m,
                                             const std::function<std::vector<Tensor>()>& run) {
  std::vector<Tensor> outs = run();
  std::vector<Tensor> cots;
  for (size_t i = 0; i < outs.size(); ++i) cots.push_back(U(outs[i].shape(), 900 + i));
  m.ZeroGrad();
  Backward(outs, cots);
  std::vector<std::vector<double>> w;
  for (const Tensor& c : cots) w.push_back(c.ToVector<double>());
  // d/dp sum_i <out_i, w_i>, summing only the differences of the outputs (as gradcheck.cc), so
  // outputs that do not move add no rounding error.
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

nn::RnnOptions F64Options(int64_t layers, bool bidir, bool bias = true) {
  nn::RnnOptions o;
  o.num_layers = layers;
  o.bidirectional = bidir;
  o.bias = bias;
  o.dtype = DType::kF64;
  return o;
}

TEST(RnnModuleGrad, LstmTwoLayersBidirectionalPadded) {
  Generator gen(3);
  nn::LSTM lstm(3, 3, gen, F64Options(2, true));
  Tensor x = U({3, 4, 3}, 1), h0 = U({4, 3, 3}, 2, -0.5, 0.5), c0 = U({4, 3, 3}, 3, -0.5, 0.5);
  Tensor lengths = Indices({4, 1, 3}, Shape{3});
  EXPECT_TRUE(CheckModuleParams(lstm, [&] {
    auto r = lstm.Forward(x, lengths, h0, c0);
    return std::vector<Tensor>{r.output, r.h_n, r.c_n};
  }));
}

TEST(RnnModuleGrad, GruTwoLayersBidirectionalPaddedTimeMajor) {
  Generator gen(4);
  nn::RnnOptions o = F64Options(2, true);
  o.batch_first = false;
  nn::GRU gru(2, 3, gen, o);
  Tensor x = U({5, 3, 2}, 1), h0 = U({4, 3, 3}, 2, -0.5, 0.5);
  Tensor lengths = Indices({2, 5, 3}, Shape{3});
  EXPECT_TRUE(CheckModuleParams(gru, [&] {
    auto r = gru.Forward(x, lengths, h0);
    return std::vector<Tensor>{r.output, r.h_n};
  }));
}

TEST(RnnModuleGrad, Cells) {
  Generator gen(5);
  nn::LSTMCell lc(3, 4, gen, true, DType::kF64);
  Tensor x = U({2, 3}, 1), h = U({2, 4}, 2), c = U({2, 4}, 3);
  EXPECT_TRUE(CheckModuleParams(lc, [&] {
    auto [h1, c1] = lc.Forward(x, h, c);
    return std::vector<Tensor>{h1, c1};
  }));
  nn::GRUCell gc(3, 4, gen, false, DType::kF64);
  EXPECT_TRUE(CheckModuleParams(gc, [&] { return std::vector<Tensor>{gc.Forward(x, h)}; }));
  // Unbatched input and state.
  EXPECT_TRUE(CheckModuleParams(
      gc, [&] { return std::vector<Tensor>{gc.Forward(x.Select(0, 1), h.Select(0, 1))}; }));
}

// ---------------------------------------------------------------------------------------------
// Packed-sequence properties.
// ---------------------------------------------------------------------------------------------

std::vector<double> Values(const Tensor& t) { return t.ToVector<double>(); }

// Copies x, then overwrites every padded step (t >= lengths[b]) of [B, T, in] with `value` * a
// different large number per element.
Tensor WithPaddingReplaced(const Tensor& x, const std::vector<int64_t>& len, double scale) {
  std::vector<double> v = Values(x);
  const int64_t nb = x.size(0), nt = x.size(1), in = x.size(2);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t t = len[b]; t < nt; ++t)
      for (int64_t k = 0; k < in; ++k) v[(b * nt + t) * in + k] = scale * (1 + k + 3 * t + 7 * b);
  return Tensor::FromVector(v, x.shape());
}

struct RunResult {
  std::vector<double> output, h_n, c_n, grad_x;
  std::vector<std::vector<double>> grad_params;
};

// Runs a 2-layer bidirectional module on x with lengths, backward with cotangents that are
// random at valid steps and `pad_cot` at padded ones, and returns values and gradients.
RunResult RunStack(nn::RnnBase& m, bool lstm, const Tensor& x_in, const std::vector<int64_t>& len,
                   double pad_cot) {
  Tensor x = x_in.Clone().Detach().set_requires_grad(true);
  Tensor lengths = Indices(len, Shape{static_cast<int64_t>(len.size())});
  RnnLayerOutput r;
  if (lstm) {
    auto o = static_cast<nn::LSTM&>(m).Forward(x, lengths);
    r = {o.output, o.h_n, o.c_n};
  } else {
    auto o = static_cast<nn::GRU&>(m).Forward(x, lengths);
    r = {o.output, o.h_n, Tensor()};
  }
  std::vector<double> dy = Values(U(r.output.shape(), 77));
  const int64_t nt = r.output.size(1), w = r.output.size(2);
  for (size_t b = 0; b < len.size(); ++b)
    for (int64_t t = len[b]; t < nt; ++t)
      for (int64_t k = 0; k < w; ++k) dy[(b * nt + t) * w + k] = pad_cot;
  std::vector<Tensor> roots{r.output, r.h_n},
      cots{Tensor::FromVector(dy, r.output.shape()), U(r.h_n.shape(), 78)};
  if (lstm) {
    roots.push_back(r.c_n);
    cots.push_back(U(r.c_n.shape(), 79));
  }
  m.ZeroGrad();
  Backward(roots, cots);
  RunResult res{Values(r.output),
                Values(r.h_n),
                lstm ? Values(r.c_n) : std::vector<double>{},
                Values(x.grad()),
                {}};
  for (const Tensor& p : m.Parameters()) res.grad_params.push_back(Values(p.grad()));
  return res;
}

class RnnPadding : public ::testing::TestWithParam<RnnMode> {};

TEST_P(RnnPadding, PaddedValuesAndCotangentsChangeNothing) {
  const bool lstm = GetParam() == RnnMode::kLstm;
  Generator gen(11);
  std::unique_ptr<nn::RnnBase> m;
  if (lstm) m = std::make_unique<nn::LSTM>(4, 5, gen, F64Options(2, true));
  else m = std::make_unique<nn::GRU>(4, 5, gen, F64Options(2, true));
  const std::vector<int64_t> len{6, 2, 4, 1};
  Tensor x = U({4, 6, 4}, 5);
  RunResult a = RunStack(*m, lstm, x, len, 0.0);
  RunResult b = RunStack(*m, lstm, WithPaddingReplaced(x, len, 1e3), len, 1e3);
  // Exactly equal: padded steps must not enter any sum (multiplying them by zero would not be
  // enough for 1e3-sized values to vanish from every rounding).
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.h_n, b.h_n);
  EXPECT_EQ(a.c_n, b.c_n);
  EXPECT_EQ(a.grad_x, b.grad_x);
  ASSERT_EQ(a.grad_params.size(), b.grad_params.size());
  for (size_t i = 0; i < a.grad_params.size(); ++i)
    EXPECT_EQ(a.grad_params[i], b.grad_params[i]) << "parameter " << i;
  // Padded steps: zero output and zero input gradient.
  for (int64_t bi = 0; bi < 4; ++bi)
    for (int64_t t = len[bi]; t < 6; ++t) {
      for (int64_t k = 0; k < 10; ++k) EXPECT_EQ(b.output[(bi * 6 + t) * 10 + k], 0.0);
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(b.grad_x[(bi * 6 + t) * 4 + k], 0.0);
    }
}

TEST_P(RnnPadding, FinalStatesAreEachSequencesOwnLastStep) {
  // Each sequence run alone at its own length must give the same outputs and final states as
  // the padded batch: forward direction ends at the last valid step, reverse starts there.
  const bool lstm = GetParam() == RnnMode::kLstm;
  Generator gen(12);
  std::unique_ptr<nn::RnnBase> m;
  if (lstm) m = std::make_unique<nn::LSTM>(3, 4, gen, F64Options(2, true));
  else m = std::make_unique<nn::GRU>(3, 4, gen, F64Options(2, true));
  const std::vector<int64_t> len{3, 5, 1};
  const int64_t nb = 3, nt = 5, h = 4;
  Tensor x = U({nb, nt, 3}, 6), h0 = U({4, nb, h}, 7, -0.5, 0.5), c0 = U({4, nb, h}, 8, -0.5, 0.5);
  Tensor lengths = Indices(len, Shape{nb});
  auto run = [&](const Tensor& xx, const Tensor& ll, const Tensor& hh, const Tensor& cc) {
    NoGradGuard ng;
    if (lstm) {
      auto o = static_cast<nn::LSTM&>(*m).Forward(xx, ll, hh, cc);
      return RnnLayerOutput{o.output, o.h_n, o.c_n};
    }
    auto o = static_cast<nn::GRU&>(*m).Forward(xx, ll, hh);
    return RnnLayerOutput{o.output, o.h_n, Tensor()};
  };
  RnnLayerOutput all = run(x, lengths, h0, c0);
  for (int64_t b = 0; b < nb; ++b) {
    Tensor xb = x.Narrow(0, b, 1).Narrow(1, 0, len[b]);  // [1, len, in]
    RnnLayerOutput one = run(xb, Tensor(), h0.Narrow(1, b, 1), c0.Narrow(1, b, 1));
    auto near = [&](const Tensor& got, const Tensor& want, const char* what) {
      std::vector<double> g = Values(got), w = Values(want);
      ASSERT_EQ(g.size(), w.size()) << what;
      for (size_t i = 0; i < g.size(); ++i)
        EXPECT_NEAR(g[i], w[i], 1e-13) << what << " of sequence " << b << " at " << i;
    };
    near(all.output.Narrow(0, b, 1).Narrow(1, 0, len[b]), one.output, "output");
    near(all.h_n.Narrow(1, b, 1), one.h_n, "h_n");
    if (lstm) near(all.c_n.Narrow(1, b, 1), one.c_n, "c_n");
    for (double v : Values(all.output.Narrow(0, b, 1).Narrow(1, len[b], nt - len[b])))
      EXPECT_EQ(v, 0.0) << "padded output of sequence " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, RnnPadding, ::testing::Values(RnnMode::kLstm, RnnMode::kGru),
                         [](const auto& info) {
                           return std::string(info.param == RnnMode::kLstm ? "LSTM" : "GRU");
                         });

// ---------------------------------------------------------------------------------------------
// Module plumbing.
// ---------------------------------------------------------------------------------------------

TEST(RnnModule, ParameterNamesShapesAndInitMatchPyTorch) {
  Generator gen(1);
  nn::RnnOptions o;
  o.num_layers = 2;
  o.bidirectional = true;
  nn::LSTM lstm(5, 4, gen, o);
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (auto& [n, p] : lstm.NamedParameters()) {
    names.push_back(n);
    shapes.push_back(p.shape().vec());
    EXPECT_TRUE(p.requires_grad()) << n;
    for (double v : p.To(DType::kF64).ToVector<double>()) {
      EXPECT_GE(v, -0.5) << n;  // U(-1/sqrt(H), 1/sqrt(H)) with H = 4
      EXPECT_LE(v, 0.5) << n;
    }
  }
  const std::vector<std::string> want{
      "weight_ih_l0",         "weight_hh_l0",         "bias_ih_l0",         "bias_hh_l0",
      "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
      "weight_ih_l1",         "weight_hh_l1",         "bias_ih_l1",         "bias_hh_l1",
      "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
  EXPECT_EQ(names, want);
  const std::vector<std::vector<int64_t>> want_shapes{
      {16, 5}, {16, 4}, {16}, {16}, {16, 5}, {16, 4}, {16}, {16},
      {16, 8}, {16, 4}, {16}, {16}, {16, 8}, {16, 4}, {16}, {16}};
  EXPECT_EQ(shapes, want_shapes);

  nn::RnnOptions no_bias;
  no_bias.bias = false;
  nn::GRU gru(3, 7, gen, no_bias);
  names.clear();
  for (auto& [n, p] : gru.NamedParameters()) names.push_back(n + p.shape().str());
  EXPECT_EQ(names, (std::vector<std::string>{"weight_ih_l0[21, 3]", "weight_hh_l0[21, 7]"}));

  nn::GRUCell cell(3, 2, gen);
  names.clear();
  for (auto& [n, p] : cell.NamedParameters()) names.push_back(n + p.shape().str());
  EXPECT_EQ(names, (std::vector<std::string>{"weight_ih[6, 3]", "weight_hh[6, 2]", "bias_ih[6]",
                                             "bias_hh[6]"}));
  // Same seed, same parameters.
  Generator g1(9), g2(9);
  nn::LSTM a(5, 4, g1, o), b(5, 4, g2, o);
  EXPECT_EQ(Values(a.weight_hh(1, 1).To(DType::kF64)), Values(b.weight_hh(1, 1).To(DType::kF64)));
}

TEST(RnnModule, BatchFirstFalseIsTheTransposedComputation) {
  Generator g1(2), g2(2);
  nn::RnnOptions tm = F64Options(2, true);
  tm.batch_first = false;
  nn::GRU a(3, 4, g1, F64Options(2, true)), b(3, 4, g2, tm);
  Tensor x = U({3, 5, 3}, 1);
  Tensor lengths = Indices({5, 2, 4}, Shape{3});
  auto ra = a.Forward(x, lengths);
  auto rb = b.Forward(x.Transpose(0, 1).Contiguous(), lengths);
  EXPECT_EQ(rb.output.shape(), (Shape{5, 3, 8}));
  EXPECT_EQ(Values(ra.output), Values(rb.output.Transpose(0, 1)));
  EXPECT_EQ(Values(ra.h_n), Values(rb.h_n));
}

TEST(RnnModule, DropoutBetweenLayersOnlyInTraining) {
  nn::RnnOptions o = F64Options(3, false);
  o.dropout = 0.5;
  o.dropout_seed = 42;
  Generator g1(3), g2(3), g3(3);
  nn::LSTM drop(4, 6, g1, o), same(4, 6, g2, o);
  nn::LSTM plain(4, 6, g3, F64Options(3, false));
  Tensor x = U({2, 5, 4}, 1);
  // Training: masks differ from the identity, and two modules with the same seed agree.
  auto t1 = drop.Forward(x), t2 = same.Forward(x);
  auto ref = plain.Forward(x);
  EXPECT_EQ(Values(t1.output), Values(t2.output));
  EXPECT_NE(Values(t1.output), Values(ref.output));
  // The first layer's final state comes before any dropout.
  EXPECT_EQ(Values(t1.h_n.Narrow(0, 0, 1)), Values(ref.h_n.Narrow(0, 0, 1)));
  // Eval: dropout is the identity.
  drop.Eval();
  auto e = drop.Forward(x);
  EXPECT_EQ(Values(e.output), Values(ref.output));
  EXPECT_EQ(Values(e.c_n), Values(ref.c_n));
}

TEST(RnnModule, SameResultsWithAnyThreadCount) {
  // The recurrence is split into units (directions, then ranges of sequences) run one per
  // thread: two directions on two threads, a direction split in two with one, four units with
  // four threads. Sizes are large enough for the concurrent path (MakeUnits in rnn_cell.cc);
  // H = 45 leaves vector tails. The split changes the GEMMs' row counts, hence the tolerance.
  const int saved = GetNumThreads();
  struct Config {
    bool lstm, bidir;
    int64_t nb, h;
  };
  for (const Config& cfg : {Config{true, true, 16, 45}, Config{false, false, 24, 64}}) {
    Generator gen(4);
    nn::RnnOptions o;
    o.num_layers = 2;
    o.bidirectional = cfg.bidir;
    std::unique_ptr<nn::RnnBase> m;
    if (cfg.lstm) m = std::make_unique<nn::LSTM>(16, cfg.h, gen, o);
    else m = std::make_unique<nn::GRU>(16, cfg.h, gen, o);
    Tensor x = Tensor::Randn({cfg.nb, 20, 16}, gen);
    Tensor lengths = Tensor::Randint({cfg.nb}, 1, 21, gen);
    std::vector<std::vector<float>> first;
    for (int threads : {1, 2, 3, 4}) {
      SetNumThreads(threads);
      Tensor xr = x.Clone().set_requires_grad(true);
      Tensor out, hn;
      if (cfg.lstm) {
        auto r = static_cast<nn::LSTM&>(*m).Forward(xr, lengths);
        out = r.output;
        hn = r.h_n;
      } else {
        auto r = static_cast<nn::GRU&>(*m).Forward(xr, lengths);
        out = r.output;
        hn = r.h_n;
      }
      m->ZeroGrad();
      Backward({out, hn}, {Tensor::Ones(out.shape()), Tensor::Ones(hn.shape())});
      std::vector<std::vector<float>> results{
          out.ToVector<float>(), hn.ToVector<float>(), xr.grad().ToVector<float>(),
          m->weight_hh(1, 0).grad().ToVector<float>(), m->bias_ih(0, 0).grad().ToVector<float>()};
      if (first.empty()) {
        first = results;
        continue;
      }
      for (size_t i = 0; i < results.size(); ++i) {
        ASSERT_EQ(results[i].size(), first[i].size());
        for (size_t k = 0; k < results[i].size(); ++k)
          ASSERT_NEAR(results[i][k], first[i][k], 1e-5 * std::max(1.0f, std::abs(first[i][k])))
              << (cfg.lstm ? "LSTM" : "GRU") << " with " << threads << " threads: result " << i
              << " element " << k;
      }
    }
  }
  SetNumThreads(saved);
}

TEST(RnnModule, F32AgreesWithF64) {
  // The f32 path (vector kernels, sgemm) against the f64 one (scalar kernels, dgemm).
  for (RnnMode mode : {RnnMode::kLstm, RnnMode::kGru}) {
    const int64_t gates = mode == RnnMode::kLstm ? 4 : 3;
    LayerParams p = MakeLayer(gates, 20, 37, 2, true, 1000);
    Tensor x = U({4, 6, 20}, 1), h0 = U({2, 4, 37}, 2), c0 = U({2, 4, 37}, 3);
    Tensor lengths = Indices({6, 2, 5, 3}, Shape{4});
    auto f32 = [](const std::vector<Tensor>& v) {
      std::vector<Tensor> out;
      for (const Tensor& t : v) out.push_back(t.To(DType::kF32));
      return out;
    };
    const bool lstm = mode == RnnMode::kLstm;
    RnnLayerOutput d =
        RnnLayer(mode, x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, h0, lstm ? c0 : Tensor(), lengths);
    RnnLayerOutput s =
        RnnLayer(mode, x.To(DType::kF32), f32(p.w_ih), f32(p.w_hh), f32(p.b_ih), f32(p.b_hh),
                 h0.To(DType::kF32), lstm ? c0.To(DType::kF32) : Tensor(), lengths);
    std::vector<double> vd = Values(d.output), vs = Values(s.output.To(DType::kF64));
    for (size_t i = 0; i < vd.size(); ++i) ASSERT_NEAR(vs[i], vd[i], 1e-5) << i;
  }
}

TEST(RnnModule, ErrorsNameTheModuleAndShapes) {
  Generator gen(1);
  nn::LSTM lstm(3, 4, gen);
  nn::GRU gru(3, 4, gen);
  Tensor x = Tensor::Zeros({2, 5, 3});
  EXPECT_THAT(ThrownMessage([&] {
                lstm.Forward(Tensor::Zeros({2, 5, 6}));
              }),
              HasSubstr("LSTM: input f32[2, 5, 6] has width 6 but the module was built for "
                        "input_size 3"));
  EXPECT_THAT(ThrownMessage([&] {
                gru.Forward(Tensor::Zeros({5, 3}));
              }),
              HasSubstr("GRU: input must be 3-D"));
  EXPECT_THAT(ThrownMessage([&] {
                gru.Forward(x, Indices({5, 0}, Shape{2}));
              }),
              HasSubstr("lengths[1] = 0 is outside [1, T] = [1, 5]"));
  EXPECT_THAT(ThrownMessage([&] {
                gru.Forward(x, Indices({6, 1}, Shape{2}));
              }),
              HasSubstr("lengths[0] = 6 is outside [1, T] = [1, 5]"));
  EXPECT_THAT(ThrownMessage([&] {
                gru.Forward(x, Indices({5, 1, 2}, Shape{3}));
              }),
              HasSubstr("lengths must be i64 [B] = [2]"));
  EXPECT_THAT(ThrownMessage([&] {
                lstm.Forward(x, Tensor(), Tensor::Zeros({2, 2, 4}));
              }),
              HasSubstr("LSTM: initial h0 f32[2, 2, 4] must be [num_layers * num_directions, "
                        "B, H] = [1, 2, 4]"));
  EXPECT_THAT(ThrownMessage([&] { lstm.Forward(x.To(DType::kF64)); }),
              HasSubstr("LSTM: input f64[2, 5, 3] but parameters are f32"));
  EXPECT_THAT(
      ThrownMessage([&] {
        RnnLayer(RnnMode::kGru, x, {Tensor::Zeros({12, 5})}, {Tensor::Zeros({12, 4})}, {}, {});
      }),
      HasSubstr("RnnLayer(GRU): weight_ih of direction 0 must be [12, 3] for input "
                "f32[2, 5, 3] and hidden size 4, got f32[12, 5]"));
  EXPECT_THAT(ThrownMessage([&] {
                RnnLayer(RnnMode::kGru, x, {Tensor::Zeros({12, 3})}, {Tensor::Zeros({12, 4})}, {},
                         {}, Tensor(), Tensor::Zeros({1, 2, 4}));
              }),
              HasSubstr("a GRU has no cell state c0"));
  EXPECT_THAT(ThrownMessage([&] {
                nn::GRUCell(3, 4, gen).Forward(Tensor::Zeros({2, 3}), Tensor::Zeros({3, 4}));
              }),
              HasSubstr("GRUCell: state h f32[3, 4] must be [2, 4]"));
  EXPECT_THAT(ThrownMessage([&] {
                nn::RnnOptions o;
                o.dropout = 1.5;
                nn::GRU(3, 4, gen, o);
              }),
              HasSubstr("GRU: dropout must be in [0, 1]"));
}

// ---------------------------------------------------------------------------------------------
// PyTorch oracle: torch.nn.GRU/LSTM (with pack_padded_sequence) and the cells on the same
// weights and inputs; every result and gradient compared.
// ---------------------------------------------------------------------------------------------

const reference::LoadedCases& LoadRnnCases() {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("rnn_reference.bin", "tests/reference/rnn_reference.py");
  return loaded;
}

using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;

// The tolerance scale n of each compared tensor (reference_compare.h: |got - want| <= atol * n +
// rtol * |want|), the length of the longest sum feeding one element: a step's gates sum in + H
// products (in = D*H above the first layer); a weight gradient sums over all B*T rows; the
// gradients of x and of the initial states come back through the D*G*H-long sums of
// dgates @ W.
struct RnnAcc {
  double forward, weights, inputs;
};
RnnAcc AccFor(const OpKey& k, int64_t nb, int64_t nt) {
  const int64_t in = k.Int("inp"), h = k.Int("hidden");
  const int64_t nd = k.Has("bidir") && k.Bool("bidir") ? 2 : 1;
  const int64_t layers = k.Int("layers", 1);
  const int64_t gates = k.Str("mode") == "lstm" ? 4 : 3;
  const int64_t widest_in = layers > 1 ? std::max(in, nd * h) : in;
  return {static_cast<double>(widest_in + h), static_cast<double>(nb * nt),
          static_cast<double>(nd * gates * h)};
}

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  const OpKey k(c.op);
  const bool lstm = k.Str("mode") == "lstm";
  const DType dt = k.Str("dtype") == "f64" ? DType::kF64 : DType::kF32;
  const int64_t in = k.Int("inp"), hidden = k.Int("hidden");
  auto leaf = [&](const char* name) {
    const reference::RefTensor* r = c.Find(name);
    return r ? ToTensor(*r).set_requires_grad(true) : Tensor();
  };
  Tensor x = leaf("x"), h0 = leaf("h0"), c0 = leaf("c0");
  Tensor lengths = c.Find("lengths") ? ToTensor(*c.Find("lengths")) : Tensor();
  Generator gen(0);
  std::shared_ptr<nn::Module> module;
  std::function<std::vector<Tensor>()> forward;  // output (rnn only), h_n, c_n (LSTM only)
  int64_t nb = x.size(0), nt = 1;
  if (k.name() == "rnn") {
    nn::RnnOptions o;
    o.num_layers = k.Int("layers");
    o.bidirectional = k.Bool("bidir");
    o.bias = k.Bool("bias");
    o.batch_first = k.Bool("batch_first");
    o.dtype = dt;
    nb = x.size(o.batch_first ? 0 : 1);
    nt = x.size(o.batch_first ? 1 : 0);
    if (lstm) {
      auto m = std::make_shared<nn::LSTM>(in, hidden, gen, o);
      forward = [=] {
        auto r = m->Forward(x, lengths, h0, c0);
        return std::vector<Tensor>{r.output, r.h_n, r.c_n};
      };
      module = m;
    } else {
      auto m = std::make_shared<nn::GRU>(in, hidden, gen, o);
      forward = [=] {
        auto r = m->Forward(x, lengths, h0);
        return std::vector<Tensor>{r.output, r.h_n};
      };
      module = m;
    }
  } else {
    ASSERT_EQ(k.name(), "cell");
    if (lstm) {
      auto m = std::make_shared<nn::LSTMCell>(in, hidden, gen, k.Bool("bias"), dt);
      forward = [=] {
        auto [h, cc] = m->Forward(x, h0, c0);
        return std::vector<Tensor>{h, cc};
      };
      module = m;
    } else {
      auto m = std::make_shared<nn::GRUCell>(in, hidden, gen, k.Bool("bias"), dt);
      forward = [=] { return std::vector<Tensor>{m->Forward(x, h0)}; };
      module = m;
    }
  }
  // torch's weights into the module's parameters (in place: the handles stay the same).
  for (auto& [name, p] : module->NamedParameters()) {
    Tensor q = p;
    q.CopyFrom(ToTensor(Ref(c, name)));
  }
  std::vector<Tensor> outs = forward();
  std::vector<std::string> names;
  if (k.name() == "rnn") names.push_back("output");
  names.push_back("h_n");
  if (lstm) names.push_back("c_n");
  ASSERT_EQ(outs.size(), names.size());
  std::vector<Tensor> cots;
  for (const std::string& n : names) cots.push_back(ToTensor(Ref(c, "d_" + n)));
  Backward(outs, cots);

  const RnnAcc acc = AccFor(k, nb, nt);
  for (size_t i = 0; i < outs.size(); ++i)
    ExpectMatches(c, names[i], outs[i], Ref(c, names[i]), acc.forward);
  ExpectMatches(c, "grad_x", x.grad(), Ref(c, "grad_x"), acc.inputs);
  if (h0.defined()) ExpectMatches(c, "grad_h0", h0.grad(), Ref(c, "grad_h0"), acc.inputs);
  if (c0.defined()) ExpectMatches(c, "grad_c0", c0.grad(), Ref(c, "grad_c0"), acc.inputs);
  for (auto& [name, p] : module->NamedParameters())
    ExpectMatches(c, "grad_" + name, p.grad(), Ref(c, "grad_" + name), acc.weights);
}

// A GRU or an LSTM in eval mode, run through its own Forward (c_n stays undefined for a GRU).
struct EvalRecurrent {
  std::shared_ptr<nn::RnnBase> module;
  std::shared_ptr<nn::GRU> gru;
  std::shared_ptr<nn::LSTM> lstm;
  EvalRecurrent(bool is_lstm, int64_t in, int64_t hidden, Generator& gen,
                const nn::RnnOptions& opt) {
    if (is_lstm) module = lstm = std::make_shared<nn::LSTM>(in, hidden, gen, opt);
    else module = gru = std::make_shared<nn::GRU>(in, hidden, gen, opt);
    module->Eval();
  }
  void Forward(const Tensor& x, const Tensor& lengths, const Tensor& h0, const Tensor& c0,
               Tensor* out, Tensor* hn, Tensor* cn) const {
    if (lstm) {
      auto o = lstm->Forward(x, lengths, h0, c0);
      *out = o.output, *hn = o.h_n, *cn = o.c_n;
    } else {
      auto o = gru->Forward(x, lengths, h0);
      *out = o.output, *hn = o.h_n;
    }
  }
};

// Decoding one step at a time on packed weights equals the module run over the sequence (eval
// mode), for GRU and LSTM, one and two layers, with and without bias.
TEST(PrepackedRecurrentStep, EqualsTheModule) {
  for (bool lstm : {false, true})
    for (int64_t layers : {1, 2})
      for (bool bias : {true, false}) {
        Generator gen(40 + layers);
        nn::RnnOptions opt;
        opt.num_layers = layers;
        opt.bias = bias;
        opt.dropout = 0.3;  // off in eval mode, as in the packed step
        EvalRecurrent rnn(lstm, 6, 5, gen, opt);
        const int64_t b = 3, t_len = 4;
        Tensor x = Tensor::Randn({b, t_len, 6}, gen), h0 = Tensor::Randn({layers, b, 5}, gen),
               c0 = Tensor::Randn({layers, b, 5}, gen);
        NoGradGuard no_grad;
        Tensor out, hn, cn;
        rnn.Forward(x, Tensor(), h0, c0, &out, &hn, &cn);
        nn::PrepackedRecurrentStep step(*rnn.module);
        Tensor h = h0, c = c0;
        for (int64_t t = 0; t < t_len; ++t) {
          Tensor top = step.Step(x.Select(1, t), &h, lstm ? &c : nullptr);
          auto got = top.ToVector<float>(), want = out.Select(1, t).ToVector<float>();
          for (size_t i = 0; i < got.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-5) << (lstm ? "lstm" : "gru") << " layers " << layers
                                               << " bias " << bias << " step " << t;
        }
        auto gh = h.ToVector<float>(), wh = hn.ToVector<float>();
        for (size_t i = 0; i < gh.size(); ++i) ASSERT_NEAR(gh[i], wh[i], 1e-5);
        if (lstm) {
          auto gc = c.ToVector<float>(), wc = cn.ToVector<float>();
          for (size_t i = 0; i < gc.size(); ++i) ASSERT_NEAR(gc[i], wc[i], 1e-5);
        }
      }
}

TEST(PrepackedRecurrentStep, RefusesBidirectionalAndBadStates) {
  Generator gen(50);
  nn::RnnOptions bi;
  bi.bidirectional = true;
  nn::GRU encoder(4, 3, gen, bi);
  EXPECT_THROW(nn::PrepackedRecurrentStep{encoder}, Error);
  nn::LSTM decoder(4, 3, gen);
  nn::PrepackedRecurrentStep step(decoder);
  NoGradGuard no_grad;
  Tensor h = Tensor::Zeros({1, 2, 3});
  EXPECT_THROW(step.Step(Tensor::Zeros({2, 4}), &h, nullptr), Error);  // an LSTM needs c
  Tensor c = Tensor::Zeros({1, 2, 3});
  EXPECT_THROW(step.Step(Tensor::Zeros({3, 4}), &h, &c), Error);  // rows differ
  EXPECT_NO_THROW(step.Step(Tensor::Zeros({2, 4}), &h, &c));
}

// The packed whole-sequence module equals the module in eval mode over ragged batches: one
// and two layers, one and two directions, GRU and LSTM (f32 to rounding; int8 and bf16 within
// their rounding of these unit-scale inputs), padded steps zero, final states each sequence's.
TEST(PrepackedRecurrent, EqualsTheModuleOverRaggedBatches) {
  for (bool lstm : {false, true})
    for (int64_t layers : {1, 2})
      for (bool bidirectional : {false, true}) {
        Generator gen(60 + layers + (bidirectional ? 10 : 0));
        nn::RnnOptions opt;
        opt.num_layers = layers;
        opt.bidirectional = bidirectional;
        opt.dropout = 0.3;  // off in eval mode
        EvalRecurrent rnn(lstm, 7, 5, gen, opt);
        const int64_t b = 4, t_len = 6;
        Tensor x = Tensor::Randn({b, t_len, 7}, gen);
        Tensor lengths = Tensor::FromVector(std::vector<int64_t>{3, 6, 1, 5}, {b});
        NoGradGuard no_grad;
        Tensor out, hn, cn;
        rnn.Forward(x, lengths, Tensor(), Tensor(), &out, &hn, &cn);
        for (nn::Precision p : {nn::Precision::kF32, nn::Precision::kBF16, nn::Precision::kInt8}) {
          const float tol = p == nn::Precision::kF32 ? 1e-5f : 0.05f;
          const std::string what = std::string(lstm ? "lstm" : "gru") + " layers " +
                                   std::to_string(layers) + (bidirectional ? " bi " : " uni ") +
                                   nn::PrecisionName(p);
          nn::PrepackedRecurrent packed(*rnn.module, p);
          Tensor ph, pc;
          Tensor got = packed.Forward(x, lengths, &ph, lstm ? &pc : nullptr);
          ASSERT_EQ(got.shape(), out.shape()) << what;
          const auto g = got.ToVector<float>(), w = out.ToVector<float>();
          float worst = 0;
          for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::fabs(g[i] - w[i]));
          EXPECT_LT(worst, tol) << what;
          if (p != nn::Precision::kF32) {
            EXPECT_GT(worst, 0.0f) << what << ": the precision was not used";
          }
          // Padded steps: (b, t) with t >= lengths[b] output zero exactly.
          const std::vector<int64_t> len{3, 6, 1, 5};
          const int64_t width = got.size(2);
          for (int64_t r = 0; r < b; ++r)
            for (int64_t t = len[r]; t < t_len; ++t)
              for (int64_t j = 0; j < width; ++j)
                ASSERT_EQ(g[(r * t_len + t) * width + j], 0.0f) << what << " row " << r;
          const auto gh = ph.ToVector<float>(), wh = hn.ToVector<float>();
          ASSERT_EQ(gh.size(), wh.size()) << what;
          for (size_t i = 0; i < gh.size(); ++i) ASSERT_NEAR(gh[i], wh[i], tol) << what;
          if (lstm) {
            const auto gc = pc.ToVector<float>(), wc = cn.ToVector<float>();
            for (size_t i = 0; i < gc.size(); ++i) ASSERT_NEAR(gc[i], wc[i], tol) << what;
          }
        }
      }
  Generator gen(70);
  nn::GRU gru(4, 3, gen);
  nn::PrepackedRecurrent packed(gru, nn::Precision::kF32);
  NoGradGuard no_grad;
  EXPECT_THROW(packed.Forward(Tensor::Zeros({2, 3, 5}), Tensor(), nullptr, nullptr), Error);
  EXPECT_THROW(
      packed.Forward(Tensor::Zeros({2, 3, 4}), Tensor::FromVector(std::vector<int64_t>{0, 3}, {2}),
                     nullptr, nullptr),
      Error);
}

TEST(RnnTorchReference, AllCases) {
  const reference::LoadedCases& loaded = LoadRnnCases();
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  int rnn = 0, cells = 0;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    (OpKey(c.op).name() == "rnn" ? rnn : cells)++;
  }
  // Every configuration the generator writes (a silently shorter file would test less).
  EXPECT_GE(rnn, 40);
  EXPECT_GE(cells, 12);
}

}  // namespace
}  // namespace attend
