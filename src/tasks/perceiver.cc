// The Perceiver on Fashion-MNIST against a small CNN (attend/tasks/perceiver.h).
#include "attend/tasks/perceiver.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <numeric>
#include <sstream>
#include <tuple>

#include "attend/attend.h"
#include "attend/ops/conv.h"
#include "attend/vision.h"

namespace attend::tasks {
namespace {

constexpr int64_t kSide = 28, kPixels = kSide * kSide;
constexpr int64_t kTrainImages = 55000, kDevImages = 5000, kTestImages = 10000;

std::string Num(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// splitmix64, so that a subset is the same on every platform (std::shuffle is not).
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// `count` of the indices first .. first + n - 1 (all when count is 0 or n), in increasing order:
// a Fisher-Yates shuffle driven by (seed, salt), then its first `count` sorted.
std::vector<int64_t> Subset(int64_t first, int64_t n, int64_t count, uint64_t seed, uint64_t salt) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), first);
  if (count == 0 || count == n) return idx;
  uint64_t state = Mix(seed ^ Mix(salt));
  for (int64_t i = n - 1; i > 0; --i) {
    state = Mix(state);
    const int64_t j = static_cast<int64_t>(state % static_cast<uint64_t>(i + 1));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(static_cast<size_t>(count));
  std::sort(idx.begin(), idx.end());
  return idx;
}

ImageSplit Take(const vision::FashionMnist& source, const std::vector<int64_t>& indices) {
  ImageSplit s;
  s.pixels.reserve(indices.size() * kPixels);
  for (int64_t i : indices) {
    const auto* p = source.images.pixels.data() + i * kPixels;
    s.pixels.insert(s.pixels.end(), p, p + kPixels);
    s.labels.push_back(source.labels[static_cast<size_t>(i)]);
    s.file_index.push_back(i);
  }
  return s;
}

}  // namespace

// ---- configuration ----

std::string PerceiverConfig::ToJson() const {
  std::ostringstream j;
  j << "{\"model\":\"" << model << "\",\"image_size\":" << image_size << ",\"classes\":" << classes
    << ",\"latents\":" << latents << ",\"dim\":" << dim << ",\"cross_heads\":" << cross_heads
    << ",\"self_heads\":" << self_heads << ",\"self_layers\":" << self_layers
    << ",\"repeats\":" << repeats << ",\"bands\":" << bands << ",\"max_freq\":" << Num(max_freq)
    << ",\"mlp_ratio\":" << mlp_ratio << ",\"cnn_channels\":" << cnn_channels << "}";
  return j.str();
}

void PerceiverConfig::Validate() const {
  const char* w = "perceiver config: ";
  ATTEND_CHECK(model == "perceiver" || model == "cnn", w, "model '", model.substr(0, 40),
               "' is not one of perceiver | cnn");
  ATTEND_CHECK(image_size >= 2 && image_size <= 256, w, "image_size ", image_size,
               " is not in 2..256");
  // The CNN halves the side twice.
  ATTEND_CHECK(model != "cnn" || image_size >= 4, w, "image_size ", image_size,
               " is under 4, too small for the CNN's two poolings");
  ATTEND_CHECK(classes >= 2 && classes <= 1000, w, "classes ", classes, " is not in 2..1000");
  ATTEND_CHECK(latents >= 1 && latents <= 4096, w, "latents ", latents, " is not in 1..4096");
  ATTEND_CHECK(dim >= 1 && dim <= 4096, w, "dim ", dim, " is not in 1..4096");
  ATTEND_CHECK(cross_heads >= 1 && dim % cross_heads == 0, w, "cross_heads ", cross_heads,
               " must divide dim ", dim);
  ATTEND_CHECK(self_heads >= 1 && dim % self_heads == 0, w, "self_heads ", self_heads,
               " must divide dim ", dim);
  ATTEND_CHECK(self_layers >= 0 && self_layers <= 64, w, "self_layers ", self_layers,
               " is not in 0..64");
  ATTEND_CHECK(repeats >= 1 && repeats <= 16, w, "repeats ", repeats, " is not in 1..16");
  ATTEND_CHECK(bands >= 1 && bands <= 256, w, "bands ", bands, " is not in 1..256");
  ATTEND_CHECK(std::isfinite(max_freq) && max_freq >= 0 && max_freq <= 1e4, w, "max_freq ",
               max_freq, " is not in [0, 1e4] (0 = the image side)");
  ATTEND_CHECK(mlp_ratio >= 1 && mlp_ratio <= 16, w, "mlp_ratio ", mlp_ratio, " is not in 1..16");
  ATTEND_CHECK(cnn_channels >= 1 && cnn_channels <= 512, w, "cnn_channels ", cnn_channels,
               " is not in 1..512");
}

// ---- the layers ----

Tensor FourierPositionFeatures(int64_t height, int64_t width, int64_t bands, double max_freq,
                               DType dtype) {
  ATTEND_CHECK(height >= 1 && width >= 1 && bands >= 1 && max_freq > 0,
               "FourierPositionFeatures: need height, width, bands >= 1 and max_freq > 0, got ",
               height, ", ", width, ", ", bands, ", ", max_freq);
  const int64_t per_axis = 2 * bands + 1, f = 2 * per_axis;
  // f_k equally spaced from 1 to mu / 2 (a single band sits at 1).
  std::vector<double> freq(static_cast<size_t>(bands));
  for (int64_t k = 0; k < bands; ++k)
    freq[k] = bands == 1 ? 1.0 : 1.0 + (max_freq / 2 - 1.0) * k / static_cast<double>(bands - 1);
  // A coordinate in [-1, 1]: the first pixel at -1, the last at +1 (0 for a side of one).
  auto coord = [](int64_t i, int64_t n) { return n == 1 ? 0.0 : -1.0 + 2.0 * i / (n - 1.0); };
  std::vector<double> out(static_cast<size_t>(height * width * f));
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      double* row = out.data() + (y * width + x) * f;
      const double p[2] = {coord(y, height), coord(x, width)};
      for (int a = 0; a < 2; ++a) {
        double* r = row + a * per_axis;
        r[0] = p[a];
        for (int64_t k = 0; k < bands; ++k) {
          r[1 + k] = std::sin(freq[k] * M_PI * p[a]);
          r[1 + bands + k] = std::cos(freq[k] * M_PI * p[a]);
        }
      }
    }
  return Tensor::FromVector(out, {height * width, f}).To(dtype);
}

PerceiverBlock::PerceiverBlock(int64_t dim, int64_t heads, int64_t mlp_ratio, bool cross,
                               Generator& gen, DType dtype)
    : cross(cross) {
  norm_q = RegisterModule("norm_q",
                          std::make_shared<nn::LayerNormModule>(Shape{dim}, 1e-5, true, dtype));
  if (cross)
    norm_kv = RegisterModule("norm_kv",
                             std::make_shared<nn::LayerNormModule>(Shape{dim}, 1e-5, true, dtype));
  attn = RegisterModule(
      "attn", std::make_shared<attention::MultiHeadAttention>(dim, heads, gen, 0.0, true, dtype));
  norm_mlp = RegisterModule("norm_mlp",
                            std::make_shared<nn::LayerNormModule>(Shape{dim}, 1e-5, true, dtype));
  fc1 = RegisterModule("fc1", std::make_shared<nn::Linear>(dim, mlp_ratio * dim, true, gen, dtype));
  fc2 = RegisterModule("fc2", std::make_shared<nn::Linear>(mlp_ratio * dim, dim, true, gen, dtype));
}

Tensor PerceiverBlock::Forward(const Tensor& z, const Tensor& inputs, Tensor* weights) {
  Tensor q = norm_q->Forward(z);
  Tensor a;
  if (cross) {
    ATTEND_CHECK(inputs.defined() && inputs.dim() == 3 && inputs.size(0) == z.size(0) &&
                     inputs.size(2) == z.size(2),
                 "PerceiverBlock: inputs must be [B, M, D] with z ", z.str(), ", got ",
                 inputs.defined() ? inputs.str() : "undefined");
    a = attn->CrossAttention(q, attn->CrossKeysValues(norm_kv->Forward(inputs)), Tensor(), weights);
  } else {
    a = attn->SelfAttention(q, Tensor(), false, weights);
  }
  Tensor h = z + a;
  return h + fc2->Forward(Gelu(fc1->Forward(norm_mlp->Forward(h))));
}

Perceiver::Perceiver(const PerceiverConfig& c, Generator& gen, DType dtype) : config(c) {
  config.Validate();
  ATTEND_CHECK(IsFloating(dtype), "Perceiver: dtype must be f32 or f64");
  Tensor l = Tensor::Zeros({c.latents, c.dim}, dtype);
  nn::init::Normal(l, 0.0, 0.02, gen);  // the paper's latent initialisation scale
  latents = RegisterParameter("latents", l);
  positions = FourierPositionFeatures(c.image_size, c.image_size, c.bands, c.MaxFreq(), dtype);
  input_proj = RegisterModule(
      "input_proj", std::make_shared<nn::Linear>(c.InputFeatures(), c.dim, true, gen, dtype));
  const int64_t crosses = std::min<int64_t>(c.repeats, 2);
  for (int64_t i = 0; i < crosses; ++i)
    cross.push_back(RegisterModule(
        "cross" + std::to_string(i),
        std::make_shared<PerceiverBlock>(c.dim, c.cross_heads, c.mlp_ratio, true, gen, dtype)));
  for (int64_t i = 0; i < c.self_layers; ++i)
    self.push_back(RegisterModule(
        "self" + std::to_string(i),
        std::make_shared<PerceiverBlock>(c.dim, c.self_heads, c.mlp_ratio, false, gen, dtype)));
  norm_out = RegisterModule("norm_out",
                            std::make_shared<nn::LayerNormModule>(Shape{c.dim}, 1e-5, true, dtype));
  head = RegisterModule("head", std::make_shared<nn::Linear>(c.dim, c.classes, true, gen, dtype));
}

Tensor Perceiver::InputArray(const Tensor& images) const {
  const int64_t s = config.image_size;
  ATTEND_CHECK(images.defined() && images.dim() == 3 && images.size(1) == s && images.size(2) == s,
               "Perceiver: images must be [B, ", s, ", ", s, "], got ",
               images.defined() ? images.str() : "undefined");
  const int64_t b = images.size(0), m = s * s, f = positions.size(1);
  // input_proj of [pixel, positions] without building the [B, M, 1 + F] array: the positions'
  // part is the same for every image, so it is projected once and broadcast over the batch.
  Tensor w = input_proj->weight;  // [D, 1 + F]
  Tensor pix = images.Reshape({b, m, 1});
  Tensor pos = Matmul(positions, w.Narrow(1, 1, f).T()) + input_proj->bias;  // [M, D]
  return pix * w.Narrow(1, 0, 1).T() + pos;
}

Tensor Perceiver::Logits(const Tensor& images, Tensor* cross_weights) {
  Tensor x = InputArray(images);
  const int64_t b = x.size(0);
  Tensor z = latents.Unsqueeze(0).Expand({b, config.latents, config.dim});
  for (int64_t r = 0; r < config.repeats; ++r) {
    PerceiverBlock& c = *cross[static_cast<size_t>(std::min<int64_t>(r, 1))];
    z = c.Forward(z, x, r == 0 ? cross_weights : nullptr);
    for (auto& block : self) z = block->Forward(z, Tensor());
  }
  return head->Forward(Mean(norm_out->Forward(z), {1}));
}

SmallCnn::SmallCnn(const PerceiverConfig& c, Generator& gen, DType dtype) {
  c.Validate();
  const int64_t k = c.cnn_channels;
  const nn::Conv2dOptions pad{.padding = 1};
  conv1 = RegisterModule("conv1", std::make_shared<nn::Conv2dModule>(1, k, 3, gen, pad, dtype));
  conv2 = RegisterModule("conv2", std::make_shared<nn::Conv2dModule>(k, 2 * k, 3, gen, pad, dtype));
  conv3 =
      RegisterModule("conv3", std::make_shared<nn::Conv2dModule>(2 * k, 4 * k, 3, gen, pad, dtype));
  head = RegisterModule("head", std::make_shared<nn::Linear>(4 * k, c.classes, true, gen, dtype));
}

Tensor SmallCnn::Logits(const Tensor& images, Tensor*) {
  ATTEND_CHECK(images.defined() && images.dim() == 3, "SmallCnn: images must be [B, S, S], got ",
               images.defined() ? images.str() : "undefined");
  Tensor x = MaxPool2d(Relu(conv1->Forward(images.Unsqueeze(1))), 2);
  x = MaxPool2d(Relu(conv2->Forward(x)), 2);
  x = Relu(conv3->Forward(x));
  return head->Forward(GlobalAvgPool(x));
}

std::shared_ptr<ImageModel> MakePerceiverTaskModel(const PerceiverConfig& config, Generator& gen,
                                                   DType dtype) {
  config.Validate();
  if (config.perceiver()) return std::make_shared<Perceiver>(config, gen, dtype);
  return std::make_shared<SmallCnn>(config, gen, dtype);
}

// ---- data ----

PerceiverData LoadPerceiverData(const PerceiverDataOptions& o) {
  ATTEND_CHECK(o.train_size >= 0 && o.train_size <= kTrainImages, "perceiver data: train_size ",
               o.train_size, " is not in 0..", kTrainImages, " (0 = all)");
  ATTEND_CHECK(o.dev_size >= 0 && o.dev_size <= kDevImages, "perceiver data: dev_size ", o.dev_size,
               " is not in 0..", kDevImages, " (0 = all)");
  ATTEND_CHECK(o.test_size >= 0 && o.test_size <= kTestImages, "perceiver data: test_size ",
               o.test_size, " is not in 0..", kTestImages, " (0 = all)");
  const vision::FashionMnist train = vision::LoadFashionMnist(o.dir, false);
  const vision::FashionMnist test = vision::LoadFashionMnist(o.dir, true);
  for (const auto* f : {&train, &test}) {
    const bool is_train = f == &train;
    const int64_t want = is_train ? kTrainImages + kDevImages : kTestImages;
    ATTEND_CHECK(f->images.count == want && f->images.rows == kSide && f->images.cols == kSide,
                 "perceiver data: ", o.dir, "/",
                 is_train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz", " holds ",
                 f->images.count, " images of ", f->images.rows, " x ", f->images.cols,
                 "; Fashion-MNIST's has ", want, " of 28 x 28");
  }
  PerceiverData d;
  d.train = Take(train, Subset(0, kTrainImages, o.train_size, o.seed, 1));
  d.dev = Take(train, Subset(kTrainImages, kDevImages, o.dev_size, o.seed, 2));
  d.test = Take(test, Subset(0, kTestImages, o.test_size, o.seed, 3));
  return d;
}

Tensor ImagesOf(const ImageSplit& split, const std::vector<int64_t>& rows, int64_t size,
                DType dtype) {
  ATTEND_CHECK(size >= 1 && size <= vision::kMaxImageSide, "ImagesOf: size ", size,
               " out of range");
  std::vector<float> out;
  out.reserve(rows.size() * static_cast<size_t>(size * size));
  vision::Image img;
  img.width = img.height = kSide;
  img.channels = 1;
  for (int64_t r : rows) {
    ATTEND_CHECK(r >= 0 && r < split.size(), "ImagesOf: row ", r, " of a split of ", split.size());
    const auto* p = split.pixels.data() + r * kPixels;
    img.pixels.assign(p, p + kPixels);
    const vision::Image& sized = size == kSide ? img : vision::Resize(img, size, size);
    for (uint8_t v : sized.pixels) out.push_back(static_cast<float>(v) / 255.0f);
  }
  return Tensor::FromVector(out, {static_cast<int64_t>(rows.size()), size, size}).To(dtype);
}

Tensor LabelsOf(const ImageSplit& split, const std::vector<int64_t>& rows) {
  std::vector<int64_t> y;
  for (int64_t r : rows) y.push_back(split.labels.at(static_cast<size_t>(r)));
  return Tensor::FromVector(y, {static_cast<int64_t>(y.size())});
}

// ---- the task ----

PerceiverTask::PerceiverTask(const PerceiverConfig& config,
                             std::shared_ptr<const PerceiverData> data, uint64_t init_seed,
                             int64_t eval_batch)
    : config_(config), data_(std::move(data)), eval_batch_(eval_batch) {
  ATTEND_CHECK(data_ != nullptr, "PerceiverTask: no data");
  ATTEND_CHECK(eval_batch_ >= 1, "PerceiverTask: eval batch ", eval_batch_, " must be positive");
  Generator gen(init_seed);
  model_ = MakePerceiverTaskModel(config_, gen);
}

Tensor PerceiverTask::Loss(const std::vector<int64_t>& rows) {
  Tensor logits = model_->Logits(ImagesOf(data_->train, rows, config_.image_size));
  return CrossEntropy(logits, LabelsOf(data_->train, rows));
}

std::pair<double, double> PerceiverTask::Score(const ImageSplit& split) {
  NoGradGuard no_grad;
  const int64_t n = split.size();
  ATTEND_CHECK(n > 0, "PerceiverTask: an empty split cannot be scored");
  int64_t right = 0;
  double loss = 0;
  for (int64_t first = 0; first < n; first += eval_batch_) {
    std::vector<int64_t> rows;
    for (int64_t i = first; i < std::min(n, first + eval_batch_); ++i) rows.push_back(i);
    Tensor logits = model_->Logits(ImagesOf(split, rows, config_.image_size));
    Tensor y = LabelsOf(split, rows);
    loss += CrossEntropy(logits, y).item() * static_cast<double>(rows.size());
    const std::vector<int64_t> pred = Argmax(logits, 1).ToVector<int64_t>();
    for (size_t i = 0; i < rows.size(); ++i) right += pred[i] == split.labels[rows[i]];
  }
  return {100.0 * static_cast<double>(right) / static_cast<double>(n),
          loss / static_cast<double>(n)};
}

train::TaskEval PerceiverTask::Evaluate() {
  const auto [acc, loss] = Score(data_->dev);
  train::TaskEval e;
  e.score = acc;
  e.loss = loss;
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << "acc " << acc << " | loss " << loss;
  e.text = s.str();
  return e;
}

std::string PerceiverTask::Describe() const {
  std::ostringstream s;
  const PerceiverConfig& c = config_;
  if (c.perceiver())
    s << "Perceiver (" << c.latents << " latents x " << c.dim << ", cross-attention over "
      << c.image_size * c.image_size << " pixels, " << c.self_layers << " latent blocks, "
      << c.repeats << " repeat(s))";
  else
    s << "CNN (" << c.cnn_channels << "/" << 2 * c.cnn_channels << "/" << 4 * c.cnn_channels
      << " channels)";
  s << ", Fashion-MNIST at " << c.image_size << " x " << c.image_size << ", " << c.classes
    << " classes";
  return s.str();
}

// ---- the picture ----

void DrawPerceiverAttention(const std::string& path, Perceiver& model, const ImageSplit& split,
                            const std::vector<int64_t>& rows, int64_t shown, int64_t zoom) {
  ATTEND_CHECK(!rows.empty() && shown >= 1 && zoom >= 1 && zoom <= 16,
               "DrawPerceiverAttention: need images, shown >= 1 and zoom in 1..16");
  const int64_t s = model.config.image_size, m = s * s, n = model.config.latents;
  shown = std::min(shown, n);
  const bool was_training = model.training();
  model.Eval();
  Tensor w;
  Tensor images = ImagesOf(split, rows, s);
  {
    NoGradGuard no_grad;
    model.Logits(images, &w);  // w [R, N, M]
  }
  model.Train(was_training);
  const std::vector<float> wv = w.Contiguous().ToVector<float>();
  const std::vector<float> iv = images.ToVector<float>();
  const int64_t r_count = static_cast<int64_t>(rows.size());
  // The latents with the lowest mean entropy: the ones that look at a few places.
  std::vector<double> entropy(static_cast<size_t>(n), 0.0);
  for (int64_t r = 0; r < r_count; ++r)
    for (int64_t l = 0; l < n; ++l)
      for (int64_t p = 0; p < m; ++p) {
        const double v = wv[(r * n + l) * m + p];
        if (v > 0) entropy[l] -= v * std::log(v);
      }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return entropy[a] < entropy[b]; });
  order.resize(static_cast<size_t>(shown));

  const int64_t cell = s * zoom, gap = 4;
  vision::Image out;
  out.channels = 3;
  out.width = gap + (shown + 1) * (cell + gap);
  out.height = gap + r_count * (cell + gap);
  out.pixels.assign(static_cast<size_t>(out.width * out.height * 3), 255);
  auto put = [&](int64_t x, int64_t y, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t* px = out.pixels.data() + (y * out.width + x) * 3;
    px[0] = r;
    px[1] = g;
    px[2] = b;
  };
  for (int64_t r = 0; r < r_count; ++r) {
    const int64_t y0 = gap + r * (cell + gap);
    for (int64_t col = 0; col <= shown; ++col) {
      const int64_t x0 = gap + col * (cell + gap);
      float top = 0;
      if (col > 0)
        for (int64_t p = 0; p < m; ++p) top = std::max(top, wv[(r * n + order[col - 1]) * m + p]);
      for (int64_t y = 0; y < cell; ++y)
        for (int64_t x = 0; x < cell; ++x) {
          const int64_t p = (y / zoom) * s + x / zoom;
          if (col == 0) {
            const auto g = static_cast<uint8_t>(std::lround(255.0f * iv[r * m + p]));
            put(x0 + x, y0 + y, g, g, g);
          } else {
            // White at 0 to dark red (140, 0, 0) at the map's maximum.
            const float t = top > 0 ? wv[(r * n + order[col - 1]) * m + p] / top : 0.0f;
            put(x0 + x, y0 + y, static_cast<uint8_t>(std::lround(255 - 115 * t)),
                static_cast<uint8_t>(std::lround(255 * (1 - t))),
                static_cast<uint8_t>(std::lround(255 * (1 - t))));
          }
        }
    }
  }
  vision::WritePng(path, out);
}

// ---- cost ----

std::vector<AttentionCost> MeasureAttentionCost(const PerceiverConfig& c,
                                                const std::vector<int64_t>& sides, int64_t reps,
                                                double max_mib) {
  ATTEND_CHECK(reps >= 1 && max_mib > 0, "MeasureAttentionCost: reps ", reps, " and max_mib ",
               max_mib, " must be positive");
  const bool fused = attention::FusedKernels();
  attention::SetFusedKernels(false);
  struct Restore {
    bool on;
    ~Restore() { attention::SetFusedKernels(on); }
  } restore{fused};
  // One forward + backward; returns (milliseconds per pass, peak MiB above what was in use).
  auto measure = [&](const std::function<Tensor()>& pass) {
    Sum(pass()).Backward();  // warm-up: the allocator's cache and the BLAS buffers
    ResetPeakBytes();
    const double before = static_cast<double>(GetAllocatorStats().bytes_in_use);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < reps; ++i) Sum(pass()).Backward();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
        static_cast<double>(reps);
    const double peak = static_cast<double>(GetAllocatorStats().peak_bytes_in_use);
    return std::pair<double, double>{ms, (peak - before) / (1024.0 * 1024.0)};
  };
  std::vector<AttentionCost> rows;
  for (int64_t side : sides) {
    ATTEND_CHECK(side >= 1 && side <= 1024, "MeasureAttentionCost: side ", side,
                 " is not in 1..1024");
    AttentionCost row;
    row.side = side;
    row.pixels = side * side;
    Generator gen(7);
    attention::MultiHeadAttention mha(c.dim, c.cross_heads, gen);
    Tensor x = Tensor::Randn({1, row.pixels, c.dim}, gen).set_requires_grad(true);
    Tensor z = Tensor::Randn({1, c.latents, c.dim}, gen).set_requires_grad(true);
    Tensor w;
    std::tie(row.perceiver_ms, row.perceiver_mib) =
        measure([&] { return mha.CrossAttention(z, mha.CrossKeysValues(x), Tensor(), &w); });
    // The composed self-attention holds about five M x M arrays at once (scores, weights and
    // their gradients); past max_mib it is not run.
    const double full_mib = 5.0 * static_cast<double>(row.pixels) *
                            static_cast<double>(row.pixels) * 4.0 / (1024.0 * 1024.0);
    if (full_mib <= max_mib)
      std::tie(row.full_ms, row.full_mib) =
          measure([&] { return mha.SelfAttention(x, Tensor(), false, &w); });
    rows.push_back(row);
  }
  return rows;
}

}  // namespace attend::tasks
