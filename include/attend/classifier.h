// Image classifiers (src/models/classifier.cc): a plain CNN, and the Recurrent Attention CNN
// (RA-CNN, Fu, Zheng and Mei, CVPR 2017), which looks again at a zoomed region of the image that
// an attention proposal network chooses, and learns where to look from the classification and
// ranking losses alone (no boxes in training).
//
// Scale s (1, 2, 3) has its own CNN and classifier; every CNN has the same layout:
//   conv 3x3 (k) ReLU, max-pool 2 | conv 3x3 (2k) ReLU, max-pool 2 | conv 3x3 (4k) ReLU,
//   max-pool 2 | conv 3x3 (4k) ReLU    (k = base_channels, padding 1, so side / 8 cells remain)
// and its features are the mean of the last map over the cells, followed by a linear classifier.
//
// RA-CNN: the attention proposal network (APN) after scale s reads scale s's last feature map,
// averaged down to 6 x 6 cells (so its size does not depend on the image's), flattened, through
// two fully connected layers (apn_hidden units with tanh, then 3) and a sigmoid per output:
//   t_x = side * a_x, t_y = side * a_y, t_l = side * (box_min + (box_max - box_min) * a_l)
// in the pixel coordinates of scale s's input (side = its side; attend/ops/image.h's box
// convention: centre t_x, t_y and half side t_l, pixel centres at p + 0.5). The next scale reads
//   CropZoom(X_s * BoxcarMask(box, side, side, mask_k), box, zoom_size, zoom_size),
// X_1 being the image and X_s the previous crop, so both the mask and the crop pass gradients to
// the box. Scale 3 zooms into scale 2's crop; its box is also reported in the image's coordinates.
//
// The loss is the sum over scales of the cross-entropy plus, for each pair of consecutive scales,
// the ranking loss max(0, p_t(s) - p_t(s + 1) + ranking_margin), p_t being the softmax
// probability of the true class. The coarser scale's p_t is held constant in that term: its
// gradient would make the coarser classifier less sure, which RA-CNN avoids by training the APN
// and the classifiers in turn; here they train together and the ranking term pushes only the
// finer scale (through its CNN and the APNs before it).
//
// The combined prediction is the mean of the scales' softmax probabilities (RA-CNN fuses the
// scales' features with another classifier; the mean needs no extra training and is never worse
// than the scales' average). "cnn" is scale 1 alone, the same network: the baseline at an equal
// training budget.
//
// Parameter names (checkpoints store them): scale1.conv1.weight .. scale1.conv4.bias,
// scale1.head.weight/bias, apn1.fc1.weight .. apn1.fc2.bias (the APN proposing scale 2's box),
// scale2.*, apn2.*, scale3.*.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/models.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "attend/tensor.h"

namespace attend::models {

struct ClassifierConfig {
  std::string arch = "racnn";  // "cnn" | "racnn"
  int64_t image_size = 96;     // square images, a multiple of 8
  int64_t channels = 1;        // 1 (gray) or 3 (RGB)
  int64_t classes = 10;
  int64_t base_channels = 16;  // k: the first convolution's channels (then 2k, 4k, 4k)
  int64_t scales = 2;          // RA-CNN: 2 or 3 (cnn: 1 whatever this says)
  int64_t zoom_size = 48;      // side of every zoomed crop, a multiple of 8
  double mask_k = 10.0;        // sharpness of the boxcar mask's edges (per pixel)
  double ranking_margin = 0.05;
  int64_t apn_hidden = 64;
  // The half side t_l as a fraction of the side it is proposed on: [box_min, box_max].
  double box_min = 0.1, box_max = 0.5;

  // Calls f(const OptionInfo&, member&) for every option, in the order of the command line
  // (`attend train --task classify` spells them --name-with-dashes).
  template <typename Config, typename F>
  static void ForEachOption(Config& c, F&& f) {
    f(OptionInfo{"arch", "Classifier: cnn | racnn"}, c.arch);
    f(OptionInfo{"image_size", "Image side in pixels (a multiple of 8)"}, c.image_size);
    f(OptionInfo{"channels", "Image channels: 1 (gray) or 3 (RGB)"}, c.channels);
    f(OptionInfo{"classes", nullptr}, c.classes);
    f(OptionInfo{"base_channels", "Channels of each CNN's first convolution"}, c.base_channels);
    f(OptionInfo{"scales", "RA-CNN scales: 2 or 3"}, c.scales);
    f(OptionInfo{"zoom_size", "RA-CNN: side of the zoomed crops (a multiple of 8)"}, c.zoom_size);
    f(OptionInfo{"mask_k", "RA-CNN: sharpness of the attention mask's edges"}, c.mask_k);
    f(OptionInfo{"ranking_margin", "RA-CNN: margin of the ranking loss"}, c.ranking_margin);
    f(OptionInfo{"apn_hidden", "RA-CNN: hidden units of the attention proposal network"},
      c.apn_hidden);
    f(OptionInfo{"box_min", "RA-CNN: smallest half side, as a fraction of the side"}, c.box_min);
    f(OptionInfo{"box_max", "RA-CNN: largest half side, as a fraction of the side"}, c.box_max);
  }

  bool racnn() const { return arch == "racnn"; }
  int64_t NumScales() const { return racnn() ? scales : 1; }
  // The side of scale s's input (1-based): the image, then the crops.
  int64_t SideOf(int64_t scale) const { return scale == 1 ? image_size : zoom_size; }

  std::string ToJson() const;
  static ClassifierConfig FromJson(const std::string& json);  // throws attend::Error naming the key
  void Validate() const;                                      // throws attend::Error
};

struct ClassifierOutput {
  std::vector<Tensor> logits;  // per scale: [B, classes]
  // Per scale >= 2 (index s - 2): the box scale s looked at, [B, 3] = (t_x, t_y, t_l) in the
  // input image's pixels, and the same box in the coordinates of the previous scale's input
  // (what the APN proposed and the crop used).
  std::vector<Tensor> boxes, local_boxes;
  std::vector<Tensor> crops;  // per scale >= 2: [B, C, zoom_size, zoom_size], what it read
  // The combined prediction: the mean of the scales' softmax, [B, classes] (no gradient).
  Tensor Probabilities() const;
};

// The terms of one loss, for logging (plain numbers, mean over the batch).
struct ClassifierLossTerms {
  std::vector<double> cross_entropy;  // per scale
  double ranking = 0;                 // summed over the scale pairs
};

class ImageClassifier : public nn::Module {
 public:
  // Initialised from gen; dtype f32 for training, f64 for gradient checks.
  ImageClassifier(const ClassifierConfig& config, Generator& gen, DType dtype = DType::kF32);

  // images [B, C, H, W] of the model's dtype, values in [0, 1], H = W = image_size.
  ClassifierOutput Forward(const Tensor& images);
  // labels i64 [B] in [0, classes): the scalar loss of the header's comment, mean over the batch.
  // hold_coarser = false lets the ranking term's gradient reach the coarser scale as well (the
  // plain gradient of the same value; the tests check it against finite differences).
  Tensor Loss(const ClassifierOutput& output, const Tensor& labels,
              ClassifierLossTerms* terms = nullptr, bool hold_coarser = true) const;

  const ClassifierConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }

 private:
  struct Scale;
  struct Proposal;
  ClassifierConfig config_;
  DType dtype_;
  std::vector<std::shared_ptr<Scale>> scales_;
  std::vector<std::shared_ptr<Proposal>> apns_;
};

}  // namespace attend::models
