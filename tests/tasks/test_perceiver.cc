// Tests of the Perceiver task (src/tasks/perceiver.cc): the model against its PyTorch mirror
// (logits, cross-attention weights, loss and every parameter's gradient;
// tests/reference/perceiver_reference.py), f64 finite differences, the Fourier features and the
// model's properties, the Fashion-MNIST splits, a tiny training that learns, and the program.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/perceiver.h"
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
using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::TaskCommand;
using attend::testing::TempDir;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

PerceiverConfig Tiny() {
  PerceiverConfig c;
  c.image_size = 6;
  c.classes = 3;
  c.latents = 3;
  c.dim = 8;
  c.self_heads = 2;
  c.self_layers = 1;
  c.repeats = 2;
  c.bands = 2;
  c.mlp_ratio = 2;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Against PyTorch.
// ---------------------------------------------------------------------------------------------

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  PerceiverConfig cfg;
  cfg.image_size = k.Int("image_size");
  cfg.classes = k.Int("classes");
  cfg.latents = k.Int("latents");
  cfg.dim = k.Int("dim");
  cfg.cross_heads = k.Int("cross_heads");
  cfg.self_heads = k.Int("self_heads");
  cfg.self_layers = k.Int("self_layers");
  cfg.repeats = k.Int("repeats");
  cfg.bands = k.Int("bands");
  cfg.max_freq = k.Double("max_freq");
  cfg.mlp_ratio = k.Int("mlp_ratio");
  Generator gen(1);
  Perceiver model(cfg, gen);
  LoadTorchWeights(c, model);
  if (::testing::Test::HasFatalFailure()) return;
  Tensor images = ToTensor(Ref(c, "images"));
  Tensor labels = ToTensor(Ref(c, "labels"));
  Tensor weights;
  Tensor logits = model.Logits(images, &weights);
  Tensor loss = CrossEntropy(logits, labels);
  loss.Backward();
  // Tolerances (reference_compare.h: |got - want| <= atol * n + rtol * |want|). The positions
  // are single sin/cos values (n = 1); every logit and weight ends a chain whose longest sum is
  // the cross-attention's over the M pixels; the gradients gather B * M terms.
  const double m = static_cast<double>(cfg.image_size * cfg.image_size);
  const double b = static_cast<double>(images.size(0));
  ExpectMatches(c, "positions", model.positions, Ref(c, "positions"), 1.0);
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), m);
  ExpectMatches(c, "cross_weights", weights, Ref(c, "cross_weights"), m);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), 1.0);
  for (auto& [name, p] : model.NamedParameters())
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), b * m);
}

TEST(PerceiverTorchReference, LogitsWeightsLossAndGradientsMatch) {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "perceiver_reference.bin", "tests/reference/perceiver_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<int64_t> repeats;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    repeats.insert(OpKey(c.op).Int("repeats"));
  }
  EXPECT_EQ(repeats, (std::set<int64_t>{1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------
// f64 finite differences.
// ---------------------------------------------------------------------------------------------

TEST(PerceiverGradients, InputGradientMatchesFiniteDifferences) {
  PerceiverConfig cfg = Tiny();
  Generator gen(5);
  Perceiver model(cfg, gen, DType::kF64);
  Tensor images = gradcheck::RandomUniform({2, 6, 6}, 11, 0.0, 1.0);
  EXPECT_TRUE(gradcheck::GradCheck(
      [&](const std::vector<Tensor>& in) { return model.Logits(in[0]); }, {images}));
}

// Every parameter's gradient against central differences of the loss, for up to 12 elements
// of each (the first, the last and some between).
TEST(PerceiverGradients, ParameterGradientsMatchFiniteDifferences) {
  for (const char* kind : {"perceiver", "cnn"}) {
    SCOPED_TRACE(kind);
    PerceiverConfig cfg = Tiny();
    cfg.model = kind;
    cfg.image_size = 8;
    cfg.cnn_channels = 2;
    Generator gen(9);
    std::shared_ptr<ImageModel> model = MakePerceiverTaskModel(cfg, gen, DType::kF64);
    Tensor images = gradcheck::RandomUniform({2, 8, 8}, 13, 0.0, 1.0);
    Tensor labels = gradcheck::Indices({2, 0}, {2});
    auto loss = [&] { return CrossEntropy(model->Logits(images), labels); };
    model->ZeroGrad();
    loss().Backward();
    const double eps = 1e-6;
    for (auto& [name, p] : model->NamedParameters()) {
      const Tensor g = p.grad();
      ASSERT_TRUE(g.defined()) << name;
      const std::vector<double> gv = g.ToVector<double>();
      double* data = p.data<double>();
      const int64_t n = p.numel(), stride = std::max<int64_t>(1, n / 10);
      std::vector<int64_t> at;
      for (int64_t i = 0; i < n; i += stride) at.push_back(i);
      at.push_back(n - 1);
      for (int64_t i : at) {
        const double keep = data[i];
        double plus, minus;
        {
          NoGradGuard no_grad;
          data[i] = keep + eps;
          plus = loss().item();
          data[i] = keep - eps;
          minus = loss().item();
          data[i] = keep;
        }
        const double numeric = (plus - minus) / (2 * eps);
        EXPECT_NEAR(gv[i], numeric, 1e-7 + 1e-5 * std::abs(numeric)) << name << "[" << i << "]";
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

TEST(PerceiverFourier, FeaturesFollowThePaper) {
  const int64_t s = 5, k = 3;
  const double mu = 6.0;
  const std::vector<double> f =
      FourierPositionFeatures(s, s, k, mu, DType::kF64).ToVector<double>();
  const int64_t width = 2 * (2 * k + 1);
  ASSERT_EQ(f.size(), static_cast<size_t>(s * s * width));
  const double freq[3] = {1.0, 2.0, 3.0};  // 1 .. mu / 2, equally spaced
  for (int64_t y = 0; y < s; ++y)
    for (int64_t x = 0; x < s; ++x) {
      const double* row = f.data() + (y * s + x) * width;
      const double p[2] = {-1.0 + 0.5 * y, -1.0 + 0.5 * x};
      for (int a = 0; a < 2; ++a) {
        const double* r = row + a * (2 * k + 1);
        EXPECT_DOUBLE_EQ(r[0], p[a]);
        for (int64_t b = 0; b < k; ++b) {
          EXPECT_NEAR(r[1 + b], std::sin(freq[b] * M_PI * p[a]), 1e-15);
          EXPECT_NEAR(r[1 + b] * r[1 + b] + r[1 + k + b] * r[1 + k + b], 1.0, 1e-15);
        }
      }
    }
  EXPECT_THAT(ThrownMessage([] { FourierPositionFeatures(4, 4, 0, 4.0); }), HasSubstr("bands"));
}

TEST(PerceiverModel, InputArrayIsTheProjectionOfPixelAndPositions) {
  PerceiverConfig cfg = Tiny();
  Generator gen(3);
  Perceiver model(cfg, gen, DType::kF64);
  Tensor images = gradcheck::RandomUniform({2, 6, 6}, 4, 0.0, 1.0);
  // The same array built the plain way: [pixel, positions] through the linear layer.
  Tensor pix = images.Reshape({2, 36, 1});
  Tensor pos = model.positions.Unsqueeze(0).Expand({2, 36, model.positions.size(1)});
  Tensor want = model.input_proj->Forward(Concat({pix, pos.Contiguous()}, 2));
  const std::vector<double> a = model.InputArray(images).ToVector<double>(),
                            b = want.ToVector<double>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << i;
}

TEST(PerceiverModel, WeightsAreDistributionsAndImagesDoNotMix) {
  PerceiverConfig cfg = Tiny();
  Generator gen(3);
  Perceiver model(cfg, gen);
  model.Eval();
  Tensor images = gradcheck::RandomUniform({3, 6, 6}, 8, 0.0, 1.0).To(DType::kF32);
  NoGradGuard no_grad;
  Tensor w;
  const std::vector<float> all = model.Logits(images, &w).ToVector<float>();
  ASSERT_EQ(w.shape(), Shape({3, cfg.latents, 36}));
  const std::vector<float> wv = w.ToVector<float>();
  for (int64_t row = 0; row < 3 * cfg.latents; ++row) {
    double sum = 0;
    for (int64_t p = 0; p < 36; ++p) {
      EXPECT_GE(wv[row * 36 + p], 0.0f);
      sum += wv[row * 36 + p];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << row;
  }
  // Image 1 alone gives the logits it had in the batch.
  const std::vector<float> one =
      model.Logits(images.Narrow(0, 1, 1).Contiguous()).ToVector<float>();
  for (int64_t c = 0; c < cfg.classes; ++c) EXPECT_NEAR(one[c], all[cfg.classes + c], 1e-5);
}

TEST(PerceiverModel, RepeatsShareWeightsAfterTheFirst) {
  PerceiverConfig cfg = Tiny();
  Generator g1(1), g2(1), g3(1);
  cfg.repeats = 1;
  Perceiver one(cfg, g1);
  cfg.repeats = 2;
  Perceiver two(cfg, g2);
  cfg.repeats = 5;
  Perceiver five(cfg, g3);
  EXPECT_LT(one.NumParameters(), two.NumParameters());
  EXPECT_EQ(two.NumParameters(), five.NumParameters());
  std::set<std::string> roots;
  for (auto& [name, p] : five.NamedParameters()) roots.insert(name.substr(0, name.find('.')));
  EXPECT_EQ(roots, (std::set<std::string>{"latents", "input_proj", "cross0", "cross1", "self0",
                                          "norm_out", "head"}));
  // The extra passes change the result.
  Tensor images = gradcheck::RandomUniform({1, 6, 6}, 2, 0.0, 1.0).To(DType::kF32);
  NoGradGuard no_grad;
  EXPECT_NE(two.Logits(images).ToVector<float>(), five.Logits(images).ToVector<float>());
}

TEST(PerceiverModel, CnnReadsAnySideAndConfigErrorsNameTheOption) {
  PerceiverConfig cfg;
  cfg.model = "cnn";
  for (int64_t side : {28, 56, 14}) {
    cfg.image_size = side;
    Generator gen(2);
    auto m = MakePerceiverTaskModel(cfg, gen);
    NoGradGuard no_grad;
    EXPECT_EQ(m->Logits(Tensor::Zeros({2, side, side})).shape(), Shape({2, 10}));
  }
  cfg.model = "rnn";
  EXPECT_THAT(ThrownMessage([&] { cfg.Validate(); }), HasSubstr("model 'rnn'"));
  cfg = PerceiverConfig();
  cfg.self_heads = 3;
  EXPECT_THAT(ThrownMessage([&] { cfg.Validate(); }), HasSubstr("self_heads 3 must divide dim"));
  cfg = PerceiverConfig();
  Generator gen(1);
  Perceiver p(cfg, gen);
  EXPECT_THAT(ThrownMessage([&] {
                p.Logits(Tensor::Zeros({1, 14, 14}));
              }),
              HasSubstr("images must be [B, 28, 28]"));
}

// ---------------------------------------------------------------------------------------------
// Data.
// ---------------------------------------------------------------------------------------------

TEST(PerceiverData, SplitsAreDeterministicDisjointAndSized) {
  PerceiverDataOptions o;
  o.train_size = 300;
  o.dev_size = 50;
  o.test_size = 40;
  o.seed = 4;
  const PerceiverData a = LoadPerceiverData(o), b = LoadPerceiverData(o);
  EXPECT_EQ(a.train.size(), 300);
  EXPECT_EQ(a.dev.size(), 50);
  EXPECT_EQ(a.test.size(), 40);
  EXPECT_EQ(a.train.file_index, b.train.file_index);
  EXPECT_EQ(a.train.pixels, b.train.pixels);
  EXPECT_EQ(a.dev.file_index, b.dev.file_index);
  EXPECT_EQ(a.test.labels, b.test.labels);
  o.seed = 5;
  const PerceiverData c = LoadPerceiverData(o);
  EXPECT_NE(a.train.file_index, c.train.file_index);
  // Train holds the first 55,000 of the train file, dev its last 5,000.
  for (int64_t i : a.train.file_index) EXPECT_LT(i, 55000);
  for (int64_t i : a.dev.file_index) EXPECT_GE(i, 55000);
  std::set<int64_t> seen(a.train.file_index.begin(), a.train.file_index.end());
  EXPECT_EQ(seen.size(), 300u);
  std::set<int64_t> labels(a.train.labels.begin(), a.train.labels.end());
  EXPECT_EQ(labels.size(), 10u);
  // Resized batches keep the values in [0, 1] and the image's mean brightness.
  const std::vector<int64_t> rows = {0, 7};
  const std::vector<float> small = ImagesOf(a.test, rows, 28).ToVector<float>();
  const std::vector<float> big = ImagesOf(a.test, rows, 56).ToVector<float>();
  double ms = 0, mb = 0;
  for (float v : small) ms += v;
  for (float v : big) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
    mb += v;
  }
  EXPECT_NEAR(mb / big.size(), ms / small.size(), 0.01);
}

TEST(PerceiverData, ErrorsNameTheOptionOrTheFile) {
  PerceiverDataOptions o;
  o.train_size = 60000;
  EXPECT_THAT(ThrownMessage([&] { LoadPerceiverData(o); }),
              HasSubstr("train_size 60000 is not in 0..55000"));
  o = PerceiverDataOptions();
  o.test_size = -1;
  EXPECT_THAT(ThrownMessage([&] { LoadPerceiverData(o); }), HasSubstr("test_size -1"));
  TempDir dir;
  o = PerceiverDataOptions();
  o.dir = dir / "nowhere";
  EXPECT_THAT(ThrownMessage([&] { LoadPerceiverData(o); }), HasSubstr("nowhere"));
}

// ---------------------------------------------------------------------------------------------
// Training and the program.
// ---------------------------------------------------------------------------------------------

std::shared_ptr<const PerceiverData> SmallData() {
  static const auto data = [] {
    PerceiverDataOptions o;
    o.train_size = 512;
    o.dev_size = 100;
    o.test_size = 100;
    return std::make_shared<const PerceiverData>(LoadPerceiverData(o));
  }();
  return data;
}

TEST(PerceiverTraining, LossFallsOnATinyRun) {
  TempDir dir;
  PerceiverConfig cfg;
  cfg.image_size = 14;
  cfg.latents = 8;
  cfg.dim = 32;
  cfg.self_layers = 1;
  cfg.bands = 4;
  PerceiverTask task(cfg, SmallData(), 1);
  train::TaskTrainOptions o;
  o.out_dir = dir.path().string();
  o.batch_size = 32;
  o.lr = 3e-3;
  o.warmup = 10;
  o.max_steps = 160;
  o.valid_every = 160;
  o.log_every = 20;
  o.progress = false;
  const train::TaskTrainSummary s = train::TrainTask(task, o, false);
  ASSERT_EQ(s.curve.size(), 8u);
  // From ln 10 = 2.30 at the start: the last twenty steps' mean loss is under 1.3 and the dev
  // accuracy (100 images, 10 classes) is far above chance. (Observed: 2.29 -> 1.02, dev 53%.)
  EXPECT_GT(s.curve.front().second, 2.0);
  EXPECT_LT(s.curve.back().second, 1.3);
  EXPECT_GT(s.best_score, 40.0);
}

TEST(PerceiverProgram, TrainsPrintsItsLineAndDrawsTheAttention) {
  TempDir dir;
  const auto r = RunCommand(TaskCommand(
      "perceiver", "--out " + (dir / "run") +
                       " --train-size 64 --dev-size 32 --test-size 40 --max-steps 4"
                       " --valid-every 4 --batch-size 16 --latents 4 --dim 8 --self-heads 2"
                       " --self-layers 1 --bands 2 --image-size 14 --pictures 2"
                       " --latents-shown 3 --threads 1 --no-progress"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> lines = attend::testing::Lines(r.output);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), MatchesRegex("perceiver test accuracy [0-9]+\\.[0-9][0-9] \\(model "
                                         "perceiver\\) .*40 test images.*"));
  const std::string png = ReadFile(dir / "run/perceiver-attention.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  // The picture: 2 rows of 4 cells of 14 * 3 pixels with 4-pixel gaps.
  const vision::Image img = vision::ReadImage(dir / "run/perceiver-attention.png");
  EXPECT_EQ(img.width, 4 + 4 * (42 + 4));
  EXPECT_EQ(img.height, 4 + 2 * (42 + 4));
}

TEST(PerceiverProgram, MeasuresCostAndRefusesBadInput) {
  const auto cost = RunCommand(TaskCommand(
      "perceiver", "--cost --cost-sides 4 8 --cost-reps 1 --latents 4 --dim 8 --threads 1"));
  ASSERT_EQ(cost.exit_code, 0) << cost.output;
  EXPECT_THAT(cost.output, HasSubstr("perceiver cost"));
  EXPECT_THAT(cost.output, ::testing::ContainsRegex("\n +8 +64 \\|"));
  const auto bad = RunCommand(TaskCommand("perceiver", "--model rnn --max-steps 1"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("attend-perceiver: error: perceiver config: model 'rnn' is "
                                    "not one of perceiver | cnn"));
}

}  // namespace
}  // namespace attend::tasks
