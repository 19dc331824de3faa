// Optimizers, gradient clipping and lr schedules: against torch (optim_reference.py's cases), and
// their state, errors, allocation and threading behaviour.
//
// Tolerances against torch: an element passes when |got - want| <= atol + rtol * |want|, with
//   f32: rtol 1e-6, atol 1e-7 (parameters and gradients are O(1); torch's CPU kernels fuse
//        some multiply-adds (FMA) that attend rounds separately, about 1 ulp per operation),
//   f64: rtol 1e-13, atol 1e-15.
// Learning-rate sequences must be bit-identical (the same double operations in the same order).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/optim.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"
#include "support/errors.h"

namespace attend {
namespace {

using attend::testing::ThrownMessage;
using reference::OpKey;
using reference::RefCase;
using reference::RefDType;
using reference::RefTensor;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kF32Rtol = 1e-6, kF32Atol = 1e-7;
constexpr double kF64Rtol = 1e-13, kF64Atol = 1e-15;

// ---- the oracle file ----

// Loads $ATTEND_REFERENCE_DIR/optim_reference.bin once; a missing file is a failure, not a skip.
const reference::LoadedCases& Load() {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("optim_reference.bin", "tests/reference/optim_reference.py");
  return loaded;
}

using reference::ToTensor;

std::vector<double> Values(const Tensor& t) {
  const Tensor c = t.Contiguous();
  std::vector<double> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (c.dtype()) {
      case DType::kF32: out[i] = c.data<float>()[i]; break;
      case DType::kF64: out[i] = c.data<double>()[i]; break;
      case DType::kI64: out[i] = static_cast<double>(c.data<int64_t>()[i]); break;
      case DType::kBool: out[i] = c.data<bool>()[i]; break;
      case DType::kI8: out[i] = c.data<int8_t>()[i]; break;
    }
  }
  return out;
}

// Compares got with torch's tensor; returns "" or a description of the mismatches.
std::string Compare(const Tensor& got, const RefTensor& want, const std::string& what) {
  std::ostringstream os;
  if (got.shape().vec() != want.dims) {
    os << what << ": shape " << got.shape().str() << " vs torch " << want.ShapeString();
    return os.str();
  }
  const bool f32 = want.dtype == RefDType::kF32;
  const double rtol = f32 ? kF32Rtol : kF64Rtol, atol = f32 ? kF32Atol : kF64Atol;
  const std::vector<double> g = Values(got), w = want.AsDoubles();
  int bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool both_nan = std::isnan(g[i]) && std::isnan(w[i]);
    if (both_nan || std::fabs(g[i] - w[i]) <= atol + rtol * std::fabs(w[i])) continue;
    if (bad++ < 5)
      os << what << "[" << i << "]: got " << g[i] << ", torch " << w[i] << " (diff " << g[i] - w[i]
         << ")\n";
  }
  if (bad > 5) os << what << ": " << bad << " mismatches in all\n";
  return os.str();
}

const RefTensor& Need(const RefCase& c, const std::string& name) {
  const RefTensor* t = c.Find(name);
  if (t == nullptr) throw Error("case " + c.name + " has no tensor " + name);
  return *t;
}

std::unique_ptr<optim::Optimizer> MakeOptimizer(const OpKey& key, std::vector<Tensor> params) {
  const std::string kind = key.name().substr(0, key.name().find('_'));
  if (kind == "sgd") {
    optim::SGDOptions o;
    o.lr = key.Double("lr");
    o.momentum = key.Double("momentum");
    o.dampening = key.Double("dampening");
    o.weight_decay = key.Double("weight_decay");
    o.nesterov = key.Bool("nesterov");
    return std::make_unique<optim::SGD>(std::move(params), o);
  }
  optim::AdamOptions o;
  o.lr = key.Double("lr");
  o.beta1 = key.Double("beta1");
  o.beta2 = key.Double("beta2");
  o.eps = key.Double("eps");
  o.weight_decay = key.Double("weight_decay");
  o.amsgrad = key.Bool("amsgrad");
  if (kind == "adam") return std::make_unique<optim::Adam>(std::move(params), o);
  if (kind == "adamw") {
    return std::make_unique<optim::AdamW>(std::move(params),
                                          optim::AdamWOptions{.lr = o.lr,
                                                              .beta1 = o.beta1,
                                                              .beta2 = o.beta2,
                                                              .eps = o.eps,
                                                              .weight_decay = o.weight_decay,
                                                              .amsgrad = o.amsgrad});
  }
  throw Error("unknown optimizer in op key " + key.key());
}

// ---- optimizers against torch ----

TEST(OptimReference, OptimizersOverFixedGradients) {
  const reference::LoadedCases& ref = Load();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  int ran = 0;
  for (const RefCase& c : ref.cases) {
    const OpKey key(c.op);
    if (key.name() != "sgd" && key.name() != "adam" && key.name() != "adamw") continue;
    SCOPED_TRACE(c.name + " (" + c.op + ")");
    ++ran;
    const int n = static_cast<int>(key.Int("n")), steps = static_cast<int>(key.Int("steps"));
    std::vector<Tensor> params;
    for (int i = 0; i < n; ++i)
      params.push_back(ToTensor(Need(c, "param" + std::to_string(i))).set_requires_grad(true));
    auto opt = MakeOptimizer(key, params);
    std::unique_ptr<optim::InverseSqrtWarmup> sched;
    if (key.Has("sched")) {
      sched = std::make_unique<optim::InverseSqrtWarmup>(
          *opt, optim::InverseSqrtWarmup::Transformer{.d_model = key.Int("d_model"),
                                                      .warmup = key.Int("warmup"),
                                                      .factor = key.Double("factor")});
    }
    std::string failures;
    for (int t = 1; t <= steps; ++t) {
      for (int i = 0; i < n; ++i) {
        const RefTensor* g = c.Find("grad" + std::to_string(t) + "." + std::to_string(i));
        if (g != nullptr) {
          params[i].set_grad(ToTensor(*g));
        } else {
          params[i].ZeroGrad();
        }
      }
      opt->Step();
      if (sched) sched->Step();
      for (int i = 0; i < n; ++i) {
        const std::string name = "out" + std::to_string(t) + "." + std::to_string(i);
        failures += Compare(params[i], Need(c, name), name);
      }
    }
    // The final state: the same buffers as torch's, with the same values.
    std::set<std::string> ours;
    for (const auto& [name, t] : opt->State()) {
      const RefTensor* want = c.Find(name);
      // torch's SGD keeps no step count; everything else must be in the reference.
      if (want == nullptr && key.name() == "sgd" && name.size() > 5 &&
          name.substr(name.size() - 5) == ".step")
        continue;
      ours.insert(name);
      if (want == nullptr) {
        failures += "state " + name + " is not in torch's state\n";
        continue;
      }
      failures += Compare(t, *want, name);
    }
    for (const RefTensor& t : c.tensors)
      if (t.name.rfind("state.", 0) == 0 && !ours.count(t.name))
        failures += "torch's state " + t.name + " is missing\n";
    EXPECT_EQ(opt->step_count(), steps);
    EXPECT_TRUE(failures.empty()) << failures;
  }
  EXPECT_GE(ran, 30);
}

TEST(OptimReference, OptimizersTrainingALinearModel) {
  const reference::LoadedCases& ref = Load();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  int ran = 0;
  for (const RefCase& c : ref.cases) {
    const OpKey key(c.op);
    if (key.name().find("_model") == std::string::npos) continue;
    SCOPED_TRACE(c.name + " (" + c.op + ")");
    ++ran;
    const Tensor x = ToTensor(Need(c, "x")), y = ToTensor(Need(c, "y"));
    Tensor w = ToTensor(Need(c, "param0")).set_requires_grad(true);
    Tensor b = ToTensor(Need(c, "param1")).set_requires_grad(true);
    auto opt = MakeOptimizer(key, {w, b});
    std::string failures;
    for (int t = 1; t <= key.Int("steps"); ++t) {
      opt->ZeroGrad();
      Tensor r = Sub(Add(Matmul(x, w.T()), b), y);
      Mean(Mul(r, r)).Backward();
      opt->Step();
      failures += Compare(w, Need(c, "out" + std::to_string(t) + ".0"), "w");
      failures += Compare(b, Need(c, "out" + std::to_string(t) + ".1"), "b");
    }
    EXPECT_TRUE(failures.empty()) << failures;
  }
  EXPECT_EQ(ran, 3);
}

TEST(OptimReference, ClipGradNorm) {
  const reference::LoadedCases& ref = Load();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  int ran = 0;
  for (const RefCase& c : ref.cases) {
    const OpKey key(c.op);
    if (key.name() != "clip") continue;
    SCOPED_TRACE(c.name + " (" + c.op + ")");
    ++ran;
    std::vector<Tensor> params;
    for (int i = 0; i < key.Int("n"); ++i) {
      const RefTensor* g = c.Find("grad." + std::to_string(i));
      const RefTensor& like = g ? *g : Need(c, "grad.0");
      Tensor p =
          Tensor::Zeros(Shape(g ? g->dims : std::vector<int64_t>{1}), ToTensor(like).dtype());
      p.set_requires_grad(true);
      if (g != nullptr) p.set_grad(ToTensor(*g));
      params.push_back(p);
    }
    const double total =
        optim::ClipGradNorm(params, key.Double("max_norm"), key.Double("norm_type"));
    std::string failures =
        Compare(Tensor::Scalar(total, DType::kF64), Need(c, "total_norm"), "total_norm");
    for (size_t i = 0; i < params.size(); ++i) {
      const RefTensor* want = c.Find("clipped." + std::to_string(i));
      if (want == nullptr) {
        EXPECT_FALSE(params[i].grad().defined());
        continue;
      }
      failures += Compare(params[i].grad(), *want, "clipped." + std::to_string(i));
    }
    EXPECT_TRUE(failures.empty()) << failures;
  }
  EXPECT_EQ(ran, 12);
}

// ---- schedules against torch (bit-identical) ----

std::unique_ptr<optim::LRScheduler> MakeSchedule(const OpKey& key, optim::Optimizer& opt) {
  if (key.name() == "lambda_transformer") {
    return std::make_unique<optim::InverseSqrtWarmup>(
        opt, optim::InverseSqrtWarmup::Transformer{.d_model = key.Int("d_model"),
                                                   .warmup = key.Int("warmup"),
                                                   .factor = key.Double("factor")});
  }
  if (key.name() == "lambda_peak") {
    return std::make_unique<optim::InverseSqrtWarmup>(
        opt, optim::InverseSqrtWarmup::Peak{.lr_peak = key.Double("lr_peak"),
                                            .warmup = key.Int("warmup")});
  }
  if (key.name() == "steplr")
    return std::make_unique<optim::StepLR>(opt, key.Int("step_size"), key.Double("gamma"));
  if (key.name() == "constantlr")
    return std::make_unique<optim::ConstantLR>(opt, key.Double("factor"), key.Int("total_iters"));
  return nullptr;
}

TEST(OptimReference, EpochSchedules) {
  const reference::LoadedCases& ref = Load();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  int ran = 0;
  for (const RefCase& c : ref.cases) {
    const OpKey key(c.op);
    Tensor p = Tensor::Zeros({1}).set_requires_grad(true);
    // torch's LambdaLR scales the optimizer's initial lr, which the generator sets to 1.
    optim::SGD opt({p}, {.lr = key.Has("lr") ? key.Double("lr") : 1.0});
    auto sched = MakeSchedule(key, opt);
    if (!sched) continue;
    SCOPED_TRACE(c.name + " (" + c.op + ")");
    ++ran;
    const std::vector<double> want = Need(c, "lr").AsDoubles();
    ASSERT_EQ(static_cast<int64_t>(want.size()), key.Int("steps") + 1);
    std::vector<double> got = {opt.lr()};
    for (int64_t s = 0; s < key.Int("steps"); ++s) {
      opt.Step();
      sched->Step();
      got.push_back(opt.lr());
      EXPECT_EQ(sched->last_epoch(), s + 1);
    }
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(got[i], want[i]) << "lr after step " << i << " differs from torch's by "
                                 << got[i] - want[i];
  }
  EXPECT_EQ(ran, 13);
}

TEST(OptimReference, ReduceLROnPlateau) {
  const reference::LoadedCases& ref = Load();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  int ran = 0;
  for (const RefCase& c : ref.cases) {
    const OpKey key(c.op);
    if (key.name() != "plateau") continue;
    SCOPED_TRACE(c.name + " (" + c.op + ")");
    ++ran;
    Tensor p = Tensor::Zeros({1}).set_requires_grad(true);
    optim::SGD opt({p}, {.lr = key.Double("lr")});
    optim::PlateauOptions o;
    o.mode = key.Str("mode") == "min" ? optim::PlateauOptions::Mode::kMin
                                      : optim::PlateauOptions::Mode::kMax;
    o.factor = key.Double("factor");
    o.patience = key.Int("patience");
    o.threshold = key.Double("threshold");
    o.threshold_mode = key.Str("threshold_mode") == "rel"
                           ? optim::PlateauOptions::ThresholdMode::kRel
                           : optim::PlateauOptions::ThresholdMode::kAbs;
    o.cooldown = key.Int("cooldown");
    o.min_lr = key.Double("min_lr");
    o.eps = key.Double("eps");
    optim::ReduceLROnPlateau sched(opt, o);
    const std::vector<double> metric = Need(c, "metric").AsDoubles();
    const std::vector<double> lr = Need(c, "lr").AsDoubles();
    const std::vector<double> best = Need(c, "best").AsDoubles();
    const std::vector<double> bad = Need(c, "num_bad_epochs").AsDoubles();
    const std::vector<double> cool = Need(c, "cooldown_counter").AsDoubles();
    int reductions = 0;
    for (size_t i = 0; i < metric.size(); ++i) {
      const double before = opt.lr();
      sched.Step(metric[i]);
      reductions += opt.lr() != before;
      EXPECT_EQ(opt.lr(), lr[i]) << "epoch " << i + 1;
      EXPECT_EQ(sched.best(), best[i]) << "epoch " << i + 1;
      EXPECT_EQ(sched.num_bad_epochs(), bad[i]) << "epoch " << i + 1;
      EXPECT_EQ(sched.cooldown_counter(), cool[i]) << "epoch " << i + 1;
    }
    EXPECT_GE(reductions, 2) << "the case should exercise several reductions";
  }
  EXPECT_EQ(ran, 4);
}

// ---- behaviour beyond the oracle ----

std::vector<Tensor> RandomParams(Generator& gen, DType dtype = DType::kF32) {
  return {Tensor::Randn({6, 5}, gen, dtype).set_requires_grad(true),
          Tensor::Randn({7}, gen, dtype).set_requires_grad(true)};
}

void RandomGrads(const std::vector<Tensor>& params, Generator& gen) {
  for (Tensor p : params) p.set_grad(Tensor::Randn(p.shape(), gen, p.dtype()));
}

bool BitEqual(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.Contiguous(), cb = b.Contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.numel() * DTypeSize(ca.dtype())) == 0;
}

TEST(Optim, StepAllocatesNothingOnceBuffersExist) {
  Generator gen(3);
  for (int which = 0; which < 3; ++which) {
    std::vector<Tensor> params = RandomParams(gen);
    std::unique_ptr<optim::Optimizer> opt;
    if (which == 0)
      opt = std::make_unique<optim::SGD>(
          params,
          optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
    if (which == 1)
      opt = std::make_unique<optim::Adam>(params,
                                          optim::AdamOptions{.weight_decay = 0.1, .amsgrad = true});
    if (which == 2) opt = std::make_unique<optim::AdamW>(params);
    RandomGrads(params, gen);
    opt->Step();  // creates the buffers
    const AllocatorStats before = GetAllocatorStats();
    for (int i = 0; i < 5; ++i) opt->Step();
    const AllocatorStats after = GetAllocatorStats();
    EXPECT_EQ(after.system_allocs, before.system_allocs) << opt->type();
    EXPECT_EQ(after.cache_hits, before.cache_hits) << opt->type();
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use) << opt->type();
  }
}

TEST(Optim, UpdatesInPlaceAndRecordsNothing) {
  Generator gen(4);
  std::vector<Tensor> params = RandomParams(gen);
  const void* storage = params[0].raw_data();
  Tensor held = params[0];  // another handle to the same parameter sees the update
  const std::vector<float> before = held.ToVector<float>();
  optim::Adam opt(params, {.lr = 0.1});
  RandomGrads(params, gen);
  opt.Step();
  EXPECT_EQ(params[0].raw_data(), storage);
  EXPECT_NE(held.ToVector<float>(), before);
  EXPECT_TRUE(params[0].is_leaf());
  EXPECT_TRUE(params[0].requires_grad());
}

TEST(Optim, ParametersWithoutGradientAreSkipped) {
  Generator gen(5);
  std::vector<Tensor> params = RandomParams(gen);
  optim::Adam opt(params, {.lr = 0.1});
  params[0].set_grad(Tensor::Randn(params[0].shape(), gen));
  const std::vector<float> p1 = params[1].ToVector<float>();
  opt.Step();
  EXPECT_EQ(params[1].ToVector<float>(), p1);
  const optim::NamedTensors state = opt.State();
  ASSERT_EQ(state.size(), 3u);  // step, exp_avg, exp_avg_sq of parameter 0 only
  EXPECT_EQ(state[0].first, "state.0.step");
  EXPECT_EQ(state[0].second.item(), 1);
  opt.ZeroGrad();
  EXPECT_FALSE(params[0].grad().defined());
  EXPECT_FALSE(params[1].grad().defined());
}

TEST(Optim, ResultsDoNotDependOnTheThreadCount) {
  // Large enough for the update loops to run in parallel.
  const int saved = GetNumThreads();
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    SetNumThreads(threads);
    Generator gen(6);
    Tensor p = Tensor::Randn({300, 400}, gen).set_requires_grad(true);
    optim::AdamW opt({p}, {.lr = 0.01, .amsgrad = true});
    for (int s = 0; s < 3; ++s) {
      p.set_grad(Tensor::Randn(p.shape(), gen));
      ASSERT_GT(optim::ClipGradNorm({p}, 10.0), 10.0);
      opt.Step();
    }
    results.push_back(p.ToVector<float>());
  }
  SetNumThreads(saved);
  EXPECT_TRUE(results[0] == results[1]);
}

TEST(Optim, StateRoundTripContinuesExactly) {
  for (int which = 0; which < 3; ++which) {
    Generator gen(7), grads_a(8), grads_b(8);
    std::vector<Tensor> a = RandomParams(gen, DType::kF64);
    std::vector<Tensor> b = {a[0].Detach().Clone(), a[1].Detach().Clone()};
    auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
      if (which == 0)
        return std::make_unique<optim::SGD>(
            ps, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1});
      if (which == 1)
        return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.lr = 0.05, .amsgrad = true});
      return std::make_unique<optim::AdamW>(ps,
                                            optim::AdamWOptions{.lr = 0.05, .weight_decay = 0.1});
    };
    auto opt_a = make(a);
    auto opt_b = make(b);
    for (int s = 0; s < 3; ++s) {
      RandomGrads(a, grads_a);
      RandomGrads(b, grads_b);
      opt_a->Step();
      opt_b->Step();
    }
    // A fresh optimizer over b's parameters takes over b's state.
    auto opt_c = make(b);
    opt_c->LoadState(opt_b->State());
    opt_c->LoadScalarState(opt_b->ScalarState());
    opt_b.reset();
    for (int s = 0; s < 3; ++s) {
      RandomGrads(a, grads_a);
      RandomGrads(b, grads_b);
      opt_a->Step();
      opt_c->Step();
    }
    EXPECT_TRUE(BitEqual(a[0], b[0]) && BitEqual(a[1], b[1])) << opt_a->type();
    EXPECT_EQ(opt_c->step_count(), 6);
    const optim::NamedTensors sa = opt_a->State(), sc = opt_c->State();
    ASSERT_EQ(sa.size(), sc.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      EXPECT_EQ(sa[i].first, sc[i].first);
      EXPECT_TRUE(BitEqual(sa[i].second, sc[i].second)) << sa[i].first;
    }
  }
}

TEST(Optim, LoadStateCopiesTheBuffers) {
  Generator gen(9);
  std::vector<Tensor> params = RandomParams(gen);
  optim::SGD opt(params, {.lr = 0.1, .momentum = 0.5});
  RandomGrads(params, gen);
  opt.Step();
  optim::NamedTensors state = opt.State();
  optim::SGD other(params, {.lr = 0.1, .momentum = 0.5});
  other.LoadState(state);
  const std::vector<float> saved = state[1].second.ToVector<float>();
  other.Step();  // updates its own buffers, not the ones it was given
  EXPECT_EQ(state[1].second.ToVector<float>(), saved);
}

TEST(Optim, LoadStateNamesTheFirstProblemAndChangesNothing) {
  Generator gen(10);
  std::vector<Tensor> params = RandomParams(gen);
  optim::Adam opt(params, {.lr = 0.1});
  RandomGrads(params, gen);
  opt.Step();
  const optim::NamedTensors good = opt.State();
  auto with = [&](const std::string& name, const Tensor& t) {
    optim::NamedTensors s = good;
    s.emplace_back(name, t);
    return s;
  };
  auto without = [&](const std::string& name) {
    optim::NamedTensors s;
    for (const auto& e : good)
      if (e.first != name) s.push_back(e);
    return s;
  };
  auto replaced = [&](const std::string& name, const Tensor& t) {
    optim::NamedTensors s = good;
    for (auto& e : s)
      if (e.first == name) e.second = t;
    return s;
  };
  optim::Adam fresh(params, {.lr = 0.1});
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadState(with("state.0.momentum", Tensor::Zeros({6, 5})));
              }),
              AllOf(HasSubstr("Adam::LoadState"), HasSubstr("'state.0.momentum'")));
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadState(with("exp_avg", Tensor::Zeros({6, 5})));
              }),
              HasSubstr("unexpected entry 'exp_avg'"));
  EXPECT_THAT(
      ThrownMessage([&] { fresh.LoadState(with("state.2.step", Tensor::Scalar(1, DType::kI64))); }),
      HasSubstr("names parameter 2 but the optimizer has 2"));
  EXPECT_THAT(ThrownMessage([&] { fresh.LoadState(without("state.1.exp_avg_sq")); }),
              HasSubstr("'state.1.exp_avg_sq' is missing"));
  EXPECT_THAT(ThrownMessage([&] { fresh.LoadState(without("state.0.step")); }),
              HasSubstr("'state.0.step' is missing"));
  EXPECT_THAT(
      ThrownMessage([&] {
        fresh.LoadState(replaced("state.0.exp_avg", Tensor::Zeros({5, 6})));
      }),
      AllOf(HasSubstr("'state.0.exp_avg'"), HasSubstr("f32[5, 6]"), HasSubstr("f32[6, 5]")));
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadState(replaced("state.0.exp_avg", Tensor::Zeros({6, 5}, DType::kF64)));
              }),
              HasSubstr("f64[6, 5]"));
  EXPECT_THAT(
      ThrownMessage([&] { fresh.LoadState(replaced("state.1.step", Tensor::Scalar(1.0))); }),
      HasSubstr("must be an i64 scalar"));
  EXPECT_THAT(
      ThrownMessage([&] { fresh.LoadState(with("state.0.step", Tensor::Scalar(2, DType::kI64))); }),
      HasSubstr("appears twice"));
  EXPECT_THAT(ThrownMessage(
                  [&] { fresh.LoadState(with("state.01.step", Tensor::Scalar(2, DType::kI64))); }),
              HasSubstr("unexpected entry 'state.01.step'"));
  EXPECT_TRUE(fresh.State().empty());  // nothing was loaded by the failed calls
  // Scalars.
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadScalarState({{"lr", 0.1}});
              }),
              HasSubstr("'step_count' is missing"));
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadScalarState({{"lr", -1}, {"step_count", 1}});
              }),
              HasSubstr("invalid learning rate"));
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadScalarState({{"lr", 1}, {"step_count", 1.5}});
              }),
              HasSubstr("step_count"));
  EXPECT_THAT(ThrownMessage([&] {
                fresh.LoadScalarState({{"lr", 1}, {"step_count", 1}, {"beta", 1}});
              }),
              HasSubstr("unexpected scalar 'beta'"));
  EXPECT_EQ(fresh.lr(), 0.1);
}

TEST(Optim, ConstructionErrors) {
  Generator gen(11);
  Tensor p = Tensor::Randn({3}, gen).set_requires_grad(true);
  EXPECT_THAT(ThrownMessage([&] { optim::SGD({}, {}); }), HasSubstr("empty parameter list"));
  EXPECT_THAT(ThrownMessage([&] { optim::SGD({p, p}, {}); }), HasSubstr("appears more than once"));
  EXPECT_THAT(ThrownMessage([&] { optim::SGD({Tensor::Zeros({2}, DType::kI64)}, {}); }),
              HasSubstr("only f32 and f64"));
  EXPECT_THAT(ThrownMessage([&] { optim::SGD({MulScalar(p, 2.0)}, {}); }), HasSubstr("leaf"));
  EXPECT_THAT(ThrownMessage([&] {
                optim::SGD({Tensor::Zeros({3, 4}).T()}, {});
              }),
              HasSubstr("not contiguous"));
  EXPECT_THAT(ThrownMessage([&] { optim::SGD({p}, {.lr = -1}); }), HasSubstr("learning rate"));
  EXPECT_THAT(ThrownMessage([&] { optim::SGD({p}, {.nesterov = true}); }), HasSubstr("Nesterov"));
  EXPECT_THAT(ThrownMessage(
                  [&] { optim::SGD({p}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); }),
              HasSubstr("Nesterov"));
  EXPECT_THAT(ThrownMessage([&] { optim::Adam({p}, {.beta1 = 1.0}); }), HasSubstr("beta1"));
  EXPECT_THAT(ThrownMessage([&] { optim::AdamW({p}, {.beta2 = -0.1}); }),
              AllOf(HasSubstr("AdamW"), HasSubstr("beta2")));
  EXPECT_THAT(ThrownMessage([&] { optim::Adam({p}, {.eps = -1}); }), HasSubstr("eps"));
  EXPECT_THAT(ThrownMessage([&] { optim::Adam({p}, {.weight_decay = -1}); }),
              HasSubstr("weight_decay"));
  optim::Adam opt({p}, {});
  EXPECT_THAT(ThrownMessage([&] { opt.set_lr(std::nan("")); }), HasSubstr("learning rate"));
  p.set_grad(Tensor::Zeros({3}, DType::kF64));
  EXPECT_THAT(ThrownMessage([&] { opt.Step(); }),
              AllOf(HasSubstr("Adam::Step"), HasSubstr("f64[3]"), HasSubstr("f32[3]")));
  EXPECT_EQ(opt.step_count(), 0);
}

TEST(Optim, AdamWDefaultsAreTorchs) {
  Tensor p = Tensor::Zeros({2}).set_requires_grad(true);
  optim::AdamW opt({p});
  EXPECT_EQ(opt.options().weight_decay, 1e-2);
  EXPECT_EQ(optim::AdamW({p}, {.lr = 0.5}).options().weight_decay, 1e-2);
  EXPECT_EQ(opt.options().lr, 1e-3);
  EXPECT_STREQ(opt.type(), "AdamW");
  EXPECT_STREQ(optim::Adam({p}, {}).type(), "Adam");
}

TEST(Optim, ClipGradNormEdgeCases) {
  Tensor a = Tensor::Zeros({3}).set_requires_grad(true);
  Tensor b = Tensor::Zeros({2}).set_requires_grad(true);
  EXPECT_EQ(optim::ClipGradNorm({a, b}, 1.0), 0.0);  // no gradients at all
  a.set_grad(Tensor::FromVector(std::vector<float>{3, 0, 4}, {3}));
  EXPECT_FLOAT_EQ(optim::ClipGradNorm({a, b}, 10.0), 5.0f);
  EXPECT_EQ(a.grad().ToVector<float>(), (std::vector<float>{3, 0, 4}));  // below max: untouched
  b.set_grad(Tensor::FromVector(std::vector<float>{std::nanf(""), 1}, {2}));
  EXPECT_TRUE(std::isnan(optim::ClipGradNorm({a, b}, 1.0)));
  EXPECT_TRUE(std::isnan(a.grad().ToVector<float>()[0]));  // torch scales by NaN too
  b.set_grad(Tensor::FromVector(std::vector<float>{INFINITY, 1}, {2}));
  EXPECT_THAT(ThrownMessage([&] {
                optim::ClipGradNorm({a, b}, 1.0, 2.0, true);
              }),
              HasSubstr("ClipGradNorm"));
  EXPECT_THAT(ThrownMessage([&] { optim::ClipGradNorm({a}, 1.0, 0.0); }), HasSubstr("norm_type"));
  EXPECT_THAT(ThrownMessage([&] { optim::ClipGradNorm({a}, 1.0, -2.0); }), HasSubstr("norm_type"));
  // A non-contiguous gradient is scaled through its view.
  Tensor c = Tensor::Zeros({2, 3}).set_requires_grad(true);
  Tensor g = Tensor::FromVector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  c.set_grad(g.T());
  optim::ClipGradNorm({c}, 1e-3);
  EXPECT_NEAR(g.ToVector<float>()[5], 6 * 1e-3 / std::sqrt(91.0), 1e-9);
}

// ---- schedules beyond the oracle ----

TEST(Schedules, InverseSqrtWarmupShape) {
  Tensor p = Tensor::Zeros({1}).set_requires_grad(true);
  optim::Adam opt({p}, {.lr = 123.0});
  optim::InverseSqrtWarmup peak(opt,
                                optim::InverseSqrtWarmup::Peak{.lr_peak = 1e-3, .warmup = 100});
  EXPECT_DOUBLE_EQ(opt.lr(), 1e-5);  // epoch 0 counts as step 1
  EXPECT_DOUBLE_EQ(peak.LrAt(50), 5e-4);
  EXPECT_DOUBLE_EQ(peak.LrAt(100), 1e-3);
  EXPECT_DOUBLE_EQ(peak.LrAt(400), 5e-4);
  optim::InverseSqrtWarmup tr(
      opt, optim::InverseSqrtWarmup::Transformer{.d_model = 512, .warmup = 4000});
  // The peak is at step == warmup: d_model^-0.5 * warmup^-0.5.
  EXPECT_DOUBLE_EQ(tr.LrAt(4000), 1.0 / std::sqrt(512.0 * 4000.0));
  EXPECT_LT(tr.LrAt(3999), tr.LrAt(4000));
  EXPECT_LT(tr.LrAt(4001), tr.LrAt(4000));
  EXPECT_THAT(ThrownMessage([&] {
                optim::InverseSqrtWarmup(opt, optim::InverseSqrtWarmup::Peak{.warmup = 0});
              }),
              HasSubstr("warmup"));
}

TEST(Schedules, StateRoundTripContinuesExactly) {
  Tensor p = Tensor::Zeros({1}).set_requires_grad(true);
  optim::SGD opt_a({p}, {.lr = 0.1}), opt_b({p}, {.lr = 0.1});
  optim::PlateauOptions o{.factor = 0.5, .patience = 1, .cooldown = 1};
  optim::ReduceLROnPlateau a(opt_a, o), b(opt_b, o);
  const std::vector<double> metrics = {5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 2};
  for (size_t i = 0; i < 5; ++i) {
    a.Step(metrics[i]);
    b.Step(metrics[i]);
  }
  optim::SGD opt_c({p}, {.lr = 0.1});
  optim::ReduceLROnPlateau c(opt_c, o);
  c.LoadState(b.State());
  opt_c.LoadScalarState(opt_b.ScalarState());
  for (size_t i = 5; i < metrics.size(); ++i) {
    a.Step(metrics[i]);
    c.Step(metrics[i]);
    EXPECT_EQ(opt_a.lr(), opt_c.lr());
  }
  EXPECT_EQ(a.State(), c.State());

  optim::SGD opt_d({p}, {.lr = 1.0});
  optim::StepLR s1(opt_d, 2, 0.5);
  for (int i = 0; i < 5; ++i) s1.Step();
  optim::SGD opt_e({p}, {.lr = 1.0});
  optim::StepLR s2(opt_e, 2, 0.5);
  s2.LoadState(s1.State());
  opt_e.set_lr(opt_d.lr());
  s1.Step();
  s2.Step();
  EXPECT_EQ(opt_d.lr(), opt_e.lr());
  EXPECT_EQ(s2.last_epoch(), 6);
}

TEST(Schedules, Errors) {
  Tensor p = Tensor::Zeros({1}).set_requires_grad(true);
  optim::SGD opt({p}, {.lr = 0.1});
  optim::StepLR step(opt, 3);
  EXPECT_THAT(ThrownMessage([&] { step.Step(1.0); }), HasSubstr("only ReduceLROnPlateau"));
  optim::ReduceLROnPlateau plateau(opt);
  EXPECT_THAT(ThrownMessage([&] { plateau.Step(); }), HasSubstr("needs the monitored metric"));
  EXPECT_THAT(ThrownMessage([&] { optim::StepLR(opt, 0); }), HasSubstr("step_size"));
  EXPECT_THAT(ThrownMessage([&] { optim::ConstantLR(opt, 1.5); }), HasSubstr("factor"));
  EXPECT_THAT(ThrownMessage([&] { optim::ReduceLROnPlateau(opt, {.factor = 1.0}); }),
              HasSubstr("factor"));
  EXPECT_THAT(ThrownMessage([&] {
                step.LoadState({{"last_epoch", 1}});
              }),
              HasSubstr("'base_lr' is missing"));
  EXPECT_THAT(ThrownMessage([&] {
                step.LoadState({{"last_epoch", 1}, {"base_lr", 0.1}, {"best", 1}});
              }),
              HasSubstr("unexpected key 'best'"));
  EXPECT_THAT(ThrownMessage([&] {
                step.LoadState({{"last_epoch", -1}, {"base_lr", 0.1}});
              }),
              HasSubstr("last_epoch"));
  EXPECT_THAT(ThrownMessage([&] {
                plateau.LoadState({{"last_epoch", 1},
                                   {"base_lr", 0.1},
                                   {"best", 1},
                                   {"num_bad_epochs", 0.5},
                                   {"cooldown_counter", 0}});
              }),
              HasSubstr("num_bad_epochs"));
  EXPECT_EQ(plateau.last_epoch(), 0);  // failed loads change nothing
}

}  // namespace
}  // namespace attend
