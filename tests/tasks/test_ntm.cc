// Tests of the Neural Turing Machine on the copy task (src/tasks/ntm.cc): the data (determinism,
// disjoint splits, the batch layout, errors), the addressing's properties and its f64 finite
// differences, the whole model against the PyTorch mirror (tests/reference/ntm_reference.py:
// logits, both heads' weights at every step, the loss and every parameter's gradient), a short
// training that learns, and the program build/attend-ntm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/ntm.h"
#include "attend/train.h"
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
using gradcheck::RandomAway;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

CopyDataOptions SmallData() {
  CopyDataOptions o;
  o.train_size = 600;
  o.dev_size = 40;
  o.max_train_length = 4;
  o.test_lengths = {4, 9};
  o.test_per_length = 10;
  o.seed = 7;
  return o;
}

std::set<std::string> Keys(const CopySet& s) {
  std::set<std::string> keys;
  for (const auto& b : s.bits) keys.insert(std::string(b.begin(), b.end()));
  return keys;
}

// ---- data ---------------------------------------------------------------------------------------

TEST(NtmData, DeterministicBySeedWithDisjointSplits) {
  const CopyData a = BuildCopyData(SmallData()), b = BuildCopyData(SmallData());
  EXPECT_EQ(a.train.bits, b.train.bits);
  EXPECT_EQ(a.train.lengths, b.train.lengths);
  EXPECT_EQ(a.dev.bits, b.dev.bits);
  EXPECT_EQ(a.test[1].bits, b.test[1].bits);
  CopyDataOptions other = SmallData();
  other.seed = 8;
  EXPECT_NE(BuildCopyData(other).train.bits, a.train.bits);
  // A larger training set leaves dev and test as they were.
  other = SmallData();
  other.train_size = 900;
  const CopyData bigger = BuildCopyData(other);
  EXPECT_EQ(bigger.dev.bits, a.dev.bits);
  EXPECT_EQ(bigger.test[0].bits, a.test[0].bits);

  ASSERT_EQ(a.train.size(), 600);
  ASSERT_EQ(a.dev.size(), 40);
  ASSERT_EQ(a.test.size(), 2u);
  std::set<int64_t> lengths;
  for (int64_t i = 0; i < a.train.size(); ++i) {
    lengths.insert(a.train.lengths[i]);
    ASSERT_EQ(static_cast<int64_t>(a.train.bits[i].size()), a.train.lengths[i] * kCopyBits);
    for (uint8_t v : a.train.bits[i]) ASSERT_LE(v, 1);
  }
  EXPECT_EQ(lengths, (std::set<int64_t>{1, 2, 3, 4}));
  for (int64_t l : a.test[1].lengths) EXPECT_EQ(l, 9);
  // No sequence is in two splits (length 1 has only 256 sequences: collisions are likely).
  const std::set<std::string> train = Keys(a.train), dev = Keys(a.dev);
  std::set<std::string> test = Keys(a.test[0]);
  for (const auto& k : Keys(a.test[1])) test.insert(k);
  for (const auto& k : dev) EXPECT_FALSE(train.count(k)) << "a dev sequence is in training";
  for (const auto& k : test) {
    EXPECT_FALSE(train.count(k)) << "a test sequence is in training";
    EXPECT_FALSE(dev.count(k)) << "a test sequence is in dev";
  }
  // Bits are balanced.
  double ones = 0, all = 0;
  for (const auto& bits : a.train.bits)
    for (uint8_t v : bits) ones += v, all += 1;
  EXPECT_NEAR(ones / all, 0.5, 0.03);
}

TEST(NtmData, BatchLayoutPutsTargetsAfterTheDelimiter) {
  CopySet s;
  s.lengths = {2, 1};
  s.bits = {{1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1}};
  const CopyBatch b = MakeCopyBatch(s, {0, 1});
  ASSERT_EQ(b.input.shape().vec(), (std::vector<int64_t>{2, 5, kCopyInputs}));
  const std::vector<float> in = b.input.ToVector<float>(), y = b.target.ToVector<float>(),
                           m = b.mask.ToVector<float>();
  auto at_in = [&](int64_t i, int64_t t, int64_t k) { return in[(i * 5 + t) * kCopyInputs + k]; };
  auto at_y = [&](int64_t i, int64_t t, int64_t k) { return y[(i * 5 + t) * kCopyBits + k]; };
  EXPECT_EQ(at_in(0, 0, 0), 1.0f);
  EXPECT_EQ(at_in(0, 0, 7), 1.0f);
  EXPECT_EQ(at_in(0, 1, 1), 1.0f);
  EXPECT_EQ(at_in(0, 2, kCopyBits), 1.0f);  // delimiter at step L
  EXPECT_EQ(at_in(1, 1, kCopyBits), 1.0f);
  EXPECT_EQ(at_y(0, 3, 0), 1.0f);  // targets at L+1 .. 2L
  EXPECT_EQ(at_y(0, 4, 1), 1.0f);
  EXPECT_EQ(at_y(1, 2, 5), 1.0f);
  EXPECT_EQ(m, (std::vector<float>{0, 0, 0, 1, 1, 0, 0, 1, 0, 0}));
  double inputs_after = 0;
  for (int64_t t = 3; t < 5; ++t)
    for (int64_t k = 0; k < kCopyInputs; ++k) inputs_after += at_in(0, t, k);
  EXPECT_EQ(inputs_after, 0.0) << "the output phase must show the model nothing";
  // A perfect prediction has no wrong bits; flipping one bit of one target costs exactly one.
  Tensor logits = (b.target * 2.0 - 1.0) * 5.0;
  EXPECT_EQ(WrongBits(logits, b), (std::vector<int64_t>{0, 0}));
  std::vector<float> l = logits.ToVector<float>();
  l[(0 * 5 + 4) * kCopyBits + 3] = 5.0f;
  l[(0 * 5 + 0) * kCopyBits + 3] = 5.0f;  // outside the output phase: not counted
  EXPECT_EQ(WrongBits(Tensor::FromVector(l, {2, 5, kCopyBits}), b), (std::vector<int64_t>{1, 0}));
  // The loss is the mean BCE over the masked bits: log 2 for zero logits.
  EXPECT_NEAR(CopyLoss(Tensor::Zeros({2, 5, kCopyBits}), b).item(), std::log(2.0), 1e-6);
}

TEST(NtmData, RefusesBadSizes) {
  CopyDataOptions o = SmallData();
  o.train_size = 0;
  EXPECT_THAT(ThrownMessage([&] { BuildCopyData(o); }), HasSubstr("must be positive"));
  o = SmallData();
  o.test_lengths = {3, -1};
  EXPECT_THAT(ThrownMessage([&] { BuildCopyData(o); }), HasSubstr("test length -1"));
  o = SmallData();
  o.max_train_length = 1;  // 3000 dev draws take all 256 sequences of length 1: none is left
  o.dev_size = 3000;
  EXPECT_THAT(ThrownMessage([&] { BuildCopyData(o); }), HasSubstr("too few distinct sequences"));
  NtmConfig c;
  c.memory_size = 8;
  o = SmallData();
  EXPECT_THAT(ThrownMessage([&] { NtmCopyTask task(c, o); }),
              HasSubstr("test length 9 exceeds the memory size 8"));
  c.controller = "gru";
  EXPECT_THAT(ThrownMessage([&] { NtmCopyTask task(c, o); }),
              HasSubstr("'gru' is not ntm or lstm"));
  CopySet s;
  EXPECT_THAT(ThrownMessage([&] { MakeCopyBatch(s, {0}); }), HasSubstr("row 0 outside"));
}

// ---- addressing ---------------------------------------------------------------------------------

TEST(NtmAddressing, PropertiesOfTheFourSteps) {
  Tensor w = Softmax(gradcheck::RandomDistinct({3, 7}, 1), -1);  // no ties: one largest
  // Shift (0, 1, 0) and gamma = 1 are identities (up to the sharpening's eps).
  Tensor keep = Tensor::FromVector(std::vector<double>{0, 1, 0, 0, 1, 0, 0, 1, 0}, {3, 3});
  EXPECT_EQ(CircularShift(w, keep).ToVector<double>(), w.ToVector<double>());
  const std::vector<double> sharp =
      Sharpen(w, Tensor::Full({3}, 1.0, DType::kF64)).ToVector<double>();
  const std::vector<double> wv = w.ToVector<double>();
  for (size_t i = 0; i < wv.size(); ++i) EXPECT_NEAR(sharp[i], wv[i], 1e-10);
  // Shift +1 moves every weight one location up, the last to location 0; -1 the other way.
  Tensor up = Tensor::FromVector(std::vector<double>{0, 0, 1, 0, 0, 1, 0, 0, 1}, {3, 3});
  Tensor down = Tensor::FromVector(std::vector<double>{1, 0, 0, 1, 0, 0, 1, 0, 0}, {3, 3});
  const std::vector<double> u = CircularShift(w, up).ToVector<double>(),
                            d = CircularShift(w, down).ToVector<double>();
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t i = 0; i < 7; ++i) {
      EXPECT_EQ(u[b * 7 + (i + 1) % 7], wv[b * 7 + i]);
      EXPECT_EQ(d[b * 7 + i], wv[b * 7 + (i + 1) % 7]);
    }
  // Sharpening with a large gamma tends to the one-hot of the largest weight.
  const std::vector<double> peak =
      Sharpen(w, Tensor::Full({3}, 1000.0, DType::kF64)).ToVector<double>();
  for (int64_t b = 0; b < 3; ++b) {
    int64_t arg = 0;
    for (int64_t i = 1; i < 7; ++i)
      if (wv[b * 7 + i] > wv[b * 7 + arg]) arg = i;
    EXPECT_NEAR(peak[b * 7 + arg], 1.0, 1e-6);
  }
  // The whole step gives weights summing to 1; with g = 0, no shift and gamma = 1 it returns the
  // previous weights; with g = 1 and a large beta it picks the location matching the key.
  Tensor memory = RandomUniform({3, 7, 5}, 2);
  HeadAddress h;
  h.key = memory.Select(1, 4).Clone();  // location 4 of each batch row
  h.beta = Tensor::Full({3}, 500.0, DType::kF64);
  h.gate = Tensor::Full({3}, 0.3, DType::kF64);
  h.shift = Softmax(RandomUniform({3, 3}, 3), -1);
  h.gamma = Tensor::Full({3}, 1.7, DType::kF64);
  Tensor sums = Sum(Address(memory, h, w), {1});
  for (double s : sums.ToVector<double>()) EXPECT_NEAR(s, 1.0, 1e-12);
  h.gate = Tensor::Zeros({3}, DType::kF64);
  h.shift = keep;
  h.gamma = Tensor::Ones({3}, DType::kF64);
  const std::vector<double> same = Address(memory, h, w).ToVector<double>();
  for (size_t i = 0; i < wv.size(); ++i) EXPECT_NEAR(same[i], wv[i], 1e-10);
  h.gate = Tensor::Ones({3}, DType::kF64);
  const std::vector<double> found = Address(memory, h, w).ToVector<double>();
  for (int64_t b = 0; b < 3; ++b) EXPECT_GT(found[b * 7 + 4], 0.9) << b;
}

TEST(NtmAddressing, WholeStepMatchesFiniteDifferences) {
  // Raw (unconstrained) head outputs go through the model's activations, so the check covers
  // softplus, sigmoid and the shift's softmax as well as cosine, interpolation, shift, sharpen.
  auto step = [](const std::vector<Tensor>& x) {
    HeadAddress h;
    h.key = x[1];
    h.beta = Softplus(x[2]);
    h.gate = Sigmoid(x[3]);
    h.shift = Softmax(x[4], -1);
    h.gamma = AddScalar(Softplus(x[5]), 1.0);
    return Address(x[0], h, Softmax(x[6], -1));
  };
  const std::vector<Tensor> inputs = {
      RandomUniform({2, 5, 4}, 11),          RandomUniform({2, 4}, 12),
      RandomAway({2}, 13, -2.0, 2.0, {0.0}), RandomUniform({2}, 14, -2, 2),
      RandomUniform({2, 3}, 15, -2, 2),      RandomAway({2}, 16, -2.0, 2.0, {0.0}),
      RandomUniform({2, 5}, 17, -2, 2)};
  EXPECT_TRUE(GradCheck(step, inputs));
  // The memory write as well: the model's whole step from memory to memory.
  auto write = [](const std::vector<Tensor>& x) {
    Tensor w = Softmax(x[1], -1).Unsqueeze(2);
    return x[0] * (1.0 - w * Sigmoid(x[2]).Unsqueeze(1)) + w * Tanh(x[3]).Unsqueeze(1);
  };
  EXPECT_TRUE(GradCheck(write, {RandomUniform({2, 5, 4}, 21), RandomUniform({2, 5}, 22),
                                RandomUniform({2, 4}, 23), RandomUniform({2, 4}, 24)}));
}

TEST(NtmModel, WholeForwardMatchesFiniteDifferencesInF64) {
  Generator gen(5);
  NtmModel model(4, 3, 3, gen, DType::kF64);
  CopySet s;
  s.lengths = {2};
  s.bits = {{1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1}};
  const CopyBatch batch = MakeCopyBatch(s, {0}, DType::kF64);
  // The parameters are the model's own leaves, so the check moves them in place (every third
  // element of each).
  EXPECT_TRUE(attend::testing::ParametersMatchFiniteDifferences(
      model, [&] { return std::vector<Tensor>{model.Forward(batch.input)}; }, 3));
}

// ---- against PyTorch ----------------------------------------------------------------------------

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  const int64_t n = k.Int("memory_size"), m = k.Int("memory_width"), hidden = k.Int("hidden");
  Generator gen(1);
  NtmModel model(n, m, hidden, gen);
  LoadTorchWeights(c, model);
  if (::testing::Test::HasFatalFailure()) return;
  CopyBatch batch;
  batch.input = ToTensor(Ref(c, "input"));
  batch.target = ToTensor(Ref(c, "target"));
  batch.mask = ToTensor(Ref(c, "mask"));
  batch.lengths = ToTensor(Ref(c, "lengths")).ToVector<int64_t>();
  NtmTrace trace;
  Tensor logits = model.Forward(batch.input, &trace);
  Tensor loss = CopyLoss(logits, batch);
  loss.Backward();
  const int64_t steps = batch.input.size(1);
  // Tolerances (reference_compare.h: |got - want| <= atol * n + rtol * |want|). Every value at
  // step t is the end of t steps of the recurrence, each a chain of sums of at most
  // max(H + M + 9, N * M) terms: n = steps * that width. Gradients run the same chain back.
  const double width = static_cast<double>(std::max(hidden + m + kCopyInputs, n * m));
  const double chain = static_cast<double>(steps) * width;
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), chain);
  ExpectMatches(c, "read_weights", Stack(trace.read_weights, 1), Ref(c, "read_weights"), chain);
  ExpectMatches(c, "write_weights", Stack(trace.write_weights, 1), Ref(c, "write_weights"), chain);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), 1.0);
  for (auto& [name, p] : model.NamedParameters())
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), chain);
}

TEST(NtmTorchReference, LogitsWeightsLossAndGradientsMatch) {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("ntm_reference.bin", "tests/reference/ntm_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  ASSERT_EQ(loaded.cases.size(), 2u);
  for (const RefCase& c : loaded.cases) ReplayCase(c);
}

// ---- models, training, the program --------------------------------------------------------------

TEST(NtmModel, BaselineHasAboutTheNtmsParameterCount) {
  NtmConfig c;
  Generator gen(1);
  NtmModel ntm(c.memory_size, c.memory_width, c.hidden, gen);
  c.controller = "lstm";
  const auto lstm = MakeCopyModel(c);
  const double ratio =
      static_cast<double>(lstm->NumParameters()) / static_cast<double>(ntm.NumParameters());
  EXPECT_NEAR(ratio, 1.0, 0.01) << lstm->NumParameters() << " vs " << ntm.NumParameters();
  // The memory adds no parameters: the NTM's count does not depend on N.
  NtmModel bigger(2 * c.memory_size, c.memory_width, c.hidden, gen);
  EXPECT_EQ(bigger.NumParameters(), ntm.NumParameters());
}

TEST(NtmTask, LearnsTheShortCopyTask) {
  TempDir dir;
  NtmConfig c;
  c.memory_size = 8;
  c.memory_width = 6;
  c.hidden = 24;
  CopyDataOptions d = SmallData();
  d.max_train_length = 3;
  d.test_lengths = {4};
  NtmCopyTask task(c, d);
  train::TaskTrainOptions o;
  o.out_dir = dir.path().string();
  o.batch_size = 16;
  o.lr = 1e-2;
  o.warmup = 50;
  o.clip_norm = 10;
  o.max_steps = 400;
  o.valid_every = 400;
  o.log_every = 50;
  o.progress = false;
  o.threads = 1;
  const train::TaskTrainSummary s = train::TrainTask(task, o, false);
  ASSERT_FALSE(s.curve.empty());
  EXPECT_NEAR(s.curve.front().second, std::log(2.0), 0.05);  // it starts at chance
  EXPECT_LT(s.curve.back().second, 0.42);                    // chance is log 2 = 0.693
}

TEST(NtmCommand, TrainsTestsAndDraws) {
  TempDir dir;
  const auto r = RunCommand(TaskCommand(
      "ntm", "--out " + dir.path().string() +
                 " --memory-size 8 --memory-width 6 --hidden 16 --train-size 200 --dev-size 20"
                 " --max-train-length 3 --test-lengths 4,6 --test-per-length 5"
                 " --picture-length 6 --max-steps 20 --valid-every 10 --threads 1 --no-progress"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("\nntm test bits-per-sequence L4 [0-9.]+ L6 [0-9.]+ "
                                      "\\(controller ntm\\)\n$"));
  EXPECT_TRUE(std::filesystem::exists(dir / "ntm-weights.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "ntm-bits.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "best.ckpt"));
  const auto l = RunCommand(TaskCommand(
      "ntm", "--out " + dir.path().string() +
                 " --controller lstm --train-size 200 --dev-size 20 --max-train-length 3"
                 " --test-lengths 4 --test-per-length 5 --picture-length 4 --max-steps 5"
                 " --threads 1 --no-progress"));
  ASSERT_EQ(l.exit_code, 0) << l.output;
  EXPECT_THAT(l.output, HasSubstr("ntm test bits-per-sequence L4 "));
  EXPECT_THAT(l.output, HasSubstr("(controller lstm)"));
}

TEST(NtmCommand, RefusesASequenceLongerThanTheMemory) {
  TempDir dir;
  const auto r = RunCommand(
      TaskCommand("ntm", "--out " + dir.path().string() + " --test-lengths 20,200 --max-steps 1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("attend-ntm: error: test length 200 exceeds the memory size 128"));
}

}  // namespace
}  // namespace attend::tasks
