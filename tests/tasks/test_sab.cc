// Tests of the Sparse Attentive Backtracking system (src/tasks/sab.cc): the copy data
// (determinism, disjoint splits, the batch layout, errors), the pixel data, the truncated LSTM's
// values and cut gradients, the three models against f64 finite differences and against the
// PyTorch mirror (tests/reference/sab_reference.py: logits, loss, every parameter's and the
// input's gradient), the sparsity of SAB's weights, the cost measurement, a short training that
// learns, and the program build/attend-sab.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/sab.h"
#include "attend/train.h"
#include "attend/vision.h"
#include "support/command.h"
#include "support/files.h"
#include "support/gradcheck.h"
#include "support/models.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend::tasks {
namespace {

using attend::testing::LoadTorchWeights;
using attend::testing::RunCommand;
using attend::testing::TaskCommand;
using attend::testing::TempDir;
using gradcheck::GradCheck;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

bool HaveFashionMnist() {
  return std::filesystem::exists(std::string(vision::kFashionMnistDir) +
                                 "/train-images-idx3-ubyte.gz");
}
#define REQUIRE_FASHION_MNIST() \
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed"

double MaxAbs(const Tensor& t) { return Max(Abs(t)).To(DType::kF64).item(); }

// The sequences of a split as strings (a set of them finds repeats across splits).
std::set<std::string> Keys(const SabCopySet& s) {
  std::set<std::string> keys;
  for (const auto& v : s.symbols) keys.insert(std::string(v.begin(), v.end()));
  return keys;
}

SabCopyOptions SmallCopy() {
  SabCopyOptions o;
  o.gap = 5;
  o.train_size = 300;
  o.dev_size = 40;
  o.test_size = 50;
  o.seed = 7;
  return o;
}

// ---- data ---------------------------------------------------------------------------------------

TEST(SabData, CopyIsDeterministicBySeedWithDisjointSplits) {
  const SabCopyData a = BuildSabCopyData(SmallCopy()), b = BuildSabCopyData(SmallCopy());
  EXPECT_EQ(a.train.symbols, b.train.symbols);
  EXPECT_EQ(a.dev.symbols, b.dev.symbols);
  EXPECT_EQ(a.test.symbols, b.test.symbols);
  SabCopyOptions other = SmallCopy();
  other.seed = 8;
  EXPECT_NE(BuildSabCopyData(other).train.symbols, a.train.symbols);
  // A larger training set or another gap leaves dev and test as they were.
  other = SmallCopy();
  other.train_size = 600;
  other.gap = 50;
  const SabCopyData bigger = BuildSabCopyData(other);
  EXPECT_EQ(bigger.dev.symbols, a.dev.symbols);
  EXPECT_EQ(bigger.test.symbols, a.test.symbols);
  EXPECT_EQ(bigger.gap, 50);

  ASSERT_EQ(a.train.size(), 300);
  ASSERT_EQ(a.dev.size(), 40);
  ASSERT_EQ(a.test.size(), 50);
  std::vector<double> counts(kSabAlphabet, 0.0);
  for (const auto& s : a.train.symbols) {
    ASSERT_EQ(static_cast<int64_t>(s.size()), kSabCopySymbols);
    for (uint8_t v : s) {
      ASSERT_LT(v, kSabAlphabet);
      counts[v] += 1.0;
    }
  }
  // Every symbol is about equally frequent (3,000 draws: 375 expected each).
  for (double c : counts) EXPECT_NEAR(c, 375.0, 75.0);
  const std::set<std::string> train = Keys(a.train), dev = Keys(a.dev), test = Keys(a.test);
  EXPECT_EQ(train.size(), 300u) << "a training sequence repeats";
  for (const auto& s : dev) EXPECT_FALSE(train.count(s)) << "a dev sequence is in training";
  for (const auto& s : test) {
    EXPECT_FALSE(train.count(s)) << "a test sequence is in training";
    EXPECT_FALSE(dev.count(s)) << "a test sequence is in dev";
  }
}

TEST(SabData, CopyBatchScoresOnlyTheOutputPhase) {
  SabCopyData d;
  d.gap = 3;
  d.train.symbols = {{0, 1, 2, 3, 4, 5, 6, 7, 0, 1}, {7, 7, 7, 7, 7, 7, 7, 7, 7, 2}};
  const SabBatch b = MakeSabCopyBatch(d, d.train, {1, 0});
  const int64_t t = SabCopySteps(3);
  ASSERT_EQ(t, 24);
  ASSERT_EQ(b.input.shape().vec(), (std::vector<int64_t>{2, t, kSabCopyInputs}));
  ASSERT_EQ(b.target.shape().vec(), (std::vector<int64_t>{2 * t}));
  EXPECT_EQ(b.classes, kSabAlphabet);
  const std::vector<float> x = b.input.ToVector<float>();
  const std::vector<int64_t> y = b.target.ToVector<int64_t>();
  auto hot = [&](int64_t i, int64_t step) {
    int64_t channel = -1, ones = 0;
    for (int64_t k = 0; k < kSabCopyInputs; ++k)
      if (x[(i * t + step) * kSabCopyInputs + k] == 1.0f) channel = k, ++ones;
    EXPECT_EQ(ones, 1) << "step " << step;
    return channel;
  };
  for (int64_t i = 0; i < 2; ++i) {
    const auto& s = d.train.symbols[i == 0 ? 1 : 0];
    for (int64_t step = 0; step < t; ++step) {
      const int64_t want_in = step < 10 ? s[step] : (step == 13 ? kSabDelimiter : kSabBlank);
      EXPECT_EQ(hot(i, step), want_in) << "row " << i << " step " << step;
      const int64_t want_y = step >= 14 ? s[step - 14] : -1;
      EXPECT_EQ(y[i * t + step], want_y) << "row " << i << " step " << step;
    }
  }
  // Zero logits score chance: the loss is log 8 over the 10 output steps of each sequence.
  EXPECT_NEAR(CrossEntropy(Tensor::Zeros({2 * t, kSabAlphabet}), b.target, -1).item(),
              std::log(8.0), 1e-6);
}

TEST(SabData, RefusesBadOptions) {
  SabCopyOptions o = SmallCopy();
  o.gap = 0;
  EXPECT_THAT(ThrownMessage([&] { BuildSabCopyData(o); }),
              HasSubstr("the gap (0) must be positive"));
  o = SmallCopy();
  o.dev_size = 0;
  EXPECT_THAT(ThrownMessage([&] { BuildSabCopyData(o); }), HasSubstr("dev size 0"));
  const SabCopyData d = BuildSabCopyData(SmallCopy());
  EXPECT_THAT(ThrownMessage([&] { MakeSabCopyBatch(d, d.dev, {40}); }),
              HasSubstr("row 40 outside the copy split of 40"));
  SabConfig c;
  c.model = "gru";
  EXPECT_THAT(ThrownMessage([&] { SabTask task(c, SmallCopy(), {}); }),
              HasSubstr("model 'gru' is not sab, lstm-full or lstm-truncated"));
  c = SabConfig();
  c.task = "text";
  EXPECT_THAT(ThrownMessage([&] { SabTask task(c, SmallCopy(), {}); }),
              HasSubstr("task 'text' is not copy or pixels"));
  c = SabConfig();
  c.model = "lstm-truncated";
  c.ktrunc = 0;
  EXPECT_THAT(ThrownMessage([&] { SabTask task(c, SmallCopy(), {}); }),
              HasSubstr("ktop, katt and ktrunc must be at least 1"));
  SabPixelOptions p;
  p.image_size = 3;
  EXPECT_THAT(ThrownMessage([&] { LoadSabPixelData(p); }),
              HasSubstr("--image-size 3 must lie in 4..28"));
  p = SabPixelOptions();
  p.dev_size = 20000;
  EXPECT_THAT(ThrownMessage([&] { LoadSabPixelData(p); }), HasSubstr("--dev-size 20000"));
  TempDir dir;
  p = SabPixelOptions();
  p.dir = dir / "nothing";
  EXPECT_THAT(ThrownMessage([&] { LoadSabPixelData(p); }), HasSubstr(p.dir));
}

TEST(SabData, PixelsAreTheImagesInOrderAveragedDown) {
  REQUIRE_FASHION_MNIST();
  SabPixelOptions o;
  o.train_size = 6;
  o.dev_size = 4;
  o.test_size = 5;
  o.image_size = 14;
  const SabPixelData d = LoadSabPixelData(o);
  ASSERT_EQ(d.side, 14);
  ASSERT_EQ(d.train.size(), 6);
  ASSERT_EQ(d.dev.size(), 4);
  ASSERT_EQ(d.test.size(), 5);
  ASSERT_EQ(d.train.pixels.size(), 6u * 196u);
  const vision::FashionMnist train = vision::LoadFashionMnist(vision::kFashionMnistDir, false);
  const vision::FashionMnist test = vision::LoadFashionMnist(vision::kFashionMnistDir, true);
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(d.train.labels[i], train.labels[i]);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(d.dev.labels[i], train.labels[59996 + i]);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(d.test.labels[i], test.labels[i]);
  // Pixel (r, c) of the 14 x 14 image is the mean of its 2 x 2 block, normalised.
  const vision::Image img = train.images.image(2);
  const std::vector<float> got(d.train.pixels.begin() + 2 * 196, d.train.pixels.begin() + 3 * 196);
  const float mean = 0.28604060f, std = 0.35302424f;
  for (int64_t r = 0; r < 14; r += 3)
    for (int64_t c = 0; c < 14; c += 5) {
      double sum = 0;
      for (int64_t dr = 0; dr < 2; ++dr)
        for (int64_t dc = 0; dc < 2; ++dc) sum += img.pixels[(2 * r + dr) * 28 + 2 * c + dc];
      const double want = (std::round(sum / 4.0) / 255.0 - mean) / std;
      EXPECT_NEAR(got[r * 14 + c], want, 1e-5) << r << ", " << c;
    }
  // One value per step, scored at the last step only.
  const SabBatch b = MakeSabPixelBatch(d, d.test, {4, 0});
  ASSERT_EQ(b.input.shape().vec(), (std::vector<int64_t>{2, 196, 1}));
  const std::vector<int64_t> y = b.target.ToVector<int64_t>();
  for (int64_t i = 0; i < 2 * 196; ++i) {
    const int64_t want = i == 195 ? d.test.labels[4] : (i == 391 ? d.test.labels[0] : -1);
    EXPECT_EQ(y[i], want) << i;
  }
}

// ---- models -------------------------------------------------------------------------------------

TEST(SabModel, TruncatedLstmKeepsTheValuesAndCutsTheGradient) {
  Generator gen(3);
  nn::RnnOptions ro;
  ro.dtype = DType::kF64;
  nn::LSTM lstm(3, 4, gen, ro);
  const Tensor x0 = RandomUniform({2, 9, 3}, 11);
  const Tensor full = lstm.Forward(x0).output;
  for (int64_t k : {1, 4, 9, 20}) {
    const Tensor cut = TruncatedLstm(lstm, x0, k);
    ASSERT_EQ(cut.shape().vec(), full.shape().vec());
    EXPECT_LT(MaxAbs(Sub(cut, full)), 1e-12) << "ktrunc " << k;
  }
  // The last step's state depends on inputs before its chunk (which starts at 8 for ktrunc 4)
  // only through the values, never through the gradient.
  Tensor x = x0.Clone().set_requires_grad(true);
  Sum(TruncatedLstm(lstm, x, 4).Select(1, 8)).Backward();
  const Tensor g = x.grad();
  EXPECT_EQ(MaxAbs(g.Narrow(1, 0, 8)), 0.0);
  EXPECT_GT(MaxAbs(g.Select(1, 8)), 1e-3);
  // Within a chunk the gradient flows: step 5's output reaches back to step 4, not to step 3.
  Tensor x2 = x0.Clone().set_requires_grad(true);
  Sum(TruncatedLstm(lstm, x2, 4).Select(1, 5)).Backward();
  EXPECT_GT(MaxAbs(x2.grad().Select(1, 4)), 1e-3);
  EXPECT_EQ(MaxAbs(x2.grad().Narrow(1, 0, 4)), 0.0);
  // The full LSTM reaches step 0 from step 8.
  Tensor x3 = x0.Clone().set_requires_grad(true);
  Sum(lstm.Forward(x3).output.Select(1, 8)).Backward();
  EXPECT_GT(MaxAbs(x3.grad().Select(1, 0)), 1e-6);
}

// With ktrunc at least the length nothing is detached, so the backward is the derivative of the
// forward: finite differences check it for the input and every parameter, for all three models.
// SAB keeps every memory (ktop above their count), so no top-k selection can flip under eps.
TEST(SabModel, WholeModelsMatchFiniteDifferencesInF64) {
  const Tensor x = RandomUniform({2, 7, 3}, 21);
  for (const char* kind : {"sab", "lstm-full", "lstm-truncated"}) {
    SCOPED_TRACE(kind);
    SabConfig c;
    c.model = kind;
    c.hidden = 4;
    c.ktop = 10;
    c.katt = 2;
    c.ktrunc = 7;
    Generator gen(5);
    SabModel model(c, 3, 5, gen, DType::kF64);
    EXPECT_TRUE(
        GradCheck([&](const std::vector<Tensor>& in) { return model.Forward(in[0]); }, {x}));
    // Every parameter, every third element.
    EXPECT_TRUE(attend::testing::ParametersMatchFiniteDifferences(
        model, [&] { return std::vector<Tensor>{model.Forward(x)}; }, 3));
  }
}

TEST(SabModel, AttendsToAtMostKtopMemoriesAtEveryKattStep) {
  SabConfig c;
  c.hidden = 6;
  c.ktop = 2;
  c.katt = 3;
  c.ktrunc = 4;
  Generator gen(2);
  SabModel model(c, kSabCopyInputs, kSabAlphabet, gen);
  const SabCopyData d = BuildSabCopyData(SmallCopy());
  const SabBatch b = MakeSabCopyBatch(d, d.dev, {0, 1, 2});
  std::vector<Tensor> weights;
  std::vector<int64_t> steps;
  const Tensor logits = model.Forward(b.input, &weights, &steps);
  ASSERT_EQ(logits.shape().vec(), (std::vector<int64_t>{3, SabCopySteps(5), kSabAlphabet}));
  // Attending steps 3, 6, ..., 24 over 1, 2, ..., 8 memories.
  ASSERT_EQ(steps.size(), 8u);
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i], 3 * static_cast<int64_t>(i + 1));
    ASSERT_EQ(weights[i].shape().vec(), (std::vector<int64_t>{3, 1, static_cast<int64_t>(i + 1)}));
    const std::vector<float> w = weights[i].ToVector<float>();
    for (int64_t row = 0; row < 3; ++row) {
      double sum = 0;
      int nonzero = 0;
      for (size_t m = 0; m <= i; ++m) {
        const float v = w[row * (i + 1) + m];
        EXPECT_GE(v, 0.0f);
        sum += v;
        nonzero += v > 0.0f;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
      EXPECT_EQ(nonzero, std::min<int>(2, static_cast<int>(i + 1)));
    }
  }
  // The baselines attend nowhere.
  c.model = "lstm-full";
  SabModel lstm(c, kSabCopyInputs, kSabAlphabet, gen);
  lstm.Forward(b.input, &weights, &steps);
  EXPECT_TRUE(weights.empty());
}

// ---- against PyTorch ----------------------------------------------------------------------------

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  SabConfig config;
  config.model = k.Str("model");
  config.hidden = k.Int("hidden");
  config.ktop = k.Int("ktop");
  config.katt = k.Int("katt");
  config.ktrunc = k.Int("ktrunc");
  const Tensor input = ToTensor(Ref(c, "input"));
  Generator gen(1);
  SabModel model(config, k.Int("inputs"), k.Int("classes"), gen, input.dtype());
  LoadTorchWeights(c, model);
  if (::testing::Test::HasFatalFailure()) return;
  Tensor x = input.Clone().set_requires_grad(true);
  const Tensor target = ToTensor(Ref(c, "target"));
  const Tensor logits = model.Forward(x);
  const Tensor loss = CrossEntropy(logits.Reshape({-1, k.Int("classes")}), target, -1);
  loss.Backward();
  // Tolerances (reference_compare.h: |got - want| <= atol * n + rtol * |want|): a value at step t
  // ends t steps of the recurrence, each a chain of sums of at most in + 2H terms (gates, the
  // concat score, the readout): n = steps * that width. Gradients run the same chain back.
  const double width = static_cast<double>(k.Int("inputs") + 2 * config.hidden + 8);
  const double chain = static_cast<double>(input.size(1)) * width;
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), chain);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), chain);
  for (auto& [name, p] : model.NamedParameters())
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), chain);
  ExpectMatches(c, "grad input", x.grad(), Ref(c, "grad:input"), chain);
}

TEST(SabTorchReference, LogitsLossAndGradientsMatch) {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("sab_reference.bin", "tests/reference/sab_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  ASSERT_EQ(loaded.cases.size(), 7u);
  std::set<std::string> models;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    models.insert(OpKey(c.op).Str("model"));
  }
  EXPECT_EQ(models, (std::set<std::string>{"sab", "lstm-full", "lstm-truncated"}));
}

// ---- task, cost, training, the program
// -----------------------------------------------------------

TEST(SabTask, EvaluatesAndMeasuresAStep) {
  SabConfig c;
  c.model = "lstm-full";
  c.hidden = 32;
  SabTask task(c, SmallCopy(), {});
  EXPECT_EQ(task.NumTrain(), 300);
  EXPECT_EQ(task.UnitsOf({0, 1}), 2.0 * SabCopySteps(5));
  task.Model().Eval();
  const SabScore s = EvaluateSab(task, "test", 7);
  EXPECT_GE(s.accuracy, 0.0);
  EXPECT_LE(s.accuracy, 100.0);
  EXPECT_NEAR(s.loss, std::log(8.0), 0.3);  // an untrained model is near chance
  EXPECT_THAT(ThrownMessage([&] { EvaluateSab(task, "valid"); }), HasSubstr("no split 'valid'"));
  // Full BPTT keeps every step's activations for the backward: a sequence 4 times longer (26
  // against 101 steps) costs several times the memory. (Batches of 16 at hidden 32, so that the
  // activations, not the allocator's rounding of small blocks, make the figure.)
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < 16; ++r) rows.push_back(r);
  const SabStepCost shortgap = MeasureSabStep(task, rows, 1);
  SabCopyOptions longer = SmallCopy();
  longer.gap = 80;
  SabTask long_task(c, longer, {});
  const SabStepCost longgap = MeasureSabStep(long_task, rows, 1);
  EXPECT_GT(shortgap.ms_per_step, 0.0);
  EXPECT_GT(shortgap.peak_mib, 0.0);
  EXPECT_GT(longgap.peak_mib, 2.0 * shortgap.peak_mib);
}

TEST(SabTask, LearnsTheCopyTaskOverAShortGap) {
  TempDir dir;
  SabConfig c;
  c.hidden = 32;
  c.ktop = 3;
  c.katt = 3;
  c.ktrunc = 3;
  SabCopyOptions d = SmallCopy();
  d.gap = 4;
  d.train_size = 1000;
  SabTask task(c, d, {});
  train::TaskTrainOptions o;
  o.out_dir = dir.path().string();
  o.batch_size = 32;
  o.lr = 1e-2;
  o.warmup = 30;
  o.max_steps = 300;
  o.valid_every = 300;
  o.log_every = 50;
  o.progress = false;
  o.threads = 1;
  const train::TaskTrainSummary s = train::TrainTask(task, o, false);
  ASSERT_FALSE(s.curve.empty());
  EXPECT_NEAR(s.curve.front().second, std::log(8.0), 0.15);  // it starts near chance
  // 300 steps reach about 1.54 (the symbols are partly recalled); chance is log 8 = 2.08.
  EXPECT_LT(s.curve.back().second, 1.75);
}

TEST(SabCommand, TrainsTestsMeasuresAndDraws) {
  TempDir dir;
  const auto r = RunCommand(
      TaskCommand("sab", "--out " + dir.path().string() +
                             " --gap 12 --hidden 8 --katt 4 --ktop 2 --ktrunc 4 --train-size 64"
                             " --dev-size 16 --test-size 16 --max-steps 6 --valid-every 3"
                             " --batch-size 8 --threads 1 --no-progress"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("\nsab test accuracy [0-9.]+ \\(task copy, model sab\\) \\| "
                                      "ms/step [0-9.]+ \\| peak MiB [0-9.]+\n$"));
  EXPECT_TRUE(std::filesystem::exists(dir / "sab-attention.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "best.ckpt"));
  TempDir other;
  const auto l = RunCommand(TaskCommand(
      "sab", "--out " + other.path().string() +
                 " --model lstm-truncated --gap 12 --hidden 8 --ktrunc 4 --train-size 64"
                 " --dev-size 16 --test-size 16 --max-steps 4 --batch-size 8 --threads 1"
                 " --no-progress"));
  ASSERT_EQ(l.exit_code, 0) << l.output;
  EXPECT_THAT(l.output, HasSubstr("(task copy, model lstm-truncated) | ms/step "));
  EXPECT_FALSE(std::filesystem::exists(other / "sab-attention.png"));
}

TEST(SabCommand, RefusesAZeroGap) {
  TempDir dir;
  const auto r =
      RunCommand(TaskCommand("sab", "--out " + dir.path().string() + " --gap 0 --max-steps 1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("attend-sab: error: sab copy data: the gap (0) must be positive"));
}

}  // namespace
}  // namespace attend::tasks
