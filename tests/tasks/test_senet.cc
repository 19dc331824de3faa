// The SENet task (attend/tasks/senet.h, build/attend-senet): the fixed Fashion-MNIST split, the
// CNN with and without squeeze-and-excitation against its PyTorch mirror (values and gradients,
// tests/reference/senet_reference.py) and f64 finite differences, its properties, the per-class
// excitation and its picture, a tiny training run that learns, and the program end to end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/senet.h"
#include "attend/train.h"
#include "attend/vision.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"
#include "support/gradcheck.h"
#include "support/models.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend::tasks {
namespace {

namespace fs = std::filesystem;
using attend::testing::CommandResult;
using attend::testing::Lines;
using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::TaskCommand;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::HasSubstr;

bool HaveFashionMnist() {
  return fs::exists(std::string(vision::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz") &&
         fs::exists(std::string(vision::kFashionMnistDir) + "/train-images-idx3-ubyte.gz");
}

#define REQUIRE_FASHION_MNIST() \
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed"

// The full split is read once for the tests that need it (two gunzips of 30 MB).
const SenetData& FullData() {
  static const SenetData data = LoadSenetData(vision::kFashionMnistDir);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Data.
// ---------------------------------------------------------------------------------------------

TEST(SenetData, SplitsAreFixedDisjointAndTakenInOrder) {
  REQUIRE_FASHION_MNIST();
  const SenetData& d = FullData();
  ASSERT_EQ(d.train.size(), 55000);
  ASSERT_EQ(d.dev.size(), 5000);
  ASSERT_EQ(d.test.size(), 10000);
  EXPECT_EQ(d.train.source, "train");
  EXPECT_EQ(d.dev.source, "train");
  EXPECT_EQ(d.test.source, "test");
  // train and dev come from the same file: the first 55,000 and the last 5,000, no overlap.
  EXPECT_EQ(d.train.source_index.front(), 0);
  EXPECT_EQ(d.train.source_index.back(), 54999);
  EXPECT_EQ(d.dev.source_index.front(), 55000);
  EXPECT_EQ(d.dev.source_index.back(), 59999);
  std::set<int64_t> train(d.train.source_index.begin(), d.train.source_index.end());
  for (int64_t i : d.dev.source_index) ASSERT_EQ(train.count(i), 0u) << i;
  EXPECT_EQ(train.size(), 55000u);
  // Each image and label is the file's, byte for byte.
  const vision::FashionMnist raw = vision::LoadFashionMnist(vision::kFashionMnistDir, false);
  const vision::FashionMnist raw_test = vision::LoadFashionMnist(vision::kFashionMnistDir, true);
  for (int64_t i : {0, 1, 12345, 54999}) {
    EXPECT_TRUE(std::equal(d.train.pixels.begin() + i * 784, d.train.pixels.begin() + i * 784 + 784,
                           raw.images.pixels.begin() + i * 784));
    EXPECT_EQ(d.train.labels[i], raw.labels[i]);
  }
  for (int64_t i : {0, 4999}) {
    EXPECT_TRUE(std::equal(d.dev.pixels.begin() + i * 784, d.dev.pixels.begin() + i * 784 + 784,
                           raw.images.pixels.begin() + (55000 + i) * 784));
    EXPECT_EQ(d.dev.labels[i], raw.labels[55000 + i]);
  }
  EXPECT_EQ(d.test.pixels, raw_test.images.pixels);
  std::vector<int64_t> test_labels(raw_test.labels.begin(), raw_test.labels.end());
  EXPECT_EQ(d.test.labels, test_labels);
  // Every class is in every split.
  for (const SenetSplit* s : {&d.train, &d.dev, &d.test}) {
    std::set<int64_t> classes(s->labels.begin(), s->labels.end());
    EXPECT_EQ(classes.size(), 10u) << s->source;
  }
}

TEST(SenetData, DeterministicAndTrainSizeTakesAPrefix) {
  REQUIRE_FASHION_MNIST();
  const SenetData small = LoadSenetData(vision::kFashionMnistDir, 300);
  const SenetData again = LoadSenetData(vision::kFashionMnistDir, 300);
  EXPECT_EQ(small.train.pixels, again.train.pixels);
  EXPECT_EQ(small.train.labels, again.train.labels);
  ASSERT_EQ(small.train.size(), 300);
  const SenetData& full = FullData();
  EXPECT_TRUE(
      std::equal(small.train.pixels.begin(), small.train.pixels.end(), full.train.pixels.begin()));
  EXPECT_TRUE(
      std::equal(small.train.labels.begin(), small.train.labels.end(), full.train.labels.begin()));
  // The dev and test sets do not depend on --train-size.
  EXPECT_EQ(small.dev.pixels, full.dev.pixels);
  EXPECT_EQ(small.test.labels, full.test.labels);
}

TEST(SenetData, RefusesBadSizesAMissingDirectoryAndABrokenFile) {
  EXPECT_THAT(ThrownMessage([] { LoadSenetData(vision::kFashionMnistDir, -1); }),
              HasSubstr("--train-size -1 must lie in 0..55000"));
  EXPECT_THAT(ThrownMessage([] { LoadSenetData(vision::kFashionMnistDir, 55001); }),
              HasSubstr("--train-size 55001 must lie in 0..55000"));
  EXPECT_THAT(ThrownMessage([] { LoadSenetData("/nonexistent/senet-fmnist"); }),
              HasSubstr("/nonexistent/senet-fmnist"));
  REQUIRE_FASHION_MNIST();
  // A copy of the four files with the training images cut short: the message names that file.
  TempDir dir;
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    fs::copy_file(std::string(vision::kFashionMnistDir) + "/" + f, dir / f);
  const std::string images = ReadFile(dir / "train-images-idx3-ubyte.gz");
  attend::testing::WriteFile(dir / "train-images-idx3-ubyte.gz",
                             images.substr(0, images.size() / 2));
  EXPECT_THAT(ThrownMessage([&] { LoadSenetData(dir.path().string()); }),
              HasSubstr(dir / "train-images-idx3-ubyte.gz"));
}

SenetSplit SyntheticSplit(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  SenetSplit s;
  s.source = "synthetic";
  s.pixels.resize(static_cast<size_t>(n * 784));
  for (auto& p : s.pixels) p = static_cast<uint8_t>(rng() % 256);
  for (int64_t i = 0; i < n; ++i) {
    s.labels.push_back(static_cast<int64_t>(rng() % 10));
    s.source_index.push_back(i);
  }
  return s;
}

TEST(SenetData, ImagesAreStandardisedPixelsAndRowsAreChecked) {
  SenetSplit s = SyntheticSplit(3, 1);
  s.pixels[784 + 5] = 0;
  s.pixels[784 + 6] = 255;
  const Tensor x = SenetImages(s, {2, 1});
  ASSERT_EQ(x.shape(), Shape({2, 1, 28, 28}));
  const std::vector<float> v = x.ToVector<float>();
  // Fashion-MNIST's training pixel mean 0.2860 and standard deviation 0.3530 (of pixel / 255).
  EXPECT_NEAR(v[784 + 5], (0.0 - 0.2860406) / 0.3530242, 1e-5);
  EXPECT_NEAR(v[784 + 6], (1.0 - 0.2860406) / 0.3530242, 1e-5);
  EXPECT_NEAR(v[17], (s.pixels[2 * 784 + 17] / 255.0 - 0.2860406) / 0.3530242, 1e-5);
  EXPECT_EQ(SenetLabels(s, {2, 0}).ToVector<int64_t>(),
            (std::vector<int64_t>{s.labels[2], s.labels[0]}));
  EXPECT_THAT(ThrownMessage([&] { SenetImages(s, {3}); }),
              HasSubstr("row 3 outside the synthetic split of 3 images"));
  EXPECT_THAT(ThrownMessage([&] { SenetLabels(s, {-1}); }), HasSubstr("row -1 outside"));
}

// ---------------------------------------------------------------------------------------------
// The model against PyTorch.
// ---------------------------------------------------------------------------------------------

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  SenetConfig config;
  config.channels = k.IntList("channels");
  config.reduction = k.Int("reduction");
  config.channel_attention = k.Bool("se");
  const DType dtype = k.Str("dtype") == "f64" ? DType::kF64 : DType::kF32;
  Generator gen(1);
  SenetModel model(config, gen, dtype);
  attend::testing::LoadTorchWeights(c, model);
  if (::testing::Test::HasFatalFailure()) return;
  Tensor x = ToTensor(Ref(c, "x")).set_requires_grad(true);
  const Tensor labels = ToTensor(Ref(c, "labels"));
  const SenetModel::Output out = model.Forward(x);
  Tensor loss = CrossEntropy(out.logits, labels);
  loss.Backward();

  // Tolerances (reference_compare.h: |got - want| <= atol * n + rtol * |want|), n the longest
  // sum behind an element: for the logits, gates, loss and input gradient the widest of the
  // convolutions' 9 * C taps and the first stage's H * W positions (its SE mean, its pooling);
  // a weight's gradient sums over the B * H * W positions of its stage, at most the first's.
  // (Observed on these cases: the values still pass with n a thousandth of this, the gradients
  // with a seventh.)
  const int64_t b = x.size(0), hw = x.size(2) * x.size(3);
  int64_t widest = 1;
  for (int64_t ch : config.channels) widest = std::max(widest, 9 * ch);
  const double n = static_cast<double>(std::max(hw, widest));
  ExpectMatches(c, "logits", out.logits, Ref(c, "logits"), n);
  ASSERT_EQ(out.gates.size(), config.channel_attention ? config.channels.size() : 0u);
  for (size_t g = 0; g < out.gates.size(); ++g)
    ExpectMatches(c, "gate" + std::to_string(g + 1), out.gates[g],
                  Ref(c, "gate" + std::to_string(g + 1)), n);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), n);
  ExpectMatches(c, "grad x", x.grad(), Ref(c, "grad:x"), n);
  for (auto& [name, p] : model.NamedParameters())
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), static_cast<double>(b * hw));
}

TEST(SenetTorchReference, LogitsGatesLossAndGradientsMatch) {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("senet_reference.bin", "tests/reference/senet_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<std::string> names;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    names.insert(c.name);
  }
  EXPECT_EQ(names, (std::set<std::string>{"se_3stages", "se_2stages_odd_f64", "se_1stage_r3",
                                          "plain_3stages"}));
}

// ---------------------------------------------------------------------------------------------
// Finite differences (f64).
// ---------------------------------------------------------------------------------------------

TEST(SenetGradCheck, InputsAndParametersMatchFiniteDifferences) {
  for (bool se : {true, false}) {
    SCOPED_TRACE(se ? "se" : "none");
    SenetConfig config;
    config.channels = {3, 4};
    config.reduction = 2;
    config.channel_attention = se;
    Generator gen(11);
    SenetModel model(config, gen, DType::kF64);
    const Tensor x = gradcheck::RandomUniform({2, 1, 6, 7}, 12, -1.5, 1.5);
    auto outputs = [&](const Tensor& in) {
      SenetModel::Output out = model.Forward(in);
      std::vector<Tensor> all = {out.logits};
      all.insert(all.end(), out.gates.begin(), out.gates.end());
      return all;
    };
    EXPECT_TRUE(gradcheck::GradCheckMulti(
        [&](const std::vector<Tensor>& in) { return outputs(in[0]); }, {x}));
    EXPECT_TRUE(
        attend::testing::ParametersMatchFiniteDifferences(model, [&] { return outputs(x); }));
  }
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

TEST(SenetModel, ShapesParametersAndGates) {
  SenetConfig config;
  config.channels = {16, 32, 64};
  config.reduction = 4;
  Generator gen(2);
  SenetModel se(config, gen);
  config.channel_attention = false;
  SenetModel plain(config, gen);
  std::vector<std::string> names;
  for (const auto& [name, p] : se.NamedParameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "conv1.weight",   "conv1.bias",   "se1.fc1.weight",    "se1.fc1.bias",
                       "se1.fc2.weight", "se1.fc2.bias", "conv2.weight",      "conv2.bias",
                       "se2.fc1.weight", "se2.fc1.bias", "se2.fc2.weight",    "se2.fc2.bias",
                       "conv3.weight",   "conv3.bias",   "se3.fc1.weight",    "se3.fc1.bias",
                       "se3.fc2.weight", "se3.fc2.bias", "classifier.weight", "classifier.bias"}));
  // The SE blocks add 2 C^2 / r + C / r + C weights per stage and nothing else.
  int64_t extra = 0;
  for (int64_t c : {16, 32, 64}) extra += 2 * c * c / 4 + c / 4 + c;
  EXPECT_EQ(se.NumParameters() - plain.NumParameters(), extra);
  const Tensor x = Tensor::Randn({3, 1, 28, 28}, gen);
  const SenetModel::Output out = se.Forward(x);
  EXPECT_EQ(out.logits.shape(), Shape({3, 10}));
  ASSERT_EQ(out.gates.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(out.gates[k].shape(), Shape({3, config.channels[k]}));
    for (float g : out.gates[k].ToVector<float>()) {
      EXPECT_GT(g, 0.0f);
      EXPECT_LT(g, 1.0f);
    }
  }
  EXPECT_TRUE(plain.Forward(x).gates.empty());
}

// With its gates held open (fc2's weights 0, bias 40: sigmoid = 1 in float), the SE CNN computes
// exactly the plain CNN with the same convolutions and classifier: the blocks add nothing else.
TEST(SenetModel, OpenGatesGiveThePlainCnn) {
  SenetConfig config;
  config.channels = {5, 6, 7};
  config.reduction = 2;
  Generator gen(3);
  SenetModel se(config, gen);
  config.channel_attention = false;
  SenetModel plain(config, gen);
  {
    NoGradGuard no_grad;
    nn::NamedTensors se_params = se.NamedParameters();
    for (auto& [name, p] : plain.NamedParameters())
      for (auto& [se_name, q] : se_params)
        if (se_name == name) p.CopyFrom(q);
    for (const auto& block : se.se) {
      block->fc2->weight.CopyFrom(Tensor::Zeros(block->fc2->weight.shape()));
      block->fc2->bias.CopyFrom(Tensor::Full(block->fc2->bias.shape(), 40.0));
    }
  }
  const Tensor x = Tensor::Randn({4, 1, 28, 28}, gen);
  EXPECT_EQ(se.Forward(x).logits.ToVector<float>(), plain.Forward(x).logits.ToVector<float>());
  // Closing one channel of the last block (bias -40: gate 0) changes the logits.
  {
    NoGradGuard no_grad;
    se.se[2]->fc2->bias.CopyFrom(
        Tensor::FromVector(std::vector<float>{-40, 40, 40, 40, 40, 40, 40}, {7}));
  }
  EXPECT_NE(se.Forward(x).logits.ToVector<float>(), plain.Forward(x).logits.ToVector<float>());
}

TEST(SenetModel, RefusesBadConfigurationsAndInputs) {
  Generator gen(4);
  SenetConfig c;
  c.channels = {};
  EXPECT_THAT(ThrownMessage([&] { SenetModel m(c, gen); }), HasSubstr("1 to 5 widths"));
  c.channels = {8, 0};
  EXPECT_THAT(ThrownMessage([&] { SenetModel m(c, gen); }), HasSubstr("got 0"));
  c.channels = {8, 4};
  c.reduction = 8;
  EXPECT_THAT(
      ThrownMessage([&] { SenetModel m(c, gen); }),
      HasSubstr("--reduction 8 leaves no hidden unit in the SE block of a 4-channel stage"));
  c.channel_attention = false;  // without SE the reduction does not matter
  SenetModel plain(c, gen);
  EXPECT_THAT(ThrownMessage([&] {
                plain.Forward(Tensor::Zeros({2, 3, 28, 28}));
              }),
              HasSubstr("input must be [B, 1, H, W]"));
  EXPECT_THAT(ThrownMessage([&] {
                plain.Forward(Tensor::Zeros({2, 1, 1, 28}));
              }),
              HasSubstr("H, W >= 2"));
}

// ---------------------------------------------------------------------------------------------
// Evaluation and pictures.
// ---------------------------------------------------------------------------------------------

TEST(SenetEvaluation, CountsAccuracyAndAveragesGatesPerClass) {
  const SenetSplit split = SyntheticSplit(37, 5);
  SenetConfig config;
  config.channels = {4, 6};
  config.reduction = 2;
  Generator gen(6);
  SenetModel model(config, gen);
  const SenetEvaluation e = EvaluateSenet(model, split, 10);  // four batches, the last short
  EXPECT_TRUE(model.training()) << "the model's mode is restored";
  // The same figures by hand, in one batch.
  std::vector<int64_t> all;
  for (int64_t i = 0; i < 37; ++i) all.push_back(i);
  model.Eval();
  NoGradGuard no_grad;
  const SenetModel::Output out = model.Forward(SenetImages(split, all));
  const std::vector<int64_t> pred = Argmax(out.logits, -1).ToVector<int64_t>();
  int64_t correct = 0;
  std::vector<int64_t> counts(10, 0);
  for (int64_t i = 0; i < 37; ++i) {
    correct += pred[i] == split.labels[i];
    ++counts[split.labels[i]];
  }
  EXPECT_EQ(e.images, 37);
  EXPECT_EQ(e.correct, correct);
  EXPECT_DOUBLE_EQ(e.accuracy, 100.0 * correct / 37.0);
  EXPECT_NEAR(e.loss, CrossEntropy(out.logits, SenetLabels(split, all)).item(), 1e-5);
  EXPECT_EQ(e.class_counts, counts);
  ASSERT_EQ(e.gate_means.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    const int64_t c = config.channels[k];
    ASSERT_EQ(e.gate_means[k].size(), static_cast<size_t>(10 * c));
    const std::vector<float> g = out.gates[k].ToVector<float>();
    for (int64_t y = 0; y < 10; ++y)
      for (int64_t j = 0; j < c; ++j) {
        double sum = 0.0;
        for (int64_t i = 0; i < 37; ++i)
          if (split.labels[i] == y) sum += g[i * c + j];
        const double want = counts[y] ? sum / counts[y] : 0.0;
        EXPECT_NEAR(e.gate_means[k][y * c + j], want, 1e-6) << k << " " << y << " " << j;
      }
  }
}

TEST(SenetEvaluation, PicturesHoldEveryBlockClassAndChannel) {
  const SenetSplit split = SyntheticSplit(30, 7);
  SenetConfig config;
  config.channels = {4, 6};
  config.reduction = 2;
  Generator gen(8);
  SenetModel model(config, gen);
  const SenetEvaluation e = EvaluateSenet(model, split);
  TempDir dir;
  WriteSenetPictures(dir.path().string(), e);
  const std::vector<std::string> lines = Lines(ReadFile(dir / "se-weights.tsv"));
  ASSERT_EQ(lines.size(), 1u + 10 * (4 + 6));
  EXPECT_EQ(lines[0], "block\tclass\tchannel\tmean_excitation");
  EXPECT_THAT(lines[1], ::testing::StartsWith("1\ttop\t0\t"));
  EXPECT_THAT(lines.back(), ::testing::StartsWith("2\tboot\t5\t"));
  const double v = std::stod(lines.back().substr(lines.back().rfind('\t') + 1));
  EXPECT_NEAR(v, e.gate_means[1][9 * 6 + 5], 1e-6);
  // Two panels stacked: taller than one 10-row heatmap, wide enough for six columns.
  const vision::Image png = vision::ReadImage(dir / "se-weights.png");
  EXPECT_GT(png.height, 2 * 10 * 14);
  EXPECT_GT(png.width, 6 * 14);
  // Nothing else is left in the directory (the panels' temporary files are gone).
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2);
  // A model without SE has nothing to draw.
  config.channel_attention = false;
  SenetModel plain(config, gen);
  EXPECT_THAT(
      ThrownMessage([&] { WriteSenetPictures(dir.path().string(), EvaluateSenet(plain, split)); }),
      HasSubstr("no SE blocks"));
}

// ---------------------------------------------------------------------------------------------
// Training and the program.
// ---------------------------------------------------------------------------------------------

TEST(SenetTask, LearnsOnATinySubset) {
  REQUIRE_FASHION_MNIST();
  SenetData data = LoadSenetData(vision::kFashionMnistDir, 512);
  data.dev = data.train;  // scoring the 5,000 dev images is not what this test is about
  data.dev.source = "train (as dev)";
  SenetConfig config;
  config.channels = {16, 32};
  SenetTask task(data, config, 1);
  EXPECT_EQ(
      task.ConfigJson(),
      R"({"channels": [16, 32], "reduction": 4, "channel_attention": "se", "train_images": 512})");
  TempDir dir;
  train::TaskTrainOptions o;
  o.out_dir = dir.path().string();
  o.batch_size = 32;
  o.lr = 5e-3;
  o.warmup = 10;
  // A CNN without normalisation whose head averages over the map starts slowly (its PyTorch
  // mirror too, with a constant rate: 1.09 after as many steps of an 8-16 CNN): 20 epochs of
  // the 512 images, a few seconds.
  o.max_steps = 320;
  o.valid_every = 320;
  o.log_every = 32;
  o.progress = false;
  o.threads = 1;
  const train::TaskTrainSummary s = train::TrainTask(task, o, false);
  ASSERT_EQ(s.curve.size(), 10u);
  EXPECT_GT(s.curve.front().second, 1.6);  // ~ln 10 at the start
  // Measured: 1.32 in the last window and 52.7 % of the 512 images right (chance: 10 %).
  EXPECT_LT(s.curve.back().second, 1.6);
  EXPECT_GT(s.best_score, 40.0);
  EXPECT_THAT(ReadFile(dir / "train.log"), HasSubstr("images/s"));
}

TEST(SenetCommand, TrainsEvaluatesAndDraws) {
  REQUIRE_FASHION_MNIST();
  for (const std::string attention : {"se", "none"}) {
    SCOPED_TRACE(attention);
    TempDir dir;
    const CommandResult r = RunCommand(
        TaskCommand("senet", "--out " + dir.path().string() +
                                 " --train-size 256 --max-steps 6 --batch-size 32 --valid-every 6 "
                                 "--channels 4,8 --reduction 2 --threads 1 --no-progress "
                                 "--channel-attention " +
                                 attention));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::vector<std::string> lines = Lines(r.output);
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(std::regex_match(lines.back(), std::regex("senet test accuracy [0-9]+\\.[0-9][0-9] "
                                                          "\\(channel-attention " +
                                                          attention + "\\)")))
        << lines.back();
    EXPECT_TRUE(fs::exists(dir / "best.ckpt"));
    EXPECT_EQ(fs::exists(dir / "se-weights.png"), attention == "se");
    if (attention == "se") {
      EXPECT_EQ(Lines(ReadFile(dir / "se-weights.tsv")).size(), 1u + 10 * (4 + 8));
    }
  }
}

TEST(SenetCommand, AMissingDatasetDirectoryIsAnError) {
  TempDir dir;
  const CommandResult r = RunCommand(
      TaskCommand("senet", "--out " + dir.path().string() +
                               " --fashion-mnist-dir /nonexistent/senet-fmnist --max-steps 1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("attend-senet: error:"));
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/senet-fmnist"));
}

}  // namespace
}  // namespace attend::tasks
