// The image classifiers (attend/classifier.h): shapes, parameter names, the box arithmetic between
// scales, finite-difference gradients of the whole RA-CNN loss in f64 (through the APN, the mask
// and the crop), and the config's JSON and errors.
#include <cmath>
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attend/attend.h"
#include "attend/classifier.h"
#include "support/gradcheck.h"

namespace attend::models {
namespace {

using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;

ClassifierConfig Tiny(const std::string& arch, int64_t scales) {
  ClassifierConfig c;
  c.arch = arch;
  c.image_size = 16;
  c.zoom_size = 8;
  c.base_channels = 2;
  c.apn_hidden = 4;
  c.classes = 5;
  c.scales = scales;
  c.mask_k = 2.0;  // soft edges: the mask's gradient reaches many pixels of a small image
  return c;
}

Tensor Labels(const std::vector<int64_t>& v) {
  return Tensor::FromVector(v, Shape{static_cast<int64_t>(v.size())});
}

TEST(Classifier, ShapesPerScale) {
  for (int64_t scales : {2, 3}) {
    ClassifierConfig c;
    c.image_size = 32;
    c.zoom_size = 16;
    c.base_channels = 4;
    c.scales = scales;
    Generator gen(1);
    ImageClassifier model(c, gen);
    Tensor x = RandomUniform(Shape{3, 1, 32, 32}, 2, 0.0, 1.0).To(DType::kF32);
    ClassifierOutput out = model.Forward(x);
    ASSERT_EQ(static_cast<int64_t>(out.logits.size()), scales);
    for (const Tensor& l : out.logits) EXPECT_EQ(l.shape(), (Shape{3, 10}));
    ASSERT_EQ(static_cast<int64_t>(out.boxes.size()), scales - 1);
    ASSERT_EQ(out.local_boxes.size(), out.boxes.size());
    ASSERT_EQ(out.crops.size(), out.boxes.size());
    for (size_t s = 0; s < out.boxes.size(); ++s) {
      EXPECT_EQ(out.boxes[s].shape(), (Shape{3, 3}));
      EXPECT_EQ(out.crops[s].shape(), (Shape{3, 1, 16, 16}));
      // The APN's bounds, in the previous scale's pixels.
      const double side = s == 0 ? 32 : 16;
      const std::vector<float> b = out.local_boxes[s].ToVector<float>();
      for (int i = 0; i < 3; ++i) {
        EXPECT_GT(b[3 * i], 0);
        EXPECT_LT(b[3 * i], side);
        EXPECT_GT(b[3 * i + 1], 0);
        EXPECT_LT(b[3 * i + 1], side);
        EXPECT_GE(b[3 * i + 2], 0.1 * side - 1e-4);
        EXPECT_LE(b[3 * i + 2], 0.5 * side + 1e-4);
      }
    }
    Tensor p = out.Probabilities();
    EXPECT_EQ(p.shape(), (Shape{3, 10}));
    for (float v : Sum(p, {1}).ToVector<float>()) EXPECT_NEAR(v, 1.0f, 1e-5f);
    EXPECT_FALSE(p.requires_grad());
    Tensor loss = model.Loss(out, Labels({1, 0, 9}));
    EXPECT_EQ(loss.numel(), 1);
    EXPECT_TRUE(std::isfinite(loss.item()));
  }
  ClassifierConfig c;
  c.arch = "cnn";
  Generator gen(1);
  ImageClassifier cnn(c, gen);
  ClassifierOutput out = cnn.Forward(Tensor::Zeros(Shape{2, 1, 96, 96}));
  EXPECT_EQ(out.logits.size(), 1u);
  EXPECT_TRUE(out.boxes.empty());
  EXPECT_TRUE(out.crops.empty());
}

TEST(Classifier, ParameterNamesAreStable) {
  Generator gen(1);
  ImageClassifier model(Tiny("racnn", 3), gen);
  std::vector<std::string> names;
  for (const auto& [name, t] : model.NamedParameters()) names.push_back(name);
  std::vector<std::string> want;
  for (int s = 1; s <= 3; ++s) {
    const std::string p = "scale" + std::to_string(s) + ".";
    for (const char* m : {"conv1", "conv2", "conv3", "conv4", "head"}) {
      want.push_back(p + m + ".weight");
      want.push_back(p + m + ".bias");
    }
    if (s < 3) {
      const std::string a = "apn" + std::to_string(s) + ".";
      for (const char* m : {"fc1", "fc2"}) {
        want.push_back(a + m + ".weight");
        want.push_back(a + m + ".bias");
      }
    }
  }
  EXPECT_EQ(names, want);
  Generator gen2(1);
  ImageClassifier cnn(Tiny("cnn", 3), gen2);
  EXPECT_EQ(cnn.NamedParameters().size(), 10u);  // scale1 only
}

// Scale 3's box in the image's pixels is its proposal mapped through scale 2's crop.
TEST(Classifier, BoxesComposeAcrossScales) {
  Generator gen(4);
  ImageClassifier model(Tiny("racnn", 3), gen, DType::kF64);
  ClassifierOutput out = model.Forward(RandomUniform(Shape{2, 1, 16, 16}, 5, 0.0, 1.0));
  const std::vector<double> b2 = out.boxes[0].ToVector<double>();
  const std::vector<double> l3 = out.local_boxes[1].ToVector<double>();
  const std::vector<double> b3 = out.boxes[1].ToVector<double>();
  EXPECT_EQ(out.local_boxes[0].ToVector<double>(), b2);
  for (int i = 0; i < 2; ++i) {
    const double unit = 2 * b2[3 * i + 2] / 8;  // image pixels per crop pixel
    EXPECT_NEAR(b3[3 * i], b2[3 * i] - b2[3 * i + 2] + l3[3 * i] * unit, 1e-12);
    EXPECT_NEAR(b3[3 * i + 1], b2[3 * i + 1] - b2[3 * i + 2] + l3[3 * i + 1] * unit, 1e-12);
    EXPECT_NEAR(b3[3 * i + 2], l3[3 * i + 2] * unit, 1e-12);
  }
}

// The loss's value from its definition: CE per scale plus the hinge on p_t.
TEST(Classifier, LossIsCrossEntropyPlusRanking) {
  Generator gen(6);
  ClassifierConfig c = Tiny("racnn", 3);
  c.ranking_margin = 0.3;  // large enough that the hinges are active
  ImageClassifier model(c, gen, DType::kF64);
  ClassifierOutput out = model.Forward(RandomUniform(Shape{4, 1, 16, 16}, 7, 0.0, 1.0));
  Tensor labels = Labels({0, 3, 4, 1});
  ClassifierLossTerms terms;
  const double loss = model.Loss(out, labels, &terms).item();
  double want = 0, rank = 0;
  std::vector<std::vector<double>> p;
  for (const Tensor& l : out.logits) {
    want += CrossEntropy(l, labels).item();
    p.push_back(Softmax(l, 1).ToVector<double>());
  }
  const std::vector<int64_t> y = {0, 3, 4, 1};
  for (size_t s = 0; s + 1 < p.size(); ++s) {
    double sum = 0;
    for (int i = 0; i < 4; ++i)
      sum += std::max(0.0, p[s][i * 5 + y[i]] - p[s + 1][i * 5 + y[i]] + 0.3);
    rank += sum / 4;
  }
  EXPECT_NEAR(loss, want + rank, 1e-12);
  EXPECT_NEAR(terms.ranking, rank, 1e-12);
  ASSERT_EQ(terms.cross_entropy.size(), 3u);
  EXPECT_GT(rank, 0.0);
}

// ---- finite differences of the whole loss (f64) ----

// Checks d loss / d parameter for every element of the named parameters (or `max_per` of them,
// evenly spread) against central differences. eps and tolerances as tests/support/gradcheck.h.
// With hold_coarser (the training loss) the analytic gradient leaves out the ranking term's path
// into the coarser scale, so only parameters that do not reach it can be compared.
::testing::AssertionResult CheckModelGradients(ImageClassifier& model, const Tensor& images,
                                               const Tensor& labels,
                                               const std::vector<std::string>& prefixes,
                                               int64_t max_per = 0, bool hold_coarser = true) {
  const double eps = 1e-6, atol = 1e-7, rtol = 1e-5;
  model.ZeroGrad();
  Tensor loss = model.Loss(model.Forward(images), labels, nullptr, hold_coarser);
  loss.Backward();
  auto value = [&] {
    NoGradGuard no_grad;
    return model.Loss(model.Forward(images), labels, nullptr, hold_coarser).item();
  };
  int64_t checked = 0;
  double largest = 0;
  for (auto& [name, p] : model.NamedParameters()) {
    bool wanted = false;
    for (const std::string& pre : prefixes) wanted |= name.rfind(pre, 0) == 0;
    if (!wanted) continue;
    Tensor g = p.grad();
    if (!g.defined()) return ::testing::AssertionFailure() << name << " has no gradient";
    const std::vector<double> analytic = g.ToVector<double>();
    double* data = p.data<double>();
    const int64_t n = p.numel();
    const int64_t step = max_per > 0 && n > max_per ? n / max_per : 1;
    for (int64_t i = 0; i < n; i += step) {
      const double keep = data[i];
      data[i] = keep + eps;
      const double up = value();
      data[i] = keep - eps;
      const double down = value();
      data[i] = keep;
      const double numeric = (up - down) / (2 * eps);
      ++checked;
      largest = std::max(largest, std::fabs(numeric));
      if (std::fabs(analytic[i] - numeric) > atol + rtol * std::fabs(numeric)) {
        return ::testing::AssertionFailure() << name << " element " << i << ": analytic "
                                             << analytic[i] << ", numeric " << numeric;
      }
    }
  }
  if (checked == 0) return ::testing::AssertionFailure() << "no parameter matched";
  if (largest < 1e-6) return ::testing::AssertionFailure() << "every gradient is ~0";
  return ::testing::AssertionSuccess() << checked << " elements";
}

TEST(ClassifierGradCheck, RacnnLossThroughTheAttentionProposal) {
  Generator gen(21);
  ImageClassifier model(Tiny("racnn", 2), gen, DType::kF64);
  Tensor images = RandomUniform(Shape{2, 1, 16, 16}, 22, 0.0, 1.0);
  // The APN and scale 2 come after p_t(1): the training loss's gradient is the plain one there.
  EXPECT_TRUE(CheckModelGradients(model, images, Labels({3, 1}), {"apn1."}));
  EXPECT_TRUE(CheckModelGradients(model, images, Labels({3, 1}), {"scale2."}, 6));
  // Everything, scale 1 included, with the ranking term's gradient reaching p_t(1) as well.
  EXPECT_TRUE(CheckModelGradients(model, images, Labels({3, 1}), {"scale1.", "scale2.", "apn1."}, 6,
                                  /*hold_coarser=*/false));
}

TEST(ClassifierGradCheck, ThreeScales) {
  Generator gen(31);
  ClassifierConfig c = Tiny("racnn", 3);
  c.ranking_margin = 0.3;  // both hinges active
  ImageClassifier model(c, gen, DType::kF64);
  Tensor images = RandomUniform(Shape{2, 1, 16, 16}, 32, 0.0, 1.0);
  // apn2 and scale 3 come after p_t(2): plain gradients under the training loss.
  EXPECT_TRUE(CheckModelGradients(model, images, Labels({0, 4}), {"apn2.", "scale3."}, 8));
  EXPECT_TRUE(CheckModelGradients(model, images, Labels({0, 4}), {"scale1.", "apn1.", "scale2."}, 6,
                                  /*hold_coarser=*/false));
}

TEST(ClassifierGradCheck, CnnBaseline) {
  Generator gen(41);
  ImageClassifier model(Tiny("cnn", 2), gen, DType::kF64);
  EXPECT_TRUE(CheckModelGradients(model, RandomUniform(Shape{3, 1, 16, 16}, 42, 0.0, 1.0),
                                  Labels({0, 1, 2}), {"scale1."}, 8));
}

// ---- config ----

TEST(ClassifierConfig, JsonRoundTrip) {
  ClassifierConfig c;
  c.arch = "cnn";
  c.image_size = 64;
  c.channels = 3;
  c.classes = 7;
  c.base_channels = 12;
  c.scales = 3;
  c.zoom_size = 32;
  c.mask_k = 7.5;
  c.ranking_margin = 0.125;
  c.apn_hidden = 33;
  c.box_min = 0.15;
  c.box_max = 0.45;
  const ClassifierConfig d = ClassifierConfig::FromJson(c.ToJson());
  EXPECT_EQ(d.ToJson(), c.ToJson());
  EXPECT_EQ(d.arch, "cnn");
  EXPECT_EQ(d.zoom_size, 32);
  EXPECT_EQ(d.mask_k, 7.5);
  // Missing keys keep their defaults.
  EXPECT_EQ(ClassifierConfig::FromJson("{}").ToJson(), ClassifierConfig().ToJson());
}

TEST(ClassifierConfig, ErrorsNameTheKey) {
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson("[1]"); }),
              HasSubstr("classifier config: not a JSON object"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson("{"); }),
              HasSubstr("classifier config"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"arch": "vgg"})"); }),
              HasSubstr("arch 'vgg' is not one of cnn | racnn"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"arch": 3})"); }),
              HasSubstr("key 'arch' must be a string"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"scales": 2.5})"); }),
              HasSubstr("key 'scales' must be an integer"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"mask_k": "x"})"); }),
              HasSubstr("key 'mask_k' must be a number"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"scales": 4})"); }),
              HasSubstr("scales 4 must be 2 or 3"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"image_size": 90})"); }),
              HasSubstr("image_size 90 must be a multiple of 8"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"zoom_size": 0})"); }),
              HasSubstr("zoom_size 0"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"channels": 2})"); }),
              HasSubstr("channels 2 must be 1 or 3"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"classes": 1})"); }),
              HasSubstr("classes 1 is not in 2..100000"));
  EXPECT_THAT(
      ThrownMessage([] { ClassifierConfig::FromJson(R"({"box_min": 0.6, "box_max": 0.5})"); }),
      HasSubstr("0 < box_min < box_max <= 1"));
  EXPECT_THAT(ThrownMessage([] { ClassifierConfig::FromJson(R"({"mask_k": -1})"); }),
              HasSubstr("mask_k -1"));
  EXPECT_THAT(
      ThrownMessage([] { ClassifierConfig::FromJson(R"({"apn_hidden": 18446744073709551615})"); }),
      HasSubstr("out of range"));
}

TEST(Classifier, BadInputsNameTheProblem) {
  Generator gen(1);
  ImageClassifier model(Tiny("racnn", 2), gen);
  EXPECT_THAT(ThrownMessage([&] {
                model.Forward(Tensor::Zeros(Shape{2, 1, 32, 32}));
              }),
              HasSubstr("images must be [B, 1, 16, 16], got f32[2, 1, 32, 32]"));
  EXPECT_THAT(ThrownMessage([&] {
                model.Forward(Tensor::Zeros(Shape{2, 1, 16, 16}, DType::kF64));
              }),
              HasSubstr("the model is f32"));
  ClassifierOutput out = model.Forward(Tensor::Zeros(Shape{2, 1, 16, 16}));
  EXPECT_THAT(ThrownMessage([&] {
                model.Loss(out, Labels({1, 2, 3}));
              }),
              HasSubstr("labels must be i64 [2]"));
  EXPECT_THAT(ThrownMessage([&] {
                model.Loss(out, Labels({1, 5}));
              }),
              HasSubstr("label 5 is not in 0..4"));
}

}  // namespace
}  // namespace attend::models
