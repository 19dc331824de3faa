// SENet on Fashion-MNIST (Hu et al. 2018, "Squeeze-and-Excitation Networks"): a small CNN
// classifier whose every stage ends in a squeeze-and-excitation block (attention::
// SqueezeExcitation), against the same CNN without it; the data split, the model, the task the
// one trainer runs (attend/train.h), the evaluation with the mean excitation per class and
// channel, and its picture. The program is examples/tasks/senet.cc (build/attend-senet).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention_models.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "attend/train.h"

namespace attend::tasks {

// ---- data ----

// One split: 28 x 28 gray images as bytes (image i at pixels[i * 784]), labels 0..9, and where
// each image came from (its index in the IDX file `source`).
struct SenetSplit {
  std::string source;  // "train" (train-images-idx3-ubyte.gz) or "test" (t10k-...)
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  std::vector<int64_t> source_index;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

inline constexpr int64_t kSenetSide = 28;
inline constexpr int64_t kSenetTrainImages =
    55000;  // the first 55,000 of the 60,000; dev: the rest
inline constexpr int64_t kSenetClasses = 10;

struct SenetData {
  SenetSplit train, dev, test;
};

// train = the first min(train_size, 55,000) training images (train_size 0: all 55,000), dev = the
// last 5,000 training images, test = the 10,000 test images; no randomness, so every run on every
// machine sees the same splits. attend::Error for a negative or too large train_size, and (from
// vision::LoadFashionMnist, naming the file) for a missing directory or a broken file.
SenetData LoadSenetData(const std::string& dir, int64_t train_size = 0);

// Images rows of `split` as the model's input, f32 [rows, 1, 28, 28]: pixel / 255 standardised
// by the Fashion-MNIST training set's pixel mean and standard deviation (fixed constants, so a
// --train-size subset is scaled as the full set is). attend::Error for a row outside the split.
Tensor SenetImages(const SenetSplit& split, const std::vector<int64_t>& rows);
Tensor SenetLabels(const SenetSplit& split, const std::vector<int64_t>& rows);  // i64 [rows]

// ---- model ----

struct SenetConfig {
  std::vector<int64_t> channels = {32, 64, 128};  // one convolution stage per entry
  int64_t reduction = 4;                          // r: an SE block's hidden layer has C / r units
  bool channel_attention = true;                  // false: the same CNN without the SE blocks
  std::string Json() const;                       // {"channels": [...], "reduction": r, ...}
  std::string Describe() const;
};

// Stage k: conv 3x3 (padding 1) -> ReLU -> squeeze-and-excitation -> 2x2 max-pool (every stage
// but the last); then global average pooling and a linear classifier over 10 classes. The SE
// block rescales each channel of the stage's output by s = sigmoid(W2 relu(W1 z)), z the
// channel's spatial mean (Hu et al. 2018, eqs. 2-4); without channel attention the stage output
// goes to the pool as it is. Parameters: conv<k>, se<k> (fc1, fc2), classifier, k = 1, 2, ...;
// the convolutions start from He initialisation (N(0, 2 / fan_in), zero bias).
class SenetModel : public nn::Module {
 public:
  SenetModel(const SenetConfig& config, Generator& gen, DType dtype = DType::kF32);
  struct Output {
    Tensor logits;              // [B, 10]
    std::vector<Tensor> gates;  // per SE block, its excitation s [B, C_k]; empty without SE
  };
  // x [B, 1, H, W], H and W >= 2^(stages - 1) (28 x 28 for Fashion-MNIST).
  Output Forward(const Tensor& x) const;
  const SenetConfig& config() const { return config_; }

  std::vector<std::shared_ptr<nn::Conv2dModule>> convs;
  std::vector<std::shared_ptr<attention::SqueezeExcitation>> se;  // empty without SE
  std::shared_ptr<nn::Linear> classifier;

 private:
  SenetConfig config_;
};

// ---- evaluation ----

struct SenetEvaluation {
  int64_t images = 0, correct = 0;
  double accuracy = 0.0;              // percent
  double loss = 0.0;                  // mean cross-entropy
  std::vector<int64_t> class_counts;  // images per true class
  // gate_means[k][c * C_k + j]: the mean excitation of SE block k's channel j over the images of
  // true class c (empty without SE).
  std::vector<std::vector<double>> gate_means;
};

// Runs `model` (in eval mode, without gradients) over every image of `split` in batches.
SenetEvaluation EvaluateSenet(SenetModel& model, const SenetSplit& split, int64_t batch_size = 500);

// se-weights.png (one heatmap per SE block, stacked: rows the 10 class names, columns the block's
// channels, shade the mean excitation from 0 white to 1 dark) and se-weights.tsv (block, class,
// channel, mean excitation) in `out_dir`, both written atomically. attend::Error when the
// evaluation has no gates (a model without SE).
void WriteSenetPictures(const std::string& out_dir, const SenetEvaluation& evaluation);

// ---- the task the trainer runs ----

class SenetTask : public train::Task {
 public:
  // `data` must outlive the task; the model is drawn from `seed`.
  SenetTask(const SenetData& data, const SenetConfig& config, uint64_t seed);
  nn::Module& Model() override { return *model_; }
  SenetModel& model() { return *model_; }
  int64_t NumTrain() const override { return data_.train.size(); }
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;  // dev accuracy
  std::string ConfigJson() const override;
  std::string Describe() const override;
  std::string Unit() const override { return "images"; }

 private:
  const SenetData& data_;
  std::shared_ptr<SenetModel> model_;
};

}  // namespace attend::tasks
