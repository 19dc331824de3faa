// Global Attention Upsample in a small segmentation network (attend/tasks/gau.h): the scenes of
// Fashion-MNIST items, the encoder-decoder with and without GAU, the task the trainer runs, the
// mean IoU and the picture of a few test scenes.
#include "attend/tasks/gau.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "attend/error.h"
#include "attend/ops.h"
#include "attend/ops/conv.h"
#include "attend/vision.h"

namespace attend::tasks {

namespace {

constexpr int64_t kItemPixels = kGauItemSide * kGauItemSide;

void CheckRows(const GauSplit& split, const std::vector<int64_t>& rows) {
  for (int64_t r : rows)
    ATTEND_CHECK(r >= 0 && r < split.size(), "gau: row ", r, " outside the ", split.source,
                 " split of ", split.size(), " scenes");
}

std::string JoinInts(const std::vector<int64_t>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + std::to_string(v[i]);
  return out;
}

void CheckOptions(const GauDataOptions& o) {
  ATTEND_CHECK(o.canvas >= kGauItemSide && o.canvas <= 512, "gau: --canvas ", o.canvas,
               " must lie in 28..512 (an item is 28 x 28 and must fit)");
  ATTEND_CHECK(o.max_items >= 1 && o.max_items <= 16, "gau: --max-items ", o.max_items,
               " must lie in 1..16");
  ATTEND_CHECK(o.threshold >= 0 && o.threshold <= 254, "gau: --threshold ", o.threshold,
               " must lie in 0..254");
}

}  // namespace

// ---- data ----

std::string GauDataOptions::Json() const {
  return "{\"canvas\": " + std::to_string(canvas) +
         ", \"train_size\": " + std::to_string(train_size) +
         ", \"dev_size\": " + std::to_string(dev_size) +
         ", \"test_size\": " + std::to_string(test_size) +
         ", \"max_items\": " + std::to_string(max_items) +
         ", \"threshold\": " + std::to_string(threshold) +
         ", \"data_seed\": " + std::to_string(seed) + "}";
}

GauSplit ComposeGauScenes(const std::vector<uint8_t>& item_pixels,
                          const std::vector<uint8_t>& item_labels, const std::vector<int64_t>& pool,
                          int64_t scenes, const GauDataOptions& options, uint64_t stream,
                          const std::string& source) {
  CheckOptions(options);
  ATTEND_CHECK(scenes >= 1 && scenes <= 1000000, "gau: the ", source, " split needs 1..1000000 ",
               "scenes, got ", scenes);
  ATTEND_CHECK(!pool.empty(), "gau: no item images for the ", source, " split");
  ATTEND_CHECK(item_pixels.size() == item_labels.size() * kItemPixels, "gau: ", item_labels.size(),
               " item labels for ", item_pixels.size(), " pixels");
  for (int64_t i : pool)
    ATTEND_CHECK(i >= 0 && i < static_cast<int64_t>(item_labels.size()), "gau: item ", i,
                 " outside the ", item_labels.size(), " images");
  const int64_t side = options.canvas, area = side * side;
  GauSplit s;
  s.source = source;
  s.side = side;
  s.images.assign(static_cast<size_t>(scenes * area), 0);
  s.labels.assign(static_cast<size_t>(scenes * area), 0);
  s.items.resize(static_cast<size_t>(scenes));
  // One stream per split: (seed, stream) mixed so that neighbouring seeds do not share draws.
  // Draws are taken modulo n (the bias is below 2^-40 for these n), not through
  // std::uniform_int_distribution, whose algorithm the standard leaves to the library.
  std::mt19937_64 rng(options.seed * 0x9E3779B97F4A7C15ull + stream * 0xBF58476D1CE4E5B9ull + 1);
  auto draw = [&rng](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  const int64_t span = side - kGauItemSide + 1;
  for (int64_t n = 0; n < scenes; ++n) {
    uint8_t* image = s.images.data() + n * area;
    uint8_t* label = s.labels.data() + n * area;
    const int64_t count = 1 + draw(options.max_items);
    for (int64_t k = 0; k < count; ++k) {
      const int64_t item = pool[static_cast<size_t>(draw(static_cast<int64_t>(pool.size())))];
      const int64_t x0 = draw(span), y0 = draw(span);
      s.items[static_cast<size_t>(n)].push_back(item);
      const uint8_t* p = item_pixels.data() + item * kItemPixels;
      const uint8_t cls = static_cast<uint8_t>(item_labels[static_cast<size_t>(item)] + 1);
      for (int64_t y = 0; y < kGauItemSide; ++y)
        for (int64_t x = 0; x < kGauItemSide; ++x) {
          const uint8_t v = p[y * kGauItemSide + x];
          const int64_t at = (y0 + y) * side + x0 + x;
          if (v > options.threshold) {
            image[at] = v;
            label[at] = cls;
          } else if (label[at] == 0) {
            image[at] = std::max(image[at], v);
          }
        }
    }
  }
  return s;
}

GauData BuildGauData(const std::string& dir, const GauDataOptions& options) {
  CheckOptions(options);
  ATTEND_CHECK(options.train_size >= 1 && options.dev_size >= 1 && options.test_size >= 1,
               "gau: --train-size, --dev-size and --test-size must be at least 1, got ",
               options.train_size, ", ", options.dev_size, ", ", options.test_size);
  const vision::FashionMnist train = vision::LoadFashionMnist(dir, false);
  const vision::FashionMnist test = vision::LoadFashionMnist(dir, true);
  ATTEND_CHECK(train.images.rows == kGauItemSide && train.images.cols == kGauItemSide &&
                   test.images.rows == kGauItemSide && test.images.cols == kGauItemSide,
               "gau: the images in ", dir, " are not 28 x 28");
  ATTEND_CHECK(train.images.count > kGauTrainPool, "gau: ", dir, " holds ", train.images.count,
               " training images; the split needs more than ", kGauTrainPool);
  std::vector<int64_t> train_pool, dev_pool, test_pool;
  for (int64_t i = 0; i < kGauTrainPool; ++i) train_pool.push_back(i);
  for (int64_t i = kGauTrainPool; i < train.images.count; ++i) dev_pool.push_back(i);
  for (int64_t i = 0; i < test.images.count; ++i) test_pool.push_back(i);
  GauData d;
  d.options = options;
  d.train = ComposeGauScenes(train.images.pixels, train.labels, train_pool, options.train_size,
                             options, 0, "train");
  d.dev = ComposeGauScenes(train.images.pixels, train.labels, dev_pool, options.dev_size, options,
                           1, "dev");
  d.test = ComposeGauScenes(test.images.pixels, test.labels, test_pool, options.test_size, options,
                            2, "test");
  return d;
}

Tensor GauImages(const GauSplit& split, const std::vector<int64_t>& rows) {
  CheckRows(split, rows);
  const int64_t n = static_cast<int64_t>(rows.size()), area = split.side * split.side;
  Tensor x = Tensor::Empty({n, 1, split.side, split.side});
  float* out = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = split.images.data() + rows[static_cast<size_t>(i)] * area;
    for (int64_t j = 0; j < area; ++j) out[i * area + j] = static_cast<float>(p[j]) / 255.0f;
  }
  return x;
}

Tensor GauLabels(const GauSplit& split, const std::vector<int64_t>& rows) {
  CheckRows(split, rows);
  const int64_t n = static_cast<int64_t>(rows.size()), area = split.side * split.side;
  std::vector<int64_t> y(static_cast<size_t>(n * area));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = split.labels.data() + rows[static_cast<size_t>(i)] * area;
    for (int64_t j = 0; j < area; ++j) y[static_cast<size_t>(i * area + j)] = p[j];
  }
  return Tensor::FromVector(y, {n, split.side, split.side});
}

// ---- model ----

Tensor BilinearMatrix(int64_t in, int64_t out, DType dtype) {
  ATTEND_CHECK(in >= 1 && out >= 1, "gau: bilinear resizing needs positive sizes, got ", in, " -> ",
               out);
  // Output i samples the input at (i + 1/2) in / out - 1/2 (pixel centres aligned, as
  // align_corners=False), clamped at 0 below; the two nearest rows share the weight linearly,
  // the last row standing in for the one past the edge.
  std::vector<double> a(static_cast<size_t>(out * in), 0.0);
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t i = 0; i < out; ++i) {
    const double src = std::max(0.0, (static_cast<double>(i) + 0.5) * scale - 0.5);
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    const int64_t i1 = std::min(i0 + 1, in - 1);
    const double l = src - static_cast<double>(i0);
    a[static_cast<size_t>(i * in + i0)] += 1.0 - l;
    a[static_cast<size_t>(i * in + i1)] += l;
  }
  return Tensor::FromVector(a, {out, in}).To(dtype);
}

Tensor UpsampleBilinear(const Tensor& x, int64_t out_h, int64_t out_w) {
  ATTEND_CHECK(x.defined() && x.dim() == 4, "gau: bilinear resizing needs [B, C, H, W], got ",
               x.defined() ? x.str() : std::string("an undefined tensor"));
  const Tensor ah = BilinearMatrix(x.size(2), out_h, x.dtype());
  const Tensor aw = BilinearMatrix(x.size(3), out_w, x.dtype());
  return Matmul(Matmul(ah, x), aw.T());
}

std::string GauConfig::Json() const {
  return std::string("{\"channels\": [") + JoinInts(channels, ", ") +
         "], \"decoder_channels\": " + std::to_string(decoder_channels) +
         ", \"decoder\": " + (gau ? "\"gau\"" : "\"skip\"") + "}";
}

std::string GauConfig::Describe() const {
  return "encoder " + JoinInts(channels, "-") + ", decoder width " +
         std::to_string(decoder_channels) +
         (gau ? " with global attention upsample" : " with plain skip connections (no GAU)") +
         ", " + std::to_string(kGauClasses) + " classes";
}

GauModel::GauModel(const GauConfig& config, Generator& gen, DType dtype) : config_(config) {
  ATTEND_CHECK(config.channels.size() >= 2 && config.channels.size() <= 5,
               "gau: --channels needs 2 to 5 widths (one per encoder stage), got ",
               config.channels.size());
  for (int64_t c : config.channels)
    ATTEND_CHECK(c >= 1 && c <= 1024, "gau: a channel width must lie in 1..1024, got ", c);
  ATTEND_CHECK(config.decoder_channels >= 1 && config.decoder_channels <= 1024,
               "gau: --decoder-channels must lie in 1..1024, got ", config.decoder_channels);
  const int64_t d = config.decoder_channels;
  nn::Conv2dOptions same;
  same.padding = 1;
  // He initialisation for the 3x3 convolutions, which feed ReLUs: without a normalisation
  // layer the default scale (a third of it) shrinks the signal at every stage.
  auto he = [&gen](const std::shared_ptr<nn::Conv2dModule>& conv) {
    nn::init::KaimingNormal(conv->weight, gen);
    nn::init::Constant(conv->bias, 0.0);
  };
  int64_t in = 1;
  for (size_t k = 0; k < config.channels.size(); ++k) {
    encoder.push_back(RegisterModule(
        "enc" + std::to_string(k + 1),
        std::make_shared<nn::Conv2dModule>(in, config.channels[k], 3, gen, same, dtype)));
    he(encoder.back());
    in = config.channels[k];
  }
  top = RegisterModule(
      "top", std::make_shared<nn::Conv2dModule>(in, d, 1, gen, nn::Conv2dOptions{}, dtype));
  for (size_t k = 0; k + 1 < config.channels.size(); ++k) {
    const std::string n = std::to_string(k + 1);
    laterals.push_back(RegisterModule(
        "lateral" + n,
        std::make_shared<nn::Conv2dModule>(config.channels[k], d, 3, gen, same, dtype)));
    he(laterals.back());
    if (config.gau) {
      gates.push_back(RegisterModule("gate" + n, std::make_shared<nn::Conv2dModule>(
                                                     d, d, 1, gen, nn::Conv2dOptions{}, dtype)));
      // Weights near 1 at the start: the ReLU of a zero-mean start would shut half of the
      // low-level channels before anything was learnt.
      nn::init::Constant(gates.back()->bias, 1.0);
    }
  }
  classifier = RegisterModule(
      "classifier",
      std::make_shared<nn::Conv2dModule>(d, kGauClasses, 1, gen, nn::Conv2dOptions{}, dtype));
}

GauModel::Output GauModel::Forward(const Tensor& x) const {
  const int64_t min_side = int64_t{1} << (encoder.size() - 1);
  ATTEND_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 1 && x.size(2) >= min_side &&
                   x.size(3) >= min_side,
               "gau: input must be [B, 1, H, W] with H, W >= ", min_side, ", got ",
               x.defined() ? x.str() : std::string("an undefined tensor"));
  std::vector<Tensor> features;
  Tensor h = x;
  for (size_t k = 0; k < encoder.size(); ++k) {
    if (k > 0) h = MaxPool2d(h, 2);
    h = Relu(encoder[k]->Forward(h));
    features.push_back(h);
  }
  Output out;
  Tensor d = Relu(top->Forward(features.back()));
  for (size_t k = laterals.size(); k-- > 0;) {
    Tensor low = laterals[k]->Forward(features[k]);
    if (!gates.empty()) {
      // GAU: the high-level map's global context weights the low-level channels.
      const Tensor w = Relu(gates[k]->Forward(GlobalAvgPool(d, true)));  // [B, D, 1, 1]
      out.weights.push_back(w.Reshape({w.size(0), w.size(1)}));
      low = low * w;
    }
    d = Relu(UpsampleBilinear(d, low.size(2), low.size(3)) + low);
  }
  out.logits = classifier->Forward(d);
  return out;
}

Tensor GauPixelLoss(const Tensor& logits, const Tensor& labels) {
  ATTEND_CHECK(logits.dim() == 4 && labels.dim() == 3 && logits.size(0) == labels.size(0) &&
                   logits.size(2) == labels.size(1) && logits.size(3) == labels.size(2),
               "gau: logits ", logits.str(), " and labels ", labels.str(), " do not fit");
  const Tensor flat = logits.Permute({0, 2, 3, 1}).Reshape({-1, logits.size(1)});
  return CrossEntropy(flat, labels.Reshape({-1}));
}

// ---- evaluation ----

GauEvaluation EvaluateGau(GauModel& model, const GauSplit& split, int64_t batch_size) {
  ATTEND_CHECK(batch_size > 0, "gau: the evaluation batch size must be positive");
  ATTEND_CHECK(split.size() > 0, "gau: the ", split.source, " split is empty");
  const bool was_training = model.training();
  model.Eval();
  NoGradGuard no_grad;
  GauEvaluation e;
  e.intersection.assign(kGauClasses, 0);
  e.union_.assign(kGauClasses, 0);
  double loss_sum = 0.0;
  const int64_t area = split.side * split.side;
  for (int64_t first = 0; first < split.size(); first += batch_size) {
    std::vector<int64_t> rows;
    for (int64_t i = first; i < std::min(split.size(), first + batch_size); ++i) rows.push_back(i);
    const Tensor logits = model.Forward(GauImages(split, rows)).logits;
    loss_sum +=
        GauPixelLoss(logits, GauLabels(split, rows)).item() * static_cast<double>(rows.size());
    const std::vector<int64_t> pred = Argmax(logits, 1).ToVector<int64_t>();
    for (size_t i = 0; i < rows.size(); ++i) {
      const uint8_t* truth = split.labels.data() + rows[i] * area;
      for (int64_t j = 0; j < area; ++j) {
        const int64_t t = truth[j], p = pred[i * static_cast<size_t>(area) + j];
        if (t == p) {
          ++e.correct;
          ++e.intersection[static_cast<size_t>(t)];
          ++e.union_[static_cast<size_t>(t)];
        } else {
          ++e.union_[static_cast<size_t>(t)];
          ++e.union_[static_cast<size_t>(p)];
        }
      }
    }
  }
  e.scenes = split.size();
  e.pixels = split.size() * area;
  e.pixel_accuracy = 100.0 * static_cast<double>(e.correct) / static_cast<double>(e.pixels);
  e.loss = loss_sum / static_cast<double>(e.scenes);
  int64_t present = 0;
  double sum = 0.0;
  for (int64_t c = 0; c < kGauClasses; ++c) {
    const double u = static_cast<double>(e.union_[static_cast<size_t>(c)]);
    const double iou =
        u > 0 ? 100.0 * static_cast<double>(e.intersection[static_cast<size_t>(c)]) / u : 0.0;
    e.iou.push_back(iou);
    if (u > 0) {
      sum += iou;
      ++present;
    }
  }
  e.miou = present > 0 ? sum / static_cast<double>(present) : 0.0;
  model.Train(was_training);
  return e;
}

std::vector<uint8_t> PredictGau(GauModel& model, const GauSplit& split,
                                const std::vector<int64_t>& rows) {
  const bool was_training = model.training();
  model.Eval();
  NoGradGuard no_grad;
  const std::vector<int64_t> pred =
      Argmax(model.Forward(GauImages(split, rows)).logits, 1).ToVector<int64_t>();
  model.Train(was_training);
  return std::vector<uint8_t>(pred.begin(), pred.end());
}

void WriteGauPicture(const std::string& out_dir, GauModel& model, const GauSplit& split,
                     const std::vector<int64_t>& rows) {
  ATTEND_CHECK(!rows.empty(), "gau: no scenes to draw");
  const std::vector<uint8_t> pred = PredictGau(model, split, rows);
  // Background black, then ten colours far apart (a categorical palette), one per item class.
  static const uint8_t kPalette[kGauClasses][3] = {{0, 0, 0},      {230, 25, 75},  {60, 180, 75},
                                                   {255, 225, 25}, {0, 130, 200},  {245, 130, 48},
                                                   {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
                                                   {210, 245, 60}, {250, 190, 212}};
  const int64_t side = split.side, area = side * side, zoom = 2, gap = 6;
  const int64_t cell = side * zoom;
  vision::Image img;
  img.channels = 3;
  img.width = 3 * cell + 4 * gap;
  img.height = static_cast<int64_t>(rows.size()) * (cell + gap) + gap;
  img.pixels.assign(static_cast<size_t>(img.width * img.height * 3), 255);
  for (size_t r = 0; r < rows.size(); ++r) {
    const uint8_t* image = split.images.data() + rows[r] * area;
    const uint8_t* truth = split.labels.data() + rows[r] * area;
    const uint8_t* guess = pred.data() + static_cast<int64_t>(r) * area;
    const int64_t top = gap + static_cast<int64_t>(r) * (cell + gap);
    for (int64_t panel = 0; panel < 3; ++panel) {
      const int64_t left = gap + panel * (cell + gap);
      for (int64_t y = 0; y < cell; ++y)
        for (int64_t x = 0; x < cell; ++x) {
          const int64_t at = (y / zoom) * side + x / zoom;
          uint8_t* px = img.pixels.data() + ((top + y) * img.width + left + x) * 3;
          if (panel == 0) {
            px[0] = px[1] = px[2] = image[at];
          } else {
            const uint8_t* c = kPalette[panel == 1 ? truth[at] : guess[at]];
            std::copy(c, c + 3, px);
          }
        }
    }
  }
  vision::WritePng((std::filesystem::path(out_dir) / "gau-segmentation.png").string(), img);
}

// ---- task ----

GauTask::GauTask(const GauData& data, const GauConfig& config, uint64_t seed) : data_(data) {
  ATTEND_CHECK(data.train.size() > 0 && data.dev.size() > 0,
               "gau: the train and dev splits must not be empty");
  Generator gen(seed);
  model_ = std::make_shared<GauModel>(config, gen);
}

Tensor GauTask::Loss(const std::vector<int64_t>& rows) {
  return GauPixelLoss(model_->Forward(GauImages(data_.train, rows)).logits,
                      GauLabels(data_.train, rows));
}

train::TaskEval GauTask::Evaluate() {
  const GauEvaluation e = EvaluateGau(*model_, data_.dev);
  train::TaskEval t;
  t.score = e.miou;
  t.loss = e.loss;
  char text[64];
  std::snprintf(text, sizeof text, "mIoU %.2f | pixel acc %.2f", e.miou, e.pixel_accuracy);
  t.text = text;
  return t;
}

std::string GauTask::ConfigJson() const {
  std::string json = model_->config().Json();
  json.pop_back();
  return json + ", \"data\": " + data_.options.Json() + "}";
}

std::string GauTask::Describe() const { return "GAU segmentation: " + model_->config().Describe(); }

}  // namespace attend::tasks
