// The Perceiver (Jaegle, Gimeno, Brock, Zisserman, Vinyals and Carreira, "Perceiver: General
// Perception with Iterative Attention", ICML 2021) on Fashion-MNIST, against a small CNN at a
// similar parameter count (src/tasks/perceiver.cc; the program is examples/tasks/perceiver.cc).
//
// Each pixel is one element of the input array: its value and the Fourier features of its
// position (x, y), both scaled to [-1, 1]: per axis [p, sin(f_1 pi p) .. sin(f_K pi p),
// cos(f_1 pi p) .. cos(f_K pi p)], with the K frequencies f_k equally spaced from 1 to mu / 2
// (mu = max_freq, by default the image side: the Nyquist frequency of its grid), as the paper
// does. The array [M = S * S, 1 + 2 (2K + 1)] is projected to D by a linear layer.
//
// N learned latents [N, D] read it with a cross-attention block, then L latent self-attention
// blocks follow; every block is pre-LayerNorm:
//   z = z + Attention(LN(z), LN(x))     (cross: 1 head, as the paper; self: self_heads heads)
//   z = z + W2 GELU(W1 LN(z))          (W1: D -> mlp_ratio D)
// The pair (cross-attention, latent blocks) runs `repeats` times; as in the paper, the latent
// blocks' weights are shared by every repeat and the cross-attention's by every repeat after the
// first (cross0 reads first, cross1 every later time). Class logits: a linear layer on the mean
// over the latents of LN(z). The cost of a cross-attention is O(M N D), linear in the pixels,
// where self-attention over the pixels costs O(M^2 D).
//
// The baseline ("cnn"): conv 3x3 (c) ReLU, max-pool 2 | conv 3x3 (2c) ReLU, max-pool 2 |
// conv 3x3 (4c) ReLU | mean over the cells | linear (padding 1; any side that is a multiple of 4).
//
// Parameter names (checkpoints store them): latents, input_proj.*, cross0.{norm_q, norm_kv,
// attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, norm_mlp, fc1, fc2}.*, cross1.* (when
// repeats > 1), self0.{norm_q, attn, norm_mlp, fc1, fc2}.* .. self<L-1>.*, norm_out.*, head.*;
// the CNN: conv1.* .. conv3.*, head.*.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "attend/tensor.h"
#include "attend/train.h"

namespace attend::tasks {

struct PerceiverConfig {
  std::string model = "perceiver";  // perceiver | cnn
  int64_t image_size = 28;          // the side S the 28 x 28 images are resized to
  int64_t classes = 10;
  // Perceiver
  int64_t latents = 32;  // N
  int64_t dim = 64;      // D
  int64_t cross_heads = 1;
  int64_t self_heads = 4;
  int64_t self_layers = 2;  // L
  int64_t repeats = 1;
  int64_t bands = 8;      // K Fourier frequencies per axis
  double max_freq = 0.0;  // mu; 0 = image_size
  int64_t mlp_ratio = 2;
  // CNN
  int64_t cnn_channels = 32;  // c (32: 94k parameters, the Perceiver's default 106k)

  bool perceiver() const { return model == "perceiver"; }
  double MaxFreq() const { return max_freq > 0 ? max_freq : static_cast<double>(image_size); }
  int64_t InputFeatures() const { return 1 + 2 * (2 * bands + 1); }
  std::string ToJson() const;
  void Validate() const;  // attend::Error naming the option
};

// The Fourier features of the positions of a height x width grid, row-major (pixel (x, y) at row
// y * width + x): [H * W, 2 (2K + 1)], the y axis's 2K + 1 features then the x axis's, each as
// the header says. A constant of the grid (nothing is learned).
Tensor FourierPositionFeatures(int64_t height, int64_t width, int64_t bands, double max_freq,
                               DType dtype = DType::kF32);

// One pre-LayerNorm block: attention of the latents over `inputs` (cross) or over themselves
// (self), then the MLP, both with residuals.
class PerceiverBlock : public nn::Module {
 public:
  PerceiverBlock(int64_t dim, int64_t heads, int64_t mlp_ratio, bool cross, Generator& gen,
                 DType dtype = DType::kF32);
  // z [B, N, D]; inputs [B, M, D] for a cross block (ignored by a self block). `weights`: the
  // attention weights averaged over heads, [B, N, M] (cross) or [B, N, N] (self).
  Tensor Forward(const Tensor& z, const Tensor& inputs, Tensor* weights = nullptr);

  bool cross;
  std::shared_ptr<nn::LayerNormModule> norm_q, norm_kv, norm_mlp;
  std::shared_ptr<attention::MultiHeadAttention> attn;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// What the task trains: images [B, S, S] (values in [0, 1]) to class logits [B, classes].
class ImageModel : public nn::Module {
 public:
  // `cross_weights` (Perceiver only; left undefined by the CNN): the first cross-attention's
  // weights [B, N, S * S].
  virtual Tensor Logits(const Tensor& images, Tensor* cross_weights = nullptr) = 0;
};

class Perceiver : public ImageModel {
 public:
  Perceiver(const PerceiverConfig& config, Generator& gen, DType dtype = DType::kF32);
  Tensor Logits(const Tensor& images, Tensor* cross_weights = nullptr) override;
  // The input array projected to D: [B, S * S, D].
  Tensor InputArray(const Tensor& images) const;

  PerceiverConfig config;
  Tensor latents;    // [N, D]
  Tensor positions;  // FourierPositionFeatures of the grid (not a parameter)
  std::shared_ptr<nn::Linear> input_proj, head;
  std::vector<std::shared_ptr<PerceiverBlock>> cross, self;
  std::shared_ptr<nn::LayerNormModule> norm_out;
};

class SmallCnn : public ImageModel {
 public:
  SmallCnn(const PerceiverConfig& config, Generator& gen, DType dtype = DType::kF32);
  Tensor Logits(const Tensor& images, Tensor* cross_weights = nullptr) override;

  std::shared_ptr<nn::Conv2dModule> conv1, conv2, conv3;
  std::shared_ptr<nn::Linear> head;
};

std::shared_ptr<ImageModel> MakePerceiverTaskModel(const PerceiverConfig& config, Generator& gen,
                                                   DType dtype = DType::kF32);

// ---- data: Fashion-MNIST (Debian's dataset-fashion-mnist) ----

struct PerceiverDataOptions {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  // Train: the first 55,000 images of the train file, dev: its last 5,000, test: the 10,000 of
  // the t10k file. A size below a split's full size takes a subset drawn from `seed` (in the
  // file's order); 0 = the whole split.
  int64_t train_size = 0, dev_size = 0, test_size = 0;
  uint64_t seed = 1;
};

// 28 x 28 images as the files hold them; resized when a batch is made.
struct ImageSplit {
  std::vector<uint8_t> pixels;      // image i at i * 784
  std::vector<int64_t> labels;      // 0..9
  std::vector<int64_t> file_index;  // the image's index in its IDX file
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

struct PerceiverData {
  ImageSplit train, dev, test;
};

// attend::Error for sizes out of range and (from vision::LoadFashionMnist, naming the file) for
// missing or corrupt files.
PerceiverData LoadPerceiverData(const PerceiverDataOptions& options);

// Images `rows` of `split` at side `size` (vision::Resize when not 28), [B, size, size] in [0, 1].
Tensor ImagesOf(const ImageSplit& split, const std::vector<int64_t>& rows, int64_t size,
                DType dtype = DType::kF32);
Tensor LabelsOf(const ImageSplit& split, const std::vector<int64_t>& rows);

// ---- the task ----

class PerceiverTask : public train::Task {
 public:
  PerceiverTask(const PerceiverConfig& config, std::shared_ptr<const PerceiverData> data,
                uint64_t init_seed, int64_t eval_batch = 100);
  nn::Module& Model() override { return *model_; }
  ImageModel& Classifier() { return *model_; }
  int64_t NumTrain() const override { return data_->train.size(); }
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;  // dev accuracy (%)
  std::string ConfigJson() const override { return config_.ToJson(); }
  std::string Describe() const override;
  std::string Unit() const override { return "images"; }

  // Accuracy (%) and mean cross-entropy over a split, in eval batches (no gradient).
  std::pair<double, double> Score(const ImageSplit& split);
  const PerceiverConfig& config() const { return config_; }

 private:
  PerceiverConfig config_;
  std::shared_ptr<const PerceiverData> data_;
  std::shared_ptr<ImageModel> model_;
  int64_t eval_batch_;
};

// perceiver-attention.png: one row per image of `rows` (from `split`): the image, then the
// first cross-attention's weights of `shown` latents as maps of the image's grid (the latents
// whose weights are the most concentrated, lowest mean entropy over these images), each map
// scaled to its own maximum (white 0, dark red the maximum), `zoom` pixels per image pixel.
void DrawPerceiverAttention(const std::string& path, Perceiver& model, const ImageSplit& split,
                            const std::vector<int64_t>& rows, int64_t shown, int64_t zoom = 3);

// ---- cost as the input grows ----

struct AttentionCost {
  int64_t side = 0, pixels = 0;
  double perceiver_ms = 0, full_ms = -1;    // forward + backward per image; -1 = not run
  double perceiver_mib = 0, full_mib = -1;  // peak tensor memory of the layer's pass
};

// For each side: one cross-attention block of N latents over the S * S pixel array (D wide, 1
// head) and one MultiHeadAttention layer of self-attention over the same array, forward and
// backward on a batch of one, timed over `reps` passes after one warm-up, the weights
// materialised (the composed path, not the fused kernel, so the memory is the attention's own).
// Full self-attention is skipped (full_ms = -1) where its S^4 weights would pass max_mib.
std::vector<AttentionCost> MeasureAttentionCost(const PerceiverConfig& config,
                                                const std::vector<int64_t>& sides, int64_t reps,
                                                double max_mib);

}  // namespace attend::tasks
