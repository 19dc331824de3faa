// The image classifiers of attend/classifier.h: the CNN of every scale, RA-CNN's attention
// proposal network, the zoom between scales, the loss, and the config as JSON.
#include <cmath>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "attend/autograd.h"
#include "attend/classifier.h"
#include "attend/error.h"
#include "attend/ops.h"
#include "attend/ops/conv.h"
#include "attend/ops/image.h"
#include "io/untrusted_json.h"

namespace attend::models {

namespace {
// The APN reads the last feature map averaged to this many cells a side.
constexpr int64_t kApnGrid = 6;
}  // namespace

// ---- config ----

std::string ClassifierConfig::ToJson() const {
  nlohmann::json j;
  ForEachOption(*this, [&](const OptionInfo& o, const auto& value) { j[o.name] = value; });
  return j.dump();
}

ClassifierConfig ClassifierConfig::FromJson(const std::string& text) {
  // Checkpoints carry this text: nesting is bounded and quoted values are cut short.
  const nlohmann::json j = io::ParseUntrustedJson(text, "classifier config");
  ATTEND_CHECK(j.is_object(), "classifier config: not a JSON object");
  ClassifierConfig c;
  ForEachOption(c, [&](const OptionInfo& o, auto& value) {
    const char* name = o.name;
    auto it = j.find(name);
    if (it == j.end()) return;  // older configs: the default
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, int64_t>) {
      // A float would be cast (undefined past int64's range), 2.5 read as 2: refused instead.
      ATTEND_CHECK(it->is_number_integer(), "classifier config: key '", name,
                   "' must be an integer, not ", io::JsonExcerpt(*it));
      ATTEND_CHECK(!it->is_number_unsigned() || it->template get<uint64_t>() <= INT64_MAX,
                   "classifier config: key '", name, "' is out of range: ", io::JsonExcerpt(*it));
    } else if constexpr (std::is_same_v<T, double>) {
      ATTEND_CHECK(it->is_number(), "classifier config: key '", name, "' must be a number, not ",
                   io::JsonExcerpt(*it));
    } else {
      ATTEND_CHECK(it->is_string(), "classifier config: key '", name, "' must be a string, not ",
                   io::JsonExcerpt(*it));
    }
    it->get_to(value);
  });
  c.Validate();
  return c;
}

void ClassifierConfig::Validate() const {
  const char* w = "classifier config: ";
  ATTEND_CHECK(arch == "cnn" || arch == "racnn", w, "arch '", io::Excerpt(arch),
               "' is not one of cnn | racnn");
  ATTEND_CHECK(image_size >= 8 && image_size <= 1024 && image_size % 8 == 0, w, "image_size ",
               image_size, " must be a multiple of 8 in 8..1024");
  ATTEND_CHECK(channels == 1 || channels == 3, w, "channels ", channels, " must be 1 or 3");
  ATTEND_CHECK(classes >= 2 && classes <= 100000, w, "classes ", classes, " is not in 2..100000");
  ATTEND_CHECK(base_channels >= 1 && base_channels <= 256, w, "base_channels ", base_channels,
               " is not in 1..256");
  ATTEND_CHECK(scales == 2 || scales == 3, w, "scales ", scales, " must be 2 or 3");
  ATTEND_CHECK(zoom_size >= 8 && zoom_size <= 1024 && zoom_size % 8 == 0, w, "zoom_size ",
               zoom_size, " must be a multiple of 8 in 8..1024");
  ATTEND_CHECK(std::isfinite(mask_k) && mask_k > 0 && mask_k <= 1000, w, "mask_k ", mask_k,
               " is not in (0, 1000]");
  ATTEND_CHECK(std::isfinite(ranking_margin) && ranking_margin >= 0 && ranking_margin <= 1, w,
               "ranking_margin ", ranking_margin, " is not in [0, 1]");
  ATTEND_CHECK(apn_hidden >= 1 && apn_hidden <= 4096, w, "apn_hidden ", apn_hidden,
               " is not in 1..4096");
  ATTEND_CHECK(std::isfinite(box_min) && std::isfinite(box_max) && box_min > 0 &&
                   box_min < box_max && box_max <= 1,
               w, "the half-side range [box_min, box_max] = [", box_min, ", ", box_max,
               "] must satisfy 0 < box_min < box_max <= 1");
}

// ---- the modules ----

// One scale's CNN and classifier.
struct ImageClassifier::Scale : nn::Module {
  Scale(const ClassifierConfig& c, Generator& gen, DType dtype) {
    const int64_t k = c.base_channels;
    const nn::Conv2dOptions same{.padding = 1};
    conv1 = RegisterModule("conv1",
                           std::make_shared<nn::Conv2dModule>(c.channels, k, 3, gen, same, dtype));
    conv2 =
        RegisterModule("conv2", std::make_shared<nn::Conv2dModule>(k, 2 * k, 3, gen, same, dtype));
    conv3 = RegisterModule("conv3",
                           std::make_shared<nn::Conv2dModule>(2 * k, 4 * k, 3, gen, same, dtype));
    conv4 = RegisterModule("conv4",
                           std::make_shared<nn::Conv2dModule>(4 * k, 4 * k, 3, gen, same, dtype));
    head = RegisterModule("head", std::make_shared<nn::Linear>(4 * k, c.classes, true, gen, dtype));
  }
  // x [B, C, side, side] -> the last feature map [B, 4k, side / 8, side / 8]; logits [B, classes].
  Tensor Forward(const Tensor& x, Tensor* logits) const {
    Tensor h = MaxPool2d(Relu(conv1->Forward(x)), 2);
    h = MaxPool2d(Relu(conv2->Forward(h)), 2);
    h = MaxPool2d(Relu(conv3->Forward(h)), 2);
    h = Relu(conv4->Forward(h));
    *logits = head->Forward(GlobalAvgPool(h));
    return h;
  }
  std::shared_ptr<nn::Conv2dModule> conv1, conv2, conv3, conv4;
  std::shared_ptr<nn::Linear> head;
};

// The attention proposal network: a feature map -> a box in its scale's input pixels.
struct ImageClassifier::Proposal : nn::Module {
  Proposal(const ClassifierConfig& c, Generator& gen, DType dtype)
      : box_min(c.box_min), box_max(c.box_max) {
    const int64_t in = 4 * c.base_channels * kApnGrid * kApnGrid;
    fc1 = RegisterModule("fc1", std::make_shared<nn::Linear>(in, c.apn_hidden, true, gen, dtype));
    fc2 = RegisterModule("fc2", std::make_shared<nn::Linear>(c.apn_hidden, 3, true, gen, dtype));
    // Small last weights: every first proposal sits near the centre at the middle size, and the
    // sigmoids start where their slope is largest.
    nn::init::Uniform(fc2->weight, -1e-2, 1e-2, gen);
    nn::init::Constant(fc2->bias, 0.0);
  }
  // features [B, D, g, g], side of the scale's input -> boxes [B, 3] (t_x, t_y, t_l).
  Tensor Forward(const Tensor& features, int64_t side) const {
    Tensor f = AdaptiveAvgPool2d(features, kApnGrid).Flatten(1);
    Tensor a = Sigmoid(fc2->Forward(Tanh(fc1->Forward(f))));  // [B, 3] in (0, 1)
    const double s = static_cast<double>(side);
    // (a_x, a_y, a_l) * (s, s, s (max - min)) + (0, 0, s min).
    const DType dt = features.dtype();
    Tensor scale =
        Tensor::FromVector(std::vector<double>{s, s, s * (box_max - box_min)}, Shape{3}).To(dt);
    Tensor shift = Tensor::FromVector(std::vector<double>{0.0, 0.0, s * box_min}, Shape{3}).To(dt);
    return Add(Mul(a, scale), shift);
  }
  double box_min, box_max;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

ImageClassifier::ImageClassifier(const ClassifierConfig& config, Generator& gen, DType dtype)
    : config_(config), dtype_(dtype) {
  config_.Validate();
  ATTEND_CHECK(IsFloating(dtype), "ImageClassifier: dtype must be f32 or f64");
  const int64_t n = config_.NumScales();
  for (int64_t s = 1; s <= n; ++s) {
    scales_.push_back(
        RegisterModule("scale" + std::to_string(s), std::make_shared<Scale>(config_, gen, dtype)));
    if (s < n) {
      apns_.push_back(RegisterModule("apn" + std::to_string(s),
                                     std::make_shared<Proposal>(config_, gen, dtype)));
    }
  }
}

ClassifierOutput ImageClassifier::Forward(const Tensor& images) {
  const ClassifierConfig& c = config_;
  ATTEND_CHECK(images.defined() && images.dim() == 4 && images.size(1) == c.channels &&
                   images.size(2) == c.image_size && images.size(3) == c.image_size,
               "ImageClassifier: images must be [B, ", c.channels, ", ", c.image_size, ", ",
               c.image_size, "], got ", images.defined() ? images.str() : "undefined");
  ATTEND_CHECK(images.dtype() == dtype_, "ImageClassifier: images are ", images.str(),
               ", the model is ", DTypeName(dtype_));
  ClassifierOutput out;
  Tensor x = images;
  const int64_t n = c.NumScales();
  for (int64_t s = 1; s <= n; ++s) {
    Tensor logits;
    Tensor features = scales_[s - 1]->Forward(x, &logits);
    out.logits.push_back(logits);
    if (s == n) break;
    const int64_t side = c.SideOf(s);
    Tensor local = apns_[s - 1]->Forward(features, side);   // [B, 3] in x's pixels
    Tensor mask = BoxcarMask(local, side, side, c.mask_k);  // [B, 1, side, side]
    x = CropZoom(Mul(x, mask), local, c.zoom_size, c.zoom_size);
    Tensor global = local;
    if (s > 1) {
      // x's pixel u lies at (t_x - t_l) + u * 2 t_l / zoom_size in the image (previous box t).
      const Tensor& prev = out.boxes.back();
      Tensor origin = Sub(prev.Narrow(1, 0, 2), prev.Narrow(1, 2, 1));  // [B, 2]
      Tensor unit = MulScalar(prev.Narrow(1, 2, 1), 2.0 / static_cast<double>(c.zoom_size));
      Tensor scaled = Mul(local, unit);  // [B, 3]
      global = Concat({Add(origin, scaled.Narrow(1, 0, 2)), scaled.Narrow(1, 2, 1)}, 1);
    }
    out.boxes.push_back(global);
    out.local_boxes.push_back(local);
    out.crops.push_back(x);
  }
  return out;
}

Tensor ClassifierOutput::Probabilities() const {
  ATTEND_CHECK(!logits.empty(), "ClassifierOutput: no logits");
  NoGradGuard no_grad;
  Tensor sum = Softmax(logits[0], 1);
  for (size_t s = 1; s < logits.size(); ++s) sum = Add(sum, Softmax(logits[s], 1));
  return MulScalar(sum, 1.0 / static_cast<double>(logits.size()));
}

Tensor ImageClassifier::Loss(const ClassifierOutput& output, const Tensor& labels,
                             ClassifierLossTerms* terms, bool hold_coarser) const {
  const int64_t n = config_.NumScales();
  ATTEND_CHECK(static_cast<int64_t>(output.logits.size()) == n,
               "ImageClassifier::Loss: expected the logits of ", n, " scales, got ",
               output.logits.size());
  const int64_t batch = output.logits[0].size(0);
  ATTEND_CHECK(labels.defined() && labels.dtype() == DType::kI64 && labels.dim() == 1 &&
                   labels.size(0) == batch,
               "ImageClassifier::Loss: labels must be i64 [", batch, "], got ",
               labels.defined() ? labels.str() : "undefined");
  for (int64_t v : labels.ToVector<int64_t>()) {
    ATTEND_CHECK(v >= 0 && v < config_.classes, "ImageClassifier::Loss: label ", v,
                 " is not in 0..", config_.classes - 1);
  }
  if (terms != nullptr) *terms = ClassifierLossTerms{};
  Tensor total;
  Tensor previous_p;  // [B, 1]: the previous scale's probability of the true class
  const Tensor index = labels.View(Shape{batch, 1});
  for (int64_t s = 0; s < n; ++s) {
    const Tensor& logits = output.logits[s];
    Tensor ce = CrossEntropy(logits, labels);
    total = total.defined() ? Add(total, ce) : ce;
    if (terms != nullptr) terms->cross_entropy.push_back(ce.item());
    if (n == 1) break;
    Tensor p = Gather(Softmax(logits, 1), 1, index);  // [B, 1]
    if (s > 0) {
      // max(0, p_t(s - 1) - p_t(s) + margin), the coarser p_t held constant (header).
      Tensor coarser = hold_coarser ? previous_p.Detach() : previous_p;
      Tensor rank = Mean(Relu(AddScalar(Sub(coarser, p), config_.ranking_margin)));
      total = Add(total, rank);
      if (terms != nullptr) terms->ranking += rank.item();
    }
    previous_p = p;
  }
  return total;
}

}  // namespace attend::models
