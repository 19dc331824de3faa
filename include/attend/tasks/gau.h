// Global Attention Upsample (GAU; Li et al. 2018, "Pyramid Attention Network for Semantic
// Segmentation", sec. 3.2) in a small segmentation network, against the same network whose
// decoder adds the low-level features without the global channel weights; the scenes (Fashion-
// MNIST items on a canvas, every pixel labelled with its item's class), the model, the task the
// one trainer runs (attend/train.h), the evaluation (mean IoU, pixel accuracy) and the picture of
// a few test scenes. The program is examples/tasks/gau.cc (build/attend-gau).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "attend/train.h"

namespace attend::tasks {

// ---- data ----

inline constexpr int64_t kGauItemSide = 28;  // a Fashion-MNIST image
inline constexpr int64_t kGauClasses = 11;   // background (0) and the 10 item classes (+ 1)
// Training images 0 .. 54,999 fill the training scenes, 55,000 .. 59,999 the dev scenes; the
// test scenes take their items from the 10,000 test images.
inline constexpr int64_t kGauTrainPool = 55000;

struct GauDataOptions {
  int64_t canvas = 64;        // side of a square scene, at least 28 (one item fits)
  int64_t train_size = 4000;  // scenes per split
  int64_t dev_size = 500;
  int64_t test_size = 1000;
  int64_t max_items = 3;  // each scene holds 1 .. max_items items
  // An item's mask: its pixels brighter than this (of 255). 16 keeps the dark inner parts of
  // dark garments (0.46 of an item's pixels on average) and drops the faint halo.
  int64_t threshold = 16;
  uint64_t seed = 1;  // the scenes' draws (items, positions), apart from the trainer's seed
  std::string Json() const;
};

// One split of scenes: gray canvases and per-pixel labels as bytes (scene i at i * side * side),
// and for each scene the items drawn, bottom to top, as indices into the source file.
struct GauSplit {
  std::string source;  // "train", "dev" or "test"
  int64_t side = 0;
  std::vector<uint8_t> images, labels;
  std::vector<std::vector<int64_t>> items;
  int64_t size() const { return static_cast<int64_t>(items.size()); }
};

struct GauData {
  GauDataOptions options;
  GauSplit train, dev, test;
};

// Draws `scenes` scenes from the item images `pool` (indices into `item_pixels`, 784 bytes an
// item, and `item_labels`): each scene holds 1 .. max_items items, the count, each item and its
// top-left corner (the item wholly inside the canvas) drawn uniformly from one random stream of
// (seed, stream). Items are laid down in order: where an item's pixel is above the threshold it
// covers what lies below (pixel and label = its class + 1); below the threshold it only
// brightens a background pixel, which stays labelled 0. attend::Error for options out of range.
GauSplit ComposeGauScenes(const std::vector<uint8_t>& item_pixels,
                          const std::vector<uint8_t>& item_labels, const std::vector<int64_t>& pool,
                          int64_t scenes, const GauDataOptions& options, uint64_t stream,
                          const std::string& source);

// The three splits from Fashion-MNIST in `dir` (vision::LoadFashionMnist: errors name the file);
// the same options give the same scenes on every machine.
GauData BuildGauData(const std::string& dir, const GauDataOptions& options);

// Scenes `rows` of `split` as the model's input, f32 [rows, 1, side, side] (pixel / 255), and
// their labels, i64 [rows, side, side]. attend::Error for a row outside the split.
Tensor GauImages(const GauSplit& split, const std::vector<int64_t>& rows);
Tensor GauLabels(const GauSplit& split, const std::vector<int64_t>& rows);

// ---- model ----

// Bilinear resizing of x [B, C, H, W] to [B, C, out_h, out_w] as PyTorch's
// F.interpolate(mode="bilinear", align_corners=False): out = A_h x A_w^T with fixed
// interpolation matrices, so it is built from Matmul and needs no op of its own.
Tensor UpsampleBilinear(const Tensor& x, int64_t out_h, int64_t out_w);
// The [out, in] matrix of that resizing along one axis, in `dtype`.
Tensor BilinearMatrix(int64_t in, int64_t out, DType dtype = DType::kF32);

struct GauConfig {
  std::vector<int64_t> channels = {16, 32, 64, 64};  // encoder stages (2x2 max-pool between)
  int64_t decoder_channels = 32;                     // D: the decoder's width at every level
  bool gau = true;  // false: the same decoder without the global channel weights (skip)
  std::string Json() const;
  std::string Describe() const;
};

// Encoder: stage k = conv 3x3 (padding 1) -> ReLU, a 2x2 max-pool before every stage but the
// first. Decoder: d = ReLU(conv 1x1 (top stage -> D)); then for each lower stage k, from the
// deepest up: low = conv 3x3 (stage k -> D), and
//   gau:  w = ReLU(conv 1x1 (global average pool of d)) [B, D]  (the paper's channel weights;
//         no batch normalisation: the library has none, and a batch of pooled vectors is small)
//         d = ReLU(bilinear up(d) + low * w)
//   skip: d = ReLU(bilinear up(d) + low)
// then a 1x1 convolution to 11 classes. The gates' biases start at 1, so w starts near 1 and
// the GAU decoder starts close to the skip one. Parameters: enc<k>, top, lateral<k>, gate<k>
// (GAU only), classifier; the 3x3 convolutions start from He initialisation.
class GauModel : public nn::Module {
 public:
  GauModel(const GauConfig& config, Generator& gen, DType dtype = DType::kF32);
  struct Output {
    Tensor logits;                // [B, 11, H, W]
    std::vector<Tensor> weights;  // per decoder level, deepest first: w [B, D]; empty for skip
  };
  Output Forward(const Tensor& x) const;  // x [B, 1, H, W]
  const GauConfig& config() const { return config_; }

  std::vector<std::shared_ptr<nn::Conv2dModule>> encoder;   // enc1 ..
  std::shared_ptr<nn::Conv2dModule> top;                    // deepest stage -> D
  std::vector<std::shared_ptr<nn::Conv2dModule>> laterals;  // lateral1 .. (stage k -> D)
  std::vector<std::shared_ptr<nn::Conv2dModule>> gates;     // gate1 .. (GAU only)
  std::shared_ptr<nn::Conv2dModule> classifier;

 private:
  GauConfig config_;
};

// The mean per-pixel cross-entropy of logits [B, 11, H, W] against labels [B, H, W].
Tensor GauPixelLoss(const Tensor& logits, const Tensor& labels);

// ---- evaluation ----

struct GauEvaluation {
  int64_t scenes = 0, pixels = 0, correct = 0;
  double pixel_accuracy = 0.0;  // percent
  double miou = 0.0;            // percent: the mean of iou over the classes with a union
  double loss = 0.0;            // mean per-pixel cross-entropy
  std::vector<int64_t> intersection, union_;  // per class, over the whole split
  std::vector<double> iou;                    // per class, percent (0 when the union is empty)
};

// Runs `model` (eval mode, no gradients) over every scene of `split` in batches.
GauEvaluation EvaluateGau(GauModel& model, const GauSplit& split, int64_t batch_size = 50);

// The predicted labels of scenes `rows` (side * side bytes each).
std::vector<uint8_t> PredictGau(GauModel& model, const GauSplit& split,
                                const std::vector<int64_t>& rows);

// gau-segmentation.png in `out_dir`: one row per scene of `rows`: the image, the true labels and
// the prediction, coloured by class (background black), each drawn at twice its size.
void WriteGauPicture(const std::string& out_dir, GauModel& model, const GauSplit& split,
                     const std::vector<int64_t>& rows);

// ---- the task the trainer runs ----

class GauTask : public train::Task {
 public:
  // `data` must outlive the task; the model is drawn from `seed`.
  GauTask(const GauData& data, const GauConfig& config, uint64_t seed);
  nn::Module& Model() override { return *model_; }
  GauModel& model() { return *model_; }
  int64_t NumTrain() const override { return data_.train.size(); }
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;  // dev mIoU
  std::string ConfigJson() const override;
  std::string Describe() const override;
  std::string Unit() const override { return "scenes"; }

 private:
  const GauData& data_;
  std::shared_ptr<GauModel> model_;
};

}  // namespace attend::tasks
