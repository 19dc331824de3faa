// The module system and basic layers: dotted parameter names, train/eval, counting, zero_grad,
// initialiser statistics, and Linear/Embedding/LayerNorm/Sequential/positions against PyTorch.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "attend/attend.h"
#include "attend/autograd.h"
#include "attend/nn.h"
#include "support/reference_compare.h"

namespace attend::nn {
namespace {

struct Block : Module {
  explicit Block(Generator& gen) {
    proj = RegisterModule("proj", std::make_shared<Linear>(4, 3, true, gen));
    norm = RegisterModule("norm", std::make_shared<LayerNormModule>(Shape{3}));
    drop = RegisterModule("drop", std::make_shared<DropoutModule>(0.5, 1));
  }
  std::shared_ptr<Linear> proj;
  std::shared_ptr<LayerNormModule> norm;
  std::shared_ptr<DropoutModule> drop;
};

struct Net : Module {
  explicit Net(Generator& gen) {
    embed = RegisterModule("embed", std::make_shared<Embedding>(10, 4, gen, 0));
    encoder = RegisterModule("encoder", std::make_shared<Block>(gen));
    scale = RegisterParameter("scale", Tensor::Ones({1}));
    RegisterBuffer("steps", Tensor::Zeros({1}, DType::kI64));
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<Block> encoder;
  Tensor scale;
};

TEST(Module, HierarchicalNamesAndCounts) {
  Generator gen(1);
  Net net(gen);
  std::vector<std::string> names;
  for (auto& [n, p] : net.NamedParameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"scale", "embed.weight", "encoder.proj.weight",
                                             "encoder.proj.bias", "encoder.norm.weight",
                                             "encoder.norm.bias"}));
  EXPECT_EQ(net.NumParameters(), 1 + 40 + 12 + 3 + 3 + 3);
  auto state = net.StateDict();
  EXPECT_EQ(state.size(), 8u);
  EXPECT_EQ(state[6].first, "steps");
  EXPECT_EQ(state[7].first, "encoder.drop.rng_state");
  for (auto& [n, p] : net.NamedParameters()) EXPECT_TRUE(p.requires_grad()) << n;
}

TEST(Module, TrainEvalPropagatesAndControlsDropout) {
  Generator gen(2);
  Net net(gen);
  EXPECT_TRUE(net.encoder->drop->training());
  net.Eval();
  EXPECT_FALSE(net.training());
  EXPECT_FALSE(net.encoder->drop->training());
  Tensor x = Tensor::Ones({100});
  EXPECT_EQ(net.encoder->drop->Forward(x).ToVector<float>(), x.ToVector<float>());
  net.Train();
  Tensor saved = net.encoder->drop->rng_state.Clone();
  Tensor y = net.encoder->drop->Forward(x);
  EXPECT_NE(y.ToVector<float>(), x.ToVector<float>());
  // The stream advances, and restoring the buffer (as a checkpoint does) replays the mask.
  EXPECT_NE(net.encoder->drop->Forward(x).ToVector<float>(), y.ToVector<float>());
  net.encoder->drop->rng_state.CopyFrom(saved);
  EXPECT_EQ(net.encoder->drop->Forward(x).ToVector<float>(), y.ToVector<float>());
}

TEST(Module, ZeroGradAndParameterHandlesShareStorage) {
  Generator gen(3);
  Net net(gen);
  Tensor idx = Tensor::FromVector(std::vector<int64_t>{1, 2, 0}, {3});
  Tensor h = net.encoder->norm->Forward(net.encoder->proj->Forward(net.embed->Forward(idx)));
  Sum(Mul(h, net.scale)).Backward();
  for (auto& [n, p] : net.NamedParameters()) EXPECT_TRUE(p.grad().defined()) << n;
  // The padding row (index 0) receives no gradient.
  auto g = net.embed->weight.grad().ToVector<float>();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(g[j], 0.0f);
  net.ZeroGrad();
  for (auto& [n, p] : net.NamedParameters()) EXPECT_FALSE(p.grad().defined()) << n;
  // Writing through the named handle changes the layer's own tensor.
  for (auto& [n, p] : net.NamedParameters())
    if (n == "encoder.proj.bias") p.Fill(7.0);
  EXPECT_EQ(net.encoder->proj->bias.ToVector<float>(), std::vector<float>(3, 7.0f));
}

TEST(Module, PaddingRowStartsAtZero) {
  Generator gen(4);
  Embedding e(6, 5, gen, 2);
  for (float v : e.weight.Select(0, 2).ToVector<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Module, BadInputsNameTheLayer) {
  Generator gen(5);
  Linear lin(4, 3, true, gen);
  try {
    lin.Forward(Tensor::Zeros({2, 5}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Linear"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 5]"), std::string::npos) << e.what();
  }
  SinusoidalPositionalEncoding pe(4, 6);
  EXPECT_THROW(pe.Forward(Tensor::Zeros({1, 5, 6})), Error);
  EXPECT_THROW(Embedding(3, 2, gen, 5), Error);
}

// The decoding layer on a packed weight gives Linear's results, for any leading shape, on both
// sides of the row count where it hands over to the BLAS.
TEST(PrepackedLinear, EqualsLinear) {
  Generator gen(9);
  for (bool bias : {true, false}) {
    Linear lin(70, 45, bias, gen);
    PrepackedLinear packed(lin);
    EXPECT_EQ(packed.in_features(), 70);
    EXPECT_EQ(packed.out_features(), 45);
    NoGradGuard no_grad;
    for (const Shape& shape : {Shape{70}, Shape{3, 70}, Shape{2, 5, 70}, Shape{300, 70}}) {
      Tensor x = Tensor::Randn(shape, gen);
      Tensor want = lin.Forward(x), got = packed.Forward(x);
      ASSERT_EQ(got.shape(), want.shape());
      auto g = got.ToVector<float>(), w = want.ToVector<float>();
      for (size_t i = 0; i < g.size(); ++i)
        ASSERT_NEAR(g[i], w[i], 1e-5 * (1 + std::abs(w[i]))) << shape.str() << " at " << i;
    }
    // Non-contiguous input.
    Tensor x = Tensor::Randn({70, 4}, gen).T();
    auto g = packed.Forward(x).ToVector<float>(), w = lin.Forward(x).ToVector<float>();
    for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], w[i], 1e-5 * (1 + std::abs(w[i])));
  }
}

TEST(PrepackedLinear, RefusesWhatItCannotDo) {
  Generator gen(10);
  Linear lin(4, 3, true, gen);
  PrepackedLinear packed(lin);
  Tensor x = Tensor::Randn({2, 4}, gen);
  x.set_requires_grad(true);
  try {
    packed.Forward(x);  // gradient mode is on and x wants a gradient
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inference only"), std::string::npos) << e.what();
  }
  NoGradGuard no_grad;
  EXPECT_THROW(packed.Forward(Tensor::Zeros({2, 5})), Error);
  EXPECT_THROW(packed.Forward(Tensor::Zeros({2, 4}, DType::kF64)), Error);
  EXPECT_THROW(PrepackedLinear().Forward(Tensor::Zeros({2, 4})), Error);
  Linear lin64(4, 3, true, gen, DType::kF64);
  EXPECT_THROW(PrepackedLinear{lin64}, Error);
}

// Initialisers: sample mean and variance against the target distribution (n = 40000 draws, so
// the standard error of the variance is ~0.7 % of it; bounds are 5 standard errors).
TEST(Init, DistributionsHaveTheirMoments) {
  Generator gen(6);
  auto stats = [](const Tensor& t) {
    Tensor d = t.To(DType::kF64);
    return std::make_pair(Mean(d).item(), Var(d, {}, 0).item());
  };
  Tensor w = Tensor::Empty({200, 200});
  init::XavierUniform(w, gen);  // U(-a, a), a = sqrt(6 / 400): var = a^2 / 3 = 1/200
  auto [m1, v1] = stats(w);
  EXPECT_NEAR(m1, 0.0, 5 * std::sqrt(0.005 / 40000));
  EXPECT_NEAR(v1, 0.005, 0.005 * 0.04);
  init::KaimingNormal(w, gen);  // N(0, 2 / fan_in) = 0.01
  auto [m2, v2] = stats(w);
  EXPECT_NEAR(m2, 0.0, 5 * std::sqrt(0.01 / 40000));
  EXPECT_NEAR(v2, 0.01, 0.01 * 0.04);
  init::KaimingUniform(w, gen, std::sqrt(5.0));  // torch.nn.Linear's: bound = 1/sqrt(fan_in)
  EXPECT_LE(Max(w).item(), 1.0 / std::sqrt(200.0));
  EXPECT_GE(Min(w).item(), -1.0 / std::sqrt(200.0));
  auto [m3, v3] = stats(w);
  EXPECT_NEAR(v3, 1.0 / 200 / 3, 1.0 / 200 / 3 * 0.04);
  init::Normal(w, 2.0, 0.5, gen);
  auto [m4, v4] = stats(w);
  EXPECT_NEAR(m4, 2.0, 5 * 0.5 / 200);
  EXPECT_NEAR(v4, 0.25, 0.25 * 0.04);
  Tensor conv = Tensor::Empty({8, 3, 5, 5});
  EXPECT_EQ(init::FanInOut(conv), std::make_pair(int64_t{75}, int64_t{200}));
  Generator a(9), b(9);
  Tensor x = Tensor::Empty({50}), y = Tensor::Empty({50});
  init::XavierNormal(x.View({5, 10}), a);
  init::XavierNormal(y.View({5, 10}), b);
  EXPECT_EQ(x.ToVector<float>(), y.ToVector<float>());
}

// SkipRandomInit: every random initialiser writes zeros (through views too) and the generator
// does not advance, so the draws after the guard are those a generator that never saw it makes;
// Constant still writes; guards nest; other threads draw as usual.
TEST(Init, SkipRandomInitWritesZerosAndLeavesTheGeneratorAlone) {
  Generator skipped(11), plain(11);
  Tensor w = Tensor::Full({6, 4}, 3.0f);
  Tensor want = Tensor::Empty({6, 4});  // what another thread draws, guard or not
  Generator g(11);
  init::XavierNormal(want, g);
  {
    init::SkipRandomInit outer;
    {
      init::SkipRandomInit inner;
      init::XavierNormal(w, skipped);
    }
    EXPECT_EQ(w.ToVector<float>(), std::vector<float>(24, 0.0f));
    w.Fill(3.0);
    init::Uniform(w.View({4, 6}), -1.0, 1.0, skipped);  // still skipped: the outer guard holds
    init::Normal(w, 1.0, 1.0, skipped);
    init::KaimingUniform(w, skipped, std::sqrt(5.0));
    init::XavierUniform(w, skipped);
    init::KaimingNormal(w, skipped);
    EXPECT_EQ(w.ToVector<float>(), std::vector<float>(24, 0.0f));
    init::Constant(w, 2.5);
    EXPECT_EQ(w.ToVector<float>(), std::vector<float>(24, 2.5f));
    Tensor other = Tensor::Empty({6, 4});
    std::thread([&] {
      Generator g(11);
      init::XavierNormal(other, g);
    }).join();
    EXPECT_EQ(other.ToVector<float>(), want.ToVector<float>());
  }
  Tensor a = Tensor::Empty({6, 4}), b = Tensor::Empty({6, 4});
  init::XavierNormal(a, skipped);
  init::XavierNormal(b, plain);
  EXPECT_EQ(a.ToVector<float>(), b.ToVector<float>());
  EXPECT_NE(a.ToVector<float>(), std::vector<float>(24, 0.0f));
}

// ---- against PyTorch ----

using reference::ExpectMatches;
using reference::Named;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;

const reference::LoadedCases& Cases() {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("nn_reference.bin", "tests/reference/nn_reference.py");
  return loaded;
}

// Builds the module a case names, loads the case's parameters x1.. into it, and returns the
// output for input x0.
struct Replay {
  std::shared_ptr<Module> module;
  Tensor input, output;
};

Replay ReplayCase(const RefCase& c, Generator& gen) {
  reference::OpKey key(c.op);
  Replay r;
  Tensor x = ToTensor(Ref(c, "x0"));
  const DType dt = x.dtype() == DType::kI64 ? ToTensor(Ref(c, "x1")).dtype() : x.dtype();
  if (key.name() == "linear") {
    const Tensor w = ToTensor(Ref(c, "x1"));
    auto m = std::make_shared<Linear>(w.size(1), w.size(0), key.Int("bias") != 0, gen, dt);
    r.module = m;
  } else if (key.name() == "layer_norm_module") {
    Shape s;
    const Tensor w = ToTensor(Ref(c, "x1"));
    for (int64_t d : w.shape()) s.push_back(d);
    auto m = std::make_shared<LayerNormModule>(s, 1e-5, true, dt);
    r.module = m;
  } else if (key.name() == "embedding_module") {
    const Tensor w = ToTensor(Ref(c, "x1"));
    r.module = std::make_shared<Embedding>(w.size(0), w.size(1), gen, key.Int("padding_idx"), dt);
  } else if (key.name() == "sequential_mlp") {
    auto seq = std::make_shared<Sequential>();
    seq->Add(std::make_shared<Linear>(7, 6, true, gen, dt));
    seq->AddFunction([](const Tensor& h) { return Gelu(h); });
    seq->Add(std::make_shared<Linear>(6, 4, true, gen, dt));
    r.module = seq;
  } else if (key.name() == "sinusoidal") {
    r.module = std::make_shared<SinusoidalPositionalEncoding>(key.Int("max_len"), x.size(-1), dt);
  } else {
    throw Error("nn reference: unknown op " + c.op);
  }
  // Parameters x1.. in registration order.
  auto params = r.module->NamedParameters();
  for (size_t i = 0; i < params.size(); ++i) {
    NoGradGuard ng;
    params[i].second.CopyFrom(ToTensor(Ref(c, Named("x", static_cast<int64_t>(i) + 1))));
  }
  if (IsFloating(x.dtype())) x.set_requires_grad(true);
  r.input = x;
  if (auto* m = dynamic_cast<Linear*>(r.module.get())) r.output = m->Forward(x);
  if (auto* m = dynamic_cast<LayerNormModule*>(r.module.get())) r.output = m->Forward(x);
  if (auto* m = dynamic_cast<Embedding*>(r.module.get())) r.output = m->Forward(x);
  if (auto* m = dynamic_cast<Sequential*>(r.module.get())) r.output = m->Forward(x);
  if (auto* m = dynamic_cast<SinusoidalPositionalEncoding*>(r.module.get()))
    r.output = m->Forward(x);
  return r;
}

TEST(NnReference, ModulesMatchTorch) {
  const auto& l = Cases();
  ASSERT_TRUE(l.error.empty()) << l.error;
  Generator gen(11);
  for (const RefCase& c : l.cases) {
    SCOPED_TRACE(c.name);
    Replay r = ReplayCase(c, gen);
    // Tolerance length: the widest reduction in these cases (in-features, normalised size).
    const double n = 16;
    ExpectMatches(c, "output y0", r.output, Ref(c, "y0"), n);
    r.output.Backward(ToTensor(Ref(c, "dy0")));
    if (c.Find("dx0")) ExpectMatches(c, "input gradient dx0", r.input.grad(), Ref(c, "dx0"), n);
    auto params = r.module->NamedParameters();
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string name = Named("dx", static_cast<int64_t>(i) + 1);
      ExpectMatches(c, "gradient of " + params[i].first, params[i].second.grad(), Ref(c, name), n);
    }
  }
  EXPECT_EQ(l.cases.size(), 16u);
}

}  // namespace
}  // namespace attend::nn
