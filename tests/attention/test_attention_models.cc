// The structures of attention_models.h: against PyTorch, by finite differences, by properties.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attend/attend.h"
#include "attend/attention_models.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"

namespace attend::attention {
namespace {

using gradcheck::GradCheckMulti;
using gradcheck::Indices;
using gradcheck::Mask;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Xs = std::vector<Tensor>;

constexpr DType kF64 = DType::kF64;

// ---------------------------------------------------------------------------------------------
// Against PyTorch (tests/reference/structures_reference.py).
// ---------------------------------------------------------------------------------------------

using reference::ExpectMatches;
using reference::Named;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;

const reference::LoadedCases& Cases() {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "structures_reference.bin", "tests/reference/structures_reference.py");
  return loaded;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

// One case rebuilt in attend: the structure with torch's parameters, its inputs (floating ones
// requiring grad) and its outputs in the file's y<i> order.
struct Replay {
  std::shared_ptr<nn::Module> module;
  Xs inputs, outputs;
  // Accumulation length for reference::Tolerance (see AccumulationLength).
  double n = 1;
};

// The longest chain of rounding-error-accumulating terms behind any compared element, for the
// tolerance atol * n + rtol * |want| (reference_compare.h). Every count is the length of one
// sum, added up along the longest path from an input to a compared element, so it is an
// upper-bound-style estimate rather than a fitted number:
//   context attention: proj (D) + score (A) + context/softmax (T) + parameter gradients, which
//     sum over every (batch, step) pair (B * T).
//   HAN: embedding -> word GRU (W steps, each a (E + Hw)-long gate dot in both directions) ->
//     word attention (2Hw + A + W) -> sentence GRU (S steps of (2Hw + Hs)) -> sentence attention
//     (2Hs + A + S); parameter gradients of the word level sum over all B * S * W positions.
//   SAB: T steps, each a (in + H)-long gate dot, plus an attention over up to T / katt
//     memories with an H-long concat score; weight gradients sum over B * T steps.
//   stacked latent: L layers of (Dq or Dk) + A + Tk; parameter gradients over B * Tq * Tk.
//   transparent: E layers mixed; logits gradients sum over B * T * D elements.
//   squeeze-excitation: the spatial mean (H * W) + C + C / r; weight gradients over B.
//   image attention: key projection C + A + softmax/context over H * W; parameter gradients
//     over B * H * W (the key projection) across the steps.
double AccumulationLength(const RefCase& c, const Replay& r) {
  reference::OpKey key(c.op);
  const std::string& op = key.name();
  if (op == "context_attention") {
    const Tensor& h = r.inputs[0];
    return h.size(2) + key.Int("attn_dim") + h.size(1) + h.size(0) * h.size(1);
  }
  if (op == "han") {
    const int64_t b = r.inputs[0].size(0), s = r.inputs[0].size(1), w = r.inputs[0].size(2);
    const int64_t e = key.Int("embed_dim"), hw = key.Int("word_hidden"),
                  hs = key.Int("sentence_hidden"), a = key.Int("attn_dim");
    return 2 * w * (e + hw) + (2 * hw + a + w) + 2 * s * (2 * hw + hs) + (2 * hs + a + s) +
           b * s * w;
  }
  if (op == "sab") {
    const Tensor& x = r.inputs[0];
    const int64_t b = x.size(0), t = x.size(1), in = x.size(2), h = key.Int("hidden");
    return t * (in + h) + (t / key.Int("katt") + 1) * h + b * t;
  }
  if (op == "stacked_latent") {
    const Tensor& q = r.inputs[0];
    const Tensor& k = r.inputs[1];
    const int64_t layers = key.Int("layers");
    return layers * (std::max(q.size(2), k.size(2)) + key.Int("attn_dim") + k.size(1)) +
           q.size(0) * q.size(1) * k.size(1);
  }
  if (op == "transparent") {
    const Tensor& x = r.inputs[0];
    return static_cast<double>(r.inputs.size()) + x.numel();
  }
  if (op == "squeeze_excitation") {
    const Tensor& x = r.inputs[0];
    const int64_t c = x.size(1), spatial = x.numel() / (x.size(0) * c);
    return spatial + c + c / key.Int("reduction") + x.size(0);
  }
  if (op == "image_attention") {
    const Tensor& f = r.inputs[0];
    const int64_t hw = f.size(2) * f.size(3);
    const int64_t steps = static_cast<int64_t>(r.inputs.size()) - 1;
    return f.size(1) + key.Int("attn_dim") + hw + steps * f.size(0) * hw;
  }
  throw Error("structures reference: unknown op " + c.op);
}

Replay ReplayCase(const RefCase& c) {
  reference::OpKey key(c.op);
  const std::vector<std::string> param_names = SplitCommas(key.Str("params"));
  int64_t total = 0;
  while (c.Find(Named("x", total)) != nullptr) ++total;
  const int64_t num_inputs = total - static_cast<int64_t>(param_names.size());
  ATTEND_CHECK(num_inputs >= 1, "case ", c.name, " has ", total, " tensors x<i> for ",
               param_names.size(), " parameters");
  Replay r;
  for (int64_t i = 0; i < num_inputs; ++i) {
    Tensor x = ToTensor(Ref(c, Named("x", i)));
    if (IsFloating(x.dtype())) x.set_requires_grad(true);
    r.inputs.push_back(x);
  }
  const DType dt = ToTensor(Ref(c, Named("x", num_inputs))).dtype();  // the first parameter's
  Generator gen(5);
  const Xs& in = r.inputs;
  const std::string& op = key.name();

  // Builds the structure first (the parameters are loaded before any forward).
  std::function<Xs()> forward;
  if (op == "context_attention") {
    auto m = std::make_shared<ContextAttention>(in[0].size(2), key.Int("attn_dim"), gen, dt);
    forward = [m, in] {
      Attended a = m->Forward(in[0], in.size() > 1 ? in[1] : Tensor());
      return Xs{a.context, a.weights};
    };
    r.module = m;
  } else if (op == "han") {
    auto m = std::make_shared<HierarchicalAttentionNetwork>(
        key.Int("vocab"), key.Int("embed_dim"), key.Int("word_hidden"), key.Int("sentence_hidden"),
        key.Int("attn_dim"), gen, 0, dt);
    forward = [m, in] {
      auto o = m->Forward(in[0], in[1], in[2]);
      return Xs{o.document, o.word_weights, o.sentence_weights};
    };
    r.module = m;
  } else if (op == "sab") {
    auto m = std::make_shared<SparseAttentiveBacktracking>(in[0].size(2), key.Int("hidden"),
                                                           key.Int("ktop"), key.Int("katt"),
                                                           key.Int("ktrunc"), gen, dt);
    const std::vector<int64_t> steps = key.IntList("steps");
    const std::string name = c.name;
    forward = [m, in, steps, name] {
      auto o = m->Forward(in[0]);
      EXPECT_EQ(o.steps, steps) << name << ": attention at other steps than torch's";
      Xs outs{o.output};
      outs.insert(outs.end(), o.weights.begin(), o.weights.end());
      return outs;
    };
    r.module = m;
  } else if (op == "stacked_latent") {
    auto m =
        std::make_shared<StackedLatentAttention>(in[0].size(2), in[1].size(2), key.Int("attn_dim"),
                                                 static_cast<int>(key.Int("layers")), gen, dt);
    forward = [m, in] {
      auto o = m->Forward(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
      Xs outs{o.context};
      outs.insert(outs.end(), o.weights.begin(), o.weights.end());
      return outs;
    };
    r.module = m;
  } else if (op == "transparent") {
    auto m = std::make_shared<TransparentAttention>(static_cast<int>(key.Int("encoders")),
                                                    static_cast<int>(key.Int("decoders")), dt);
    forward = [m, in] {
      Xs outs = m->Forward(in);
      outs.push_back(m->MixWeights());
      return outs;
    };
    r.module = m;
  } else if (op == "squeeze_excitation") {
    auto m = std::make_shared<SqueezeExcitation>(in[0].size(1), key.Int("reduction"), gen, dt);
    forward = [m, in] {
      auto [y, s] = m->ForwardWithWeights(in[0]);
      return Xs{y, s};
    };
    r.module = m;
  } else if (op == "image_attention") {
    auto m = std::make_shared<ImageAttention>(in[0].size(1), in[1].size(1), key.Int("attn_dim"),
                                              gen, key.Bool("gate"), dt);
    forward = [m, in] {
      ImageAttention::Prepared p = m->Prepare(in[0]);
      Xs outs;
      for (size_t i = 1; i < in.size(); ++i) {
        Attended a = m->Step(p, in[i]);
        outs.push_back(a.context);
        outs.push_back(a.weights);
      }
      return outs;
    };
    r.module = m;
  } else {
    throw Error("structures reference: unknown op " + c.op);
  }

  // Parameters x<num_inputs>.. in NamedParameters() order; the names must agree first, or the
  // values would land in the wrong tensors.
  nn::NamedTensors params = r.module->NamedParameters();
  std::vector<std::string> names;
  for (const auto& [n, p] : params) names.push_back(n);
  EXPECT_EQ(names, param_names) << c.name << ": parameter names or order differ from torch's";
  if (names == param_names) {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i)
      params[i].second.CopyFrom(ToTensor(Ref(c, Named("x", num_inputs + static_cast<int64_t>(i)))));
  }
  r.outputs = forward();
  r.n = AccumulationLength(c, r);
  return r;
}

TEST(AttentionModelsTorch, StructuresMatchTorch) {
  const auto& l = Cases();
  ASSERT_TRUE(l.error.empty()) << l.error;
  std::set<std::string> ops;
  for (const RefCase& c : l.cases) {
    SCOPED_TRACE(c.name);
    ops.insert(reference::OpKey(c.op).name());
    Replay r = ReplayCase(c);
    int64_t num_outputs = 0;
    while (c.Find(Named("y", num_outputs)) != nullptr) ++num_outputs;
    ASSERT_EQ(static_cast<int64_t>(r.outputs.size()), num_outputs) << c.name;
    Xs roots, cots;
    for (int64_t i = 0; i < num_outputs; ++i) {
      ExpectMatches(c, "output " + Named("y", i), r.outputs[i], Ref(c, Named("y", i)), r.n);
      roots.push_back(r.outputs[i]);
      cots.push_back(ToTensor(Ref(c, Named("dy", i))));
    }
    Backward(roots, cots);
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      if (!IsFloating(r.inputs[i].dtype())) continue;
      const int64_t k = static_cast<int64_t>(i);
      ExpectMatches(c, "gradient of input " + Named("x", k), r.inputs[i].grad(),
                    Ref(c, Named("dx", k)), r.n);
    }
    nn::NamedTensors params = r.module->NamedParameters();
    for (size_t i = 0; i < params.size(); ++i) {
      const int64_t k = static_cast<int64_t>(r.inputs.size() + i);
      Tensor g = params[i].second.grad();
      // A parameter no path reaches has no .grad; torch's is zeros.
      if (!g.defined()) g = Tensor::Zeros(params[i].second.shape(), params[i].second.dtype());
      ExpectMatches(c, "gradient of " + params[i].first, g, Ref(c, Named("dx", k)), r.n);
    }
  }
  EXPECT_EQ(ops, (std::set<std::string>{"context_attention", "han", "sab", "stacked_latent",
                                        "transparent", "squeeze_excitation", "image_attention"}));
  EXPECT_EQ(l.cases.size(), 26u);
}

// ---------------------------------------------------------------------------------------------
// Finite differences (f64, tiny odd sizes).
// ---------------------------------------------------------------------------------------------

// GradCheck handles the inputs; parameters live inside the module, so this checks them the same
// way: Backward of sum_k sum(out_k * w_k) for fixed random cotangents against central
// differences taken by writing each parameter element in place, with GradCheck's tolerances.
::testing::AssertionResult ParamGradCheck(nn::Module& m, const std::function<Xs()>& forward,
                                          const gradcheck::Options& o = gradcheck::Options()) {
  nn::NamedTensors params = m.NamedParameters();
  m.ZeroGrad();
  Xs outs = forward();
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<std::vector<double>> w;
  Xs roots, cots;
  for (const Tensor& out : outs) {
    std::vector<double> v(out.numel());
    for (double& e : v) e = dist(rng);
    w.push_back(v);
    if (!out.requires_grad()) continue;
    roots.push_back(out);
    cots.push_back(Tensor::FromVector(v, out.shape()));
  }
  if (!roots.empty()) Backward(roots, cots);
  auto evaluate = [&] {
    NoGradGuard no_grad;
    std::vector<std::vector<double>> vals;
    for (const Tensor& out : forward()) vals.push_back(out.ToVector<double>());
    return vals;
  };
  int64_t bad = 0, checked = 0;
  std::ostringstream msg;
  msg.precision(12);
  for (auto& [name, p] : params) {
    if (p.dtype() != kF64 || !p.is_contiguous())
      return ::testing::AssertionFailure()
             << name << " is " << p.str() << "; needs f64, contiguous";
    const std::vector<double> analytic =
        p.grad().defined() ? p.grad().ToVector<double>() : std::vector<double>(p.numel(), 0.0);
    double* d = p.data<double>();
    for (int64_t i = 0; i < p.numel(); ++i) {
      const double x = d[i], xp = x + o.eps, xm = x - o.eps;
      d[i] = xp;
      auto plus = evaluate();
      d[i] = xm;
      auto minus = evaluate();
      d[i] = x;
      double num = 0.0;
      for (size_t k = 0; k < plus.size(); ++k)
        for (size_t j = 0; j < plus[k].size(); ++j) num += (plus[k][j] - minus[k][j]) * w[k][j];
      num /= xp - xm;
      ++checked;
      if (std::fabs(analytic[i] - num) <= o.atol + o.rtol * std::fabs(num)) continue;
      if (bad++ < o.max_reported)
        msg << "\n  " << name << " element " << i << ": analytic " << analytic[i] << ", numeric "
            << num;
    }
  }
  if (bad > 0)
    return ::testing::AssertionFailure()
           << bad << " of " << checked << " parameter gradients differ" << msg.str();
  return ::testing::AssertionSuccess() << checked << " parameter elements";
}

TEST(AttentionModelsGradCheck, ContextAttention) {
  Generator gen(21);
  ContextAttention m(3, 3, gen, kF64);
  const Tensor mask = Mask({0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, {3, 5});
  const Tensor h = RandomUniform({3, 5, 3}, 1);
  auto fn = [&](const Xs& x) {
    Attended a = m.Forward(x[0], mask);
    return Xs{a.context, a.weights};
  };
  EXPECT_TRUE(GradCheckMulti(fn, {h}));
  EXPECT_TRUE(ParamGradCheck(m, [&] { return fn({h}); }));
}

// Words, lengths and counts of a small batch: document 0 has 3 sentences, document 1 has 1 (two
// absent, one of them with words the sentence level must ignore). Padded slots hold arbitrary
// ids, the padding index 0 among them.
struct HanBatch {
  Tensor words = Indices({3, 1, 4, 2, 5, 6, 1, 0, 0, 4, 4, 3, 6, 1, 2, 5, 5, 5}, {2, 3, 3});
  Tensor lengths = Indices({2, 3, 1, 3, 0, 2}, {2, 3});
  Tensor counts = Indices({3, 1}, {2});
};

TEST(AttentionModelsGradCheck, HierarchicalAttentionNetwork) {
  Generator gen(22);
  HierarchicalAttentionNetwork m(7, 3, 3, 3, 3, gen, 0, kF64);
  HanBatch d;
  EXPECT_TRUE(ParamGradCheck(m, [&] {
    auto o = m.Forward(d.words, d.lengths, d.counts);
    return Xs{o.document, o.word_weights, o.sentence_weights};
  }));
}

// The pre-attention state, the memories and the scores of one SAB attention step, rebuilt from
// the outputs: memories are the outputs at steps 0, katt, ..., and the query is the output
// minus the attention summary it had added.
Tensor SabScores(const SparseAttentiveBacktracking& m, const SparseAttentiveBacktracking::Output& o,
                 size_t entry) {
  NoGradGuard no_grad;
  const Tensor& w = o.weights[entry];
  Xs mems;
  for (int64_t j = 0; j < w.size(2); ++j) mems.push_back(o.output.Select(1, j * m.katt));
  Tensor mem = Stack(mems, 1);
  Tensor h = Sub(o.output.Select(1, o.steps[entry]), Matmul(w, mem).Squeeze(1));
  return m.score->Forward(h.Unsqueeze(1), mem);  // [B, 1, M]
}

// The smallest gap between the k-th and (k+1)-th score of any attention row: finite differences
// are only valid while the top-k selection cannot flip under the eps perturbation.
double MinTopKGap(const SparseAttentiveBacktracking& m,
                  const SparseAttentiveBacktracking::Output& o) {
  double gap = std::numeric_limits<double>::infinity();
  for (size_t e = 0; e < o.weights.size(); ++e) {
    Tensor s = SabScores(m, o, e);
    const int64_t mm = s.size(2);
    if (mm <= m.ktop) continue;
    std::vector<double> v = s.To(kF64).ToVector<double>();
    for (int64_t r = 0; r < s.size(0); ++r) {
      std::vector<double> row(v.begin() + r * mm, v.begin() + (r + 1) * mm);
      std::sort(row.rbegin(), row.rend());
      gap = std::min(gap, row[m.ktop - 1] - row[m.ktop]);
    }
  }
  return gap;
}

TEST(AttentionModelsGradCheck, SparseAttentiveBacktracking) {
  struct Config {
    int64_t ktop, katt, ktrunc, t;
  };
  // Finite differences see the function itself, and truncation (a detach) changes the gradient
  // but not the function: the backward of a truncated SAB is deliberately not the derivative.
  // So these run with ktrunc = T (nothing detached); the truncated gradients are checked against
  // torch with the same detaches (StructuresMatchTorch) and by SabTruncatedGradient* below.
  // ktop 3 with katt 1 keeps every memory at first and drops some later.
  for (Config cfg : {Config{2, 2, 9, 9}, Config{1, 2, 7, 7}, Config{3, 1, 7, 7}}) {
    SCOPED_TRACE("ktop " + std::to_string(cfg.ktop) + " katt " + std::to_string(cfg.katt) +
                 " ktrunc " + std::to_string(cfg.ktrunc));
    Generator gen(23);
    SparseAttentiveBacktracking m(3, 3, cfg.ktop, cfg.katt, cfg.ktrunc, gen, kF64);
    // Larger concat-score weights spread the scores so the selection has a clear margin.
    {
      NoGradGuard ng;
      m.score->v.CopyFrom(MulScalar(m.score->v, 4.0));
    }
    const Tensor x = RandomUniform({2, cfg.t, 3}, 30 + cfg.ktrunc, -1.5, 1.5);
    const double gap = MinTopKGap(m, m.Forward(x));
    // eps 1e-6 moves a score by ~1e-6; a gap 1000 times that keeps the selection fixed.
    ASSERT_GT(gap, 1e-3) << "scores too close for finite differences; pick another seed";
    auto fn = [&](const Xs& in) {
      auto o = m.Forward(in[0]);
      Xs outs{o.output};
      outs.insert(outs.end(), o.weights.begin(), o.weights.end());
      return outs;
    };
    EXPECT_TRUE(GradCheckMulti(fn, {x}));
    EXPECT_TRUE(ParamGradCheck(m, [&] { return fn({x}); }));
  }
}

TEST(AttentionModelsGradCheck, StackedLatentAttention) {
  Generator gen(24);
  StackedLatentAttention m(3, 5, 3, 3, gen, kF64);
  const Tensor mask = Mask({0, 0, 1, 0, 1, 0, 0, 0, 0, 0}, {2, 1, 5});
  auto fn = [&](const Xs& x) {
    auto o = m.Forward(x[0], x[1], mask);
    Xs outs{o.context};
    outs.insert(outs.end(), o.weights.begin(), o.weights.end());
    return outs;
  };
  const Xs inputs{RandomUniform({2, 3, 3}, 2), RandomUniform({2, 5, 5}, 3)};
  EXPECT_TRUE(GradCheckMulti(fn, inputs));
  EXPECT_TRUE(ParamGradCheck(m, [&] { return fn(inputs); }));
}

TEST(AttentionModelsGradCheck, TransparentAttention) {
  TransparentAttention m(3, 5, kF64);
  {
    NoGradGuard ng;
    m.logits.CopyFrom(RandomUniform({5, 3}, 4, -1.5, 1.5));
  }
  auto fn = [&](const Xs& x) {
    Xs outs = m.Forward(x);
    outs.push_back(m.MixWeights());
    return outs;
  };
  const Xs inputs{RandomUniform({3, 1, 3}, 5), RandomUniform({3, 1, 3}, 6),
                  RandomUniform({3, 1, 3}, 7)};
  EXPECT_TRUE(GradCheckMulti(fn, inputs));
  EXPECT_TRUE(ParamGradCheck(m, [&] { return fn(inputs); }));
}

TEST(AttentionModelsGradCheck, SqueezeExcitation) {
  for (const Shape& shape : {Shape{3, 5, 3, 1}, Shape{3, 5, 7}}) {
    SCOPED_TRACE(shape.str());
    Generator gen(25);
    SqueezeExcitation m(5, 2, gen, kF64);
    const Tensor x = RandomUniform(shape, 8, -1.0, 1.5);
    {
      // ReLU has a kink at 0: the hidden pre-activations must sit well away from it.
      NoGradGuard ng;
      std::vector<int> spatial;
      for (int d = 2; d < x.dim(); ++d) spatial.push_back(d);
      Tensor pre = m.fc1->Forward(Mean(x, spatial));
      ASSERT_GT(Min(Abs(pre)).item(), 1e-3) << "pre-activation near the ReLU kink";
    }
    auto fn = [&](const Xs& in) {
      auto [y, s] = m.ForwardWithWeights(in[0]);
      return Xs{y, s};
    };
    EXPECT_TRUE(GradCheckMulti(fn, {x}));
    EXPECT_TRUE(ParamGradCheck(m, [&] { return fn({x}); }));
  }
}

TEST(AttentionModelsGradCheck, ImageAttention) {
  for (bool gate : {true, false}) {
    SCOPED_TRACE(gate ? "gate" : "no gate");
    Generator gen(26);
    ImageAttention m(3, 5, 3, gen, gate, kF64);
    // Two decoder steps share one Prepare, so the key projection's gradient accumulates.
    auto fn = [&](const Xs& x) {
      ImageAttention::Prepared p = m.Prepare(x[0]);
      Attended a = m.Step(p, x[1]), b = m.Step(p, x[2]);
      return Xs{a.context, a.weights, b.context, b.weights};
    };
    const Xs inputs{RandomUniform({2, 3, 3, 5}, 9), RandomUniform({2, 5}, 10),
                    RandomUniform({2, 5}, 11)};
    EXPECT_TRUE(GradCheckMulti(fn, inputs));
    EXPECT_TRUE(ParamGradCheck(m, [&] { return fn(inputs); }));
  }
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

TEST(AttentionModelsProperties, ContextAttentionWeightsCoverRealPositionsOnly) {
  Generator gen(31);
  ContextAttention m(4, 6, gen);
  const Tensor mask = Mask({0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, {3, 5});
  const Tensor h = Tensor::Randn({3, 5, 4}, gen);
  Attended a = m.Forward(h, mask);
  ASSERT_EQ(a.weights.shape(), (Shape{3, 1, 5}));
  ASSERT_EQ(a.context.shape(), (Shape{3, 1, 4}));
  std::vector<float> w = a.weights.ToVector<float>();
  std::vector<bool> pad = mask.ToVector<bool>();
  for (int b = 0; b < 3; ++b) {
    double sum = 0;
    for (int t = 0; t < 5; ++t) {
      if (pad[b * 5 + t]) {
        EXPECT_EQ(w[b * 5 + t], 0.0f) << "batch " << b << " padded step " << t;
      } else {
        EXPECT_GT(w[b * 5 + t], 0.0f);
        sum += w[b * 5 + t];
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-6) << "batch " << b;
  }
  // The context is the weighted sum of the states.
  std::vector<float> ctx = a.context.ToVector<float>(), hv = h.ToVector<float>();
  for (int b = 0; b < 3; ++b)
    for (int d = 0; d < 4; ++d) {
      double want = 0;
      for (int t = 0; t < 5; ++t) want += w[b * 5 + t] * hv[(b * 5 + t) * 4 + d];
      EXPECT_NEAR(ctx[b * 4 + d], want, 1e-5);
    }
}

// A row with every position masked has no weights, a zero context and no gradient (Softmax's
// all-excluded convention), rather than NaNs.
TEST(AttentionModelsProperties, ContextAttentionFullyMaskedRowIsZero) {
  Generator gen(47);
  ContextAttention m(3, 4, gen, kF64);
  Tensor h = RandomUniform({2, 4, 3}, 14);
  h.set_requires_grad(true);
  Attended a = m.Forward(h, Mask({0, 0, 1, 0, 1, 1, 1, 1}, {2, 4}));
  EXPECT_EQ(a.weights.Select(0, 1).ToVector<double>(), std::vector<double>(4, 0.0));
  EXPECT_EQ(a.context.Select(0, 1).ToVector<double>(), std::vector<double>(3, 0.0));
  Sum(a.context).Backward();
  EXPECT_EQ(h.grad().Select(0, 1).ToVector<double>(), std::vector<double>(12, 0.0));
  for (double v : h.grad().ToVector<double>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(AttentionModelsProperties, HanWeightsSumToOneOverRealWordsAndSentences) {
  Generator gen(32);
  HierarchicalAttentionNetwork m(7, 4, 3, 3, 5, gen, 0, kF64);
  HanBatch d;
  auto o = m.Forward(d.words, d.lengths, d.counts);
  ASSERT_EQ(o.document.shape(), (Shape{2, 6}));
  ASSERT_EQ(o.word_weights.shape(), (Shape{2, 3, 3}));
  ASSERT_EQ(o.sentence_weights.shape(), (Shape{2, 3}));
  std::vector<double> ww = o.word_weights.ToVector<double>();
  std::vector<double> sw = o.sentence_weights.ToVector<double>();
  std::vector<int64_t> len = d.lengths.ToVector<int64_t>(), cnt = d.counts.ToVector<int64_t>();
  for (int b = 0; b < 2; ++b) {
    double ssum = 0;
    for (int s = 0; s < 3; ++s) {
      const bool present = s < cnt[b];
      if (present) {
        EXPECT_GT(sw[b * 3 + s], 0.0);
        ssum += sw[b * 3 + s];
      } else {
        EXPECT_EQ(sw[b * 3 + s], 0.0) << "document " << b << " absent sentence " << s;
      }
      if (!present) continue;  // absent sentences: HanAbsentSentencesHaveNoWordWeights
      double wsum = 0;
      for (int t = 0; t < 3; ++t) {
        const double v = ww[(b * 3 + s) * 3 + t];
        if (t < len[b * 3 + s]) {
          EXPECT_GT(v, 0.0);
          wsum += v;
        } else {
          EXPECT_EQ(v, 0.0) << "document " << b << " sentence " << s << " padded word " << t;
        }
      }
      EXPECT_NEAR(wsum, 1.0, 1e-12) << "document " << b << " sentence " << s;
    }
    EXPECT_NEAR(ssum, 1.0, 1e-12) << "document " << b;
  }
}

// An absent sentence (length 0) has no words, so its word weights should all be zero, as for
// every other padded word: a caller drawing the word attention must not see weight on a
// padding slot.
TEST(AttentionModelsProperties, HanAbsentSentencesHaveNoWordWeights) {
  Generator gen(33);
  HierarchicalAttentionNetwork m(7, 4, 3, 3, 5, gen, 0, kF64);
  HanBatch d;
  auto o = m.Forward(d.words, d.lengths, d.counts);
  // Document 1, sentences 1 (length 0) and 2 (length 2, but beyond the sentence count).
  for (int s : {1, 2}) {
    std::vector<double> w = o.word_weights.Select(0, 1).Select(0, s).ToVector<double>();
    EXPECT_EQ(w, std::vector<double>(3, 0.0)) << "document 1, absent sentence " << s;
  }
}

TEST(AttentionModelsProperties, HanIgnoresPaddedWordIds) {
  Generator gen(34);
  HierarchicalAttentionNetwork m(9, 4, 3, 3, 5, gen, 0, kF64);
  HanBatch d;
  std::vector<int64_t> len = d.lengths.ToVector<int64_t>(), cnt = d.counts.ToVector<int64_t>();
  std::vector<int64_t> ids = d.words.ToVector<int64_t>();
  // Rewrite every padded slot (past a sentence's length, or in an absent sentence) with ids
  // nothing real uses (7, 8), so their embedding rows must stay without gradient too.
  std::vector<int64_t> other = ids;
  for (int b = 0; b < 2; ++b)
    for (int s = 0; s < 3; ++s)
      for (int t = 0; t < 3; ++t) {
        const int i = (b * 3 + s) * 3 + t;
        if (s >= cnt[b] || t >= len[b * 3 + s]) other[i] = 7 + (i % 2);
      }
  ASSERT_NE(ids, other);
  auto a = m.Forward(d.words, d.lengths, d.counts);
  auto b = m.Forward(Indices(other, {2, 3, 3}), d.lengths, d.counts);
  EXPECT_EQ(a.document.ToVector<double>(), b.document.ToVector<double>());
  EXPECT_EQ(a.sentence_weights.ToVector<double>(), b.sentence_weights.ToVector<double>());
  // Word weights of present sentences do not change either.
  for (int bi = 0; bi < 2; ++bi)
    for (int s = 0; s < cnt[bi]; ++s)
      EXPECT_EQ(a.word_weights.Select(0, bi).Select(0, s).ToVector<double>(),
                b.word_weights.Select(0, bi).Select(0, s).ToVector<double>());
  Sum(b.document).Backward();
  Tensor g = m.embed->weight.grad();
  ASSERT_TRUE(g.defined());
  for (int row : {7, 8})
    EXPECT_EQ(g.Select(0, row).ToVector<double>(), std::vector<double>(4, 0.0))
        << "embedding row " << row << " is only read at padded slots";
}

TEST(AttentionModelsProperties, SabAttendsAtMemoryStepsWithAtMostKtopWeights) {
  for (int64_t katt : {1, 2, 3}) {
    for (int64_t ktop : {1, 2, 4}) {
      SCOPED_TRACE("katt " + std::to_string(katt) + " ktop " + std::to_string(ktop));
      Generator gen(35);
      SparseAttentiveBacktracking m(2, 4, ktop, katt, 2, gen);
      const int64_t t_len = 11;
      auto o = m.Forward(Tensor::Randn({3, t_len, 2}, gen));
      ASSERT_EQ(o.output.shape(), (Shape{3, t_len, 4}));
      std::vector<int64_t> want_steps;
      for (int64_t t = katt; t < t_len; t += katt) want_steps.push_back(t);
      EXPECT_EQ(o.steps, want_steps);
      ASSERT_EQ(o.weights.size(), want_steps.size());
      for (size_t e = 0; e < o.weights.size(); ++e) {
        const int64_t memories = o.steps[e] / katt;  // steps 0, katt, .., t - katt
        ASSERT_EQ(o.weights[e].shape(), (Shape{3, 1, memories}));
        std::vector<float> w = o.weights[e].ToVector<float>();
        for (int b = 0; b < 3; ++b) {
          int nonzero = 0;
          double sum = 0;
          for (int64_t j = 0; j < memories; ++j) {
            const float v = w[b * memories + j];
            EXPECT_GE(v, 0.0f);
            nonzero += v != 0.0f;
            sum += v;
          }
          EXPECT_EQ(nonzero, std::min(ktop, memories)) << "step " << o.steps[e] << " batch " << b;
          EXPECT_NEAR(sum, 1.0, 1e-6);
        }
      }
    }
  }
}

// With ktrunc = 1 every step starts from a detached state, so out[t] depends on x[s], s < t,
// only through the memories that step t attended to with non-zero weight, and through the
// memories those attended to in turn. Returns, per step, the input steps out[t] depends on.
std::vector<std::set<int64_t>> SabDependencies(const SparseAttentiveBacktracking::Output& o,
                                               int64_t katt, int* dropped) {
  const int64_t t_len = o.output.size(1);
  std::vector<std::set<int64_t>> deps(t_len);
  size_t entry = 0;
  for (int64_t t = 0; t < t_len; ++t) {
    deps[t].insert(t);
    if (entry < o.steps.size() && o.steps[entry] == t) {
      std::vector<double> w = o.weights[entry].ToVector<double>();
      for (size_t j = 0; j < w.size(); ++j) {
        if (w[j] == 0.0) {
          ++*dropped;
          continue;
        }
        const std::set<int64_t>& d = deps[static_cast<int64_t>(j) * katt];
        deps[t].insert(d.begin(), d.end());
      }
      ++entry;
    }
  }
  return deps;
}

// Checks that d out[t] / d x[s] is non-zero exactly for s in the dependency set of step t.
void ExpectGradientSupport(const Tensor& x, const SparseAttentiveBacktracking::Output& o,
                           const std::vector<std::set<int64_t>>& deps) {
  const int64_t t_len = x.size(1);
  for (int64_t t = 0; t < t_len; ++t) {
    const Tensor out_t = o.output.Select(1, t);
    Tensor g = Grad(out_t, {x}, Tensor::Ones(out_t.shape(), kF64))[0];
    for (int64_t s = 0; s < t_len; ++s) {
      const double norm = Sum(Abs(g.Select(1, s))).item();
      if (deps[t].count(s)) {
        EXPECT_GT(norm, 1e-9) << "out[" << t << "] should depend on x[" << s << "]";
      } else {
        EXPECT_EQ(norm, 0.0) << "out[" << t << "] should not depend on x[" << s << "]";
      }
    }
  }
}

TEST(AttentionModelsProperties, SabTruncatedGradientFlowsOnlyThroughAttention) {
  Generator gen(36);
  const int64_t t_len = 13, katt = 2;
  SparseAttentiveBacktracking m(2, 3, /*ktop=*/100, katt, /*ktrunc=*/1, gen, kF64);
  Tensor x = RandomUniform({1, t_len, 2}, 12);
  x.set_requires_grad(true);
  // Dense: every memory is attended, so out[t] at an attention step reaches every memory step
  // before it, and nothing else.
  auto dense = m.Forward(x);
  int dropped = 0;
  auto deps = SabDependencies(dense, katt, &dropped);
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ(deps[12], (std::set<int64_t>{0, 2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(deps[11], (std::set<int64_t>{11}));
  ExpectGradientSupport(x, dense, deps);
  // The variant where top-k drops memories: the dropped ones' input steps lose their path.
  m.ktop = 1;
  auto sparse = m.Forward(x);
  deps = SabDependencies(sparse, katt, &dropped);
  ASSERT_GT(dropped, 0);
  ASSERT_LT(deps[12].size(), 7u) << "top-1 should cut some memory out of step 12's history";
  ExpectGradientSupport(x, sparse, deps);
  // The same weights without truncation: the recurrent path reaches every earlier input.
  m.ktrunc = 1000;
  auto full = m.Forward(x);
  Tensor g = Grad(full.output.Select(1, t_len - 1), {x}, Tensor::Ones({1, 3}, kF64))[0];
  for (int64_t s = 0; s < t_len; ++s) EXPECT_GT(Sum(Abs(g.Select(1, s))).item(), 1e-12) << s;
}

TEST(AttentionModelsProperties, TransparentMixIsASoftmaxPerDecoderLayerStartingUniform) {
  Generator gen(38);
  TransparentAttention m(4, 3);
  Tensor mix = m.MixWeights();
  ASSERT_EQ(mix.shape(), (Shape{3, 4}));
  for (float v : mix.ToVector<float>()) EXPECT_FLOAT_EQ(v, 0.25f);
  Xs layers;
  for (int e = 0; e < 4; ++e) layers.push_back(Tensor::Randn({2, 3, 5}, gen));
  Xs out = m.Forward(layers);
  ASSERT_EQ(out.size(), 3u);
  // Uniform at the start: every decoder layer reads the mean of the encoder layers.
  Tensor mean = MulScalar(Add(Add(layers[0], layers[1]), Add(layers[2], layers[3])), 0.25);
  for (const Tensor& o : out) {
    ASSERT_EQ(o.shape(), (Shape{2, 3, 5}));
    std::vector<float> a = o.ToVector<float>(), b = mean.ToVector<float>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
  }
  // After moving the logits: each row is the softmax of its logits and mixes accordingly.
  {
    NoGradGuard ng;
    m.logits.CopyFrom(Tensor::Randn({3, 4}, gen));
  }
  mix = m.MixWeights();
  std::vector<float> s = m.logits.ToVector<float>(), mw = mix.ToVector<float>();
  out = m.Forward(layers);
  for (int i = 0; i < 3; ++i) {
    double z = 0, sum = 0;
    for (int e = 0; e < 4; ++e) z += std::exp(s[i * 4 + e]);
    for (int e = 0; e < 4; ++e) {
      EXPECT_NEAR(mw[i * 4 + e], std::exp(s[i * 4 + e]) / z, 1e-6);
      sum += mw[i * 4 + e];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    std::vector<float> got = out[i].ToVector<float>();
    for (size_t k = 0; k < got.size(); ++k) {
      double want = 0;
      for (int e = 0; e < 4; ++e) want += mw[i * 4 + e] * layers[e].ToVector<float>()[k];
      EXPECT_NEAR(got[k], want, 1e-5);
    }
  }
}

TEST(AttentionModelsProperties, SqueezeExcitationScalesEachChannel) {
  for (const Shape& shape : {Shape{2, 6, 3, 4}, Shape{2, 6, 5}}) {
    SCOPED_TRACE(shape.str());
    Generator gen(39);
    SqueezeExcitation m(6, 3, gen);
    Tensor x = Tensor::Randn(shape, gen);
    auto [y, s] = m.ForwardWithWeights(x);
    ASSERT_EQ(y.shape(), x.shape());
    ASSERT_EQ(s.shape(), (Shape{2, 6}));
    std::vector<float> xv = x.ToVector<float>(), yv = y.ToVector<float>(), sv = s.ToVector<float>();
    for (float v : sv) {
      EXPECT_GT(v, 0.0f);
      EXPECT_LT(v, 1.0f);
    }
    const int64_t spatial = x.numel() / 12;
    for (int64_t i = 0; i < x.numel(); ++i)
      EXPECT_FLOAT_EQ(yv[i], xv[i] * sv[i / spatial]) << "element " << i;
    EXPECT_EQ(m.Forward(x).ToVector<float>(), yv);
  }
}

TEST(AttentionModelsProperties, ImageAttentionWeightsSumToOneOverTheGrid) {
  for (bool gate : {true, false}) {
    SCOPED_TRACE(gate ? "gate" : "no gate");
    Generator gen(40);
    ImageAttention m(5, 6, 4, gen, gate);
    Tensor f = Tensor::Randn({2, 5, 3, 4}, gen);
    auto p = m.Prepare(f);
    EXPECT_EQ(p.height, 3);
    EXPECT_EQ(p.width, 4);
    ASSERT_EQ(p.annotations.shape(), (Shape{2, 12, 5}));
    ASSERT_EQ(p.keys.shape(), (Shape{2, 12, 4}));
    // Annotation i * W + j is the feature vector at grid cell (i, j).
    std::vector<float> fv = f.ToVector<float>(), av = p.annotations.ToVector<float>();
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 5; ++c)
        for (int k = 0; k < 12; ++k) EXPECT_EQ(av[(b * 12 + k) * 5 + c], fv[(b * 5 + c) * 12 + k]);
    Tensor h = Tensor::Randn({2, 6}, gen);
    Attended a = m.Step(p, h);
    ASSERT_EQ(a.weights.shape(), (Shape{2, 1, 12}));
    ASSERT_EQ(a.context.shape(), (Shape{2, 1, 5}));
    std::vector<float> w = a.weights.ToVector<float>();
    for (int b = 0; b < 2; ++b) {
      double sum = 0;
      for (int k = 0; k < 12; ++k) {
        EXPECT_GT(w[b * 12 + k], 0.0f);
        sum += w[b * 12 + k];
      }
      EXPECT_NEAR(sum, 1.0, 1e-6);
    }
    // Context = beta * sum_k w_k a_k, with beta in (0, 1) with the gate and 1 without.
    std::vector<float> ctx = a.context.ToVector<float>();
    std::vector<float> beta(2, 1.0f);
    if (gate) beta = Sigmoid(m.gate->Forward(h)).ToVector<float>();
    for (int b = 0; b < 2; ++b) {
      EXPECT_GT(beta[b], 0.0f);
      EXPECT_LE(beta[b], 1.0f);
      for (int c = 0; c < 5; ++c) {
        double want = 0;
        for (int k = 0; k < 12; ++k) want += w[b * 12 + k] * av[(b * 12 + k) * 5 + c];
        EXPECT_NEAR(ctx[b * 5 + c], beta[b] * want, 1e-5);
      }
    }
  }
}

// Strided views (transposed, permuted) must give what their contiguous copies give: the
// structures reshape and flatten their inputs internally.
TEST(AttentionModelsProperties, NonContiguousInputsGiveTheSameResults) {
  Generator gen(48);
  auto expect_same = [](const Tensor& a, const Tensor& b, const char* what) {
    ASSERT_EQ(a.shape(), b.shape()) << what;
    std::vector<double> x = a.ToVector<double>(), y = b.ToVector<double>();
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-12) << what << " " << i;
  };
  {
    ContextAttention m(3, 4, gen, kF64);
    Tensor h = RandomUniform({2, 3, 5}, 15).Transpose(1, 2);  // [2, 5, 3], strided
    expect_same(m.Forward(h).context, m.Forward(h.Contiguous()).context, "ContextAttention");
  }
  {
    SparseAttentiveBacktracking m(3, 4, 2, 2, 3, gen, kF64);
    Tensor x = RandomUniform({7, 2, 3}, 16).Transpose(0, 1);  // [2, 7, 3] from time-major
    expect_same(m.Forward(x).output, m.Forward(x.Contiguous()).output, "SAB");
  }
  {
    StackedLatentAttention m(3, 4, 5, 2, gen, kF64);
    Tensor q = RandomUniform({2, 3, 3}, 17).Transpose(1, 2);
    Tensor k = RandomUniform({4, 2, 5}, 18).Permute({1, 2, 0});  // [2, 5, 4]
    expect_same(m.Forward(q, k).context, m.Forward(q.Contiguous(), k.Contiguous()).context,
                "StackedLatentAttention");
  }
  {
    SqueezeExcitation m(4, 2, gen, kF64);
    Tensor x = RandomUniform({2, 5, 3, 4}, 19).Permute({0, 3, 1, 2});  // [2, 4, 5, 3]
    expect_same(m.Forward(x), m.Forward(x.Contiguous()), "SqueezeExcitation");
  }
  {
    ImageAttention m(4, 3, 5, gen, true, kF64);
    Tensor f = RandomUniform({2, 4, 5, 3}, 20).Transpose(2, 3);  // [2, 4, 3, 5]
    Tensor h = RandomUniform({2, 3}, 21);
    expect_same(m.Step(m.Prepare(f), h).context, m.Step(m.Prepare(f.Contiguous()), h).context,
                "ImageAttention");
  }
  {
    TransparentAttention m(2, 2, kF64);
    {
      NoGradGuard ng;
      m.logits.CopyFrom(RandomUniform({2, 2}, 22));
    }
    Tensor a = RandomUniform({3, 2, 4}, 23).Transpose(0, 1), b = RandomUniform({2, 3, 4}, 24);
    expect_same(m.Forward({a, b})[1], m.Forward({a.Contiguous(), b})[1], "TransparentAttention");
  }
}

// ---------------------------------------------------------------------------------------------
// Bad shapes: attend::Error naming the structure and the shapes at fault.
// ---------------------------------------------------------------------------------------------

TEST(AttentionModelsErrors, ContextAttention) {
  Generator gen(41);
  ContextAttention m(5, 4, gen);
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3}));
              }),
              AllOf(HasSubstr("ContextAttention"), HasSubstr("[2, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3, 5}), Tensor::Zeros({2, 4}, DType::kBool));
              }),
              AllOf(HasSubstr("ContextAttention"), HasSubstr("[2, 4]"), HasSubstr("[2, 3, 5]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3, 4}));
              }),
              AllOf(HasSubstr("ContextAttention"), HasSubstr("[2, 3, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3, 5}), Tensor::Zeros({2, 3}));
              }),
              AllOf(HasSubstr("ContextAttention"), HasSubstr("f32[2, 3]")));
}

TEST(AttentionModelsErrors, HierarchicalAttentionNetwork) {
  Generator gen(42);
  HierarchicalAttentionNetwork m(7, 4, 3, 3, 5, gen);
  HanBatch d;
  const char* kName = "HierarchicalAttentionNetwork";
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3, 3}), d.lengths, d.counts);
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 3, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(d.words.Reshape({6, 3}), d.lengths, d.counts);
              }),
              AllOf(HasSubstr(kName), HasSubstr("[6, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(d.words, Indices({2, 2, 2, 2}, {2, 2}), d.counts);
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 2]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(d.words, d.lengths, Indices({3, 1, 1}, {3}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[3]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(d.words, d.lengths, Indices({3, 0}, {2}));
              }),
              HasSubstr(kName));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(d.words, d.lengths, Indices({4, 1}, {2}));
              }),
              HasSubstr(kName));
  const Tensor too_long = Indices({2, 3, 1, 4, 0, 2}, {2, 3});
  EXPECT_THAT(ThrownMessage([&] { m.Forward(d.words, too_long, d.counts); }), HasSubstr(kName));
  // A present sentence with no words.
  const Tensor empty_sentence = Indices({2, 0, 1, 3, 0, 2}, {2, 3});
  EXPECT_THAT(ThrownMessage([&] { m.Forward(d.words, empty_sentence, d.counts); }),
              HasSubstr(kName));
}

TEST(AttentionModelsErrors, SparseAttentiveBacktracking) {
  Generator gen(43);
  const char* kName = "SparseAttentiveBacktracking";
  EXPECT_THAT(ThrownMessage([&] { SparseAttentiveBacktracking(3, 4, 0, 1, 1, gen); }),
              HasSubstr(kName));
  SparseAttentiveBacktracking m(3, 4, 2, 2, 2, gen);
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 5, 4}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 5, 4]")));
  // An empty sequence may give an empty output or an error, but an error must say whose.
  try {
    auto o = m.Forward(Tensor::Zeros({2, 0, 3}));
    EXPECT_EQ(o.output.shape(), (Shape{2, 0, 4}));
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), AllOf(HasSubstr(kName), HasSubstr("[2, 0, 3]")));
  }
}

TEST(AttentionModelsErrors, StackedLatentAttention) {
  Generator gen(44);
  const char* kName = "StackedLatentAttention";
  EXPECT_THAT(ThrownMessage([&] { StackedLatentAttention(3, 4, 5, 0, gen); }), HasSubstr(kName));
  StackedLatentAttention m(3, 4, 5, 2, gen);
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 3}), Tensor::Zeros({2, 5, 4}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 3]"), HasSubstr("[2, 5, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 1, 3}), Tensor::Zeros({3, 5, 4}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 1, 3]"), HasSubstr("[3, 5, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 1, 6}), Tensor::Zeros({2, 5, 4}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 1, 6]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 1, 3}), Tensor::Zeros({2, 5, 7}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 5, 7]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 1, 3}), Tensor::Zeros({2, 5, 4}),
                          Tensor::Zeros({2, 1, 4}, DType::kBool));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 1, 4]")));
}

TEST(AttentionModelsErrors, TransparentAttention) {
  const char* kName = "TransparentAttention";
  EXPECT_THAT(ThrownMessage([&] { TransparentAttention(0, 2); }), HasSubstr(kName));
  TransparentAttention m(3, 2);
  const Tensor layer = Tensor::Zeros({2, 3, 4});
  EXPECT_THAT(ThrownMessage([&] { m.Forward({layer, layer}); }), HasSubstr(kName));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward({layer, layer, Tensor::Zeros({2, 5, 4})});
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 5, 4]")));
}

TEST(AttentionModelsErrors, SqueezeExcitation) {
  Generator gen(45);
  const char* kName = "SqueezeExcitation";
  EXPECT_THAT(ThrownMessage([&] { SqueezeExcitation(4, 8, gen); }), HasSubstr(kName));
  SqueezeExcitation m(6, 2, gen);
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 5, 3, 3}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 5, 3, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Forward(Tensor::Zeros({2, 6}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 6]")));
}

TEST(AttentionModelsErrors, ImageAttention) {
  Generator gen(46);
  const char* kName = "ImageAttention";
  ImageAttention m(5, 6, 4, gen);
  EXPECT_THAT(ThrownMessage([&] {
                m.Prepare(Tensor::Zeros({2, 5, 12}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 5, 12]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Prepare(Tensor::Zeros({2, 4, 3, 3}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 4, 3, 3]")));
  auto p = m.Prepare(Tensor::Zeros({2, 5, 3, 3}));
  EXPECT_THAT(ThrownMessage([&] {
                m.Step(p, Tensor::Zeros({3, 6}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[3, 6]")));
  EXPECT_THAT(ThrownMessage([&] {
                m.Step(p, Tensor::Zeros({2, 7}));
              }),
              AllOf(HasSubstr(kName), HasSubstr("[2, 7]")));
}

}  // namespace
}  // namespace attend::attention
