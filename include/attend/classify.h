// Image classification with attention (RA-CNN, attend/classifier.h) on top of the models: labelled
// images read from a listing, the trainer (Adam with warm-up, best/last checkpoints, exact
// resume, validation by accuracy per scale and where the boxes land), evaluation, and loading a
// trained classifier. `attend train --task classify` and `attend classify` are thin layers over
// these calls.
//
// Labels are class names. A listing's names are looked up in a list of names whose position is
// the label: by default the Fashion-MNIST names of vision::FashionMnistNames() (top .. boot, the
// cluttered corpus's), or the caller's own list. The list a model was trained with is recorded in
// its checkpoints ("labels" in the config), so `attend classify` prints names and reads listings
// with the model's own list.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/classifier.h"

namespace attend::nmt {

// ---- data ------------------------------------------------------------------------------------

struct LabeledImage {
  std::vector<float> pixels;  // f32 [C, H, W] in [0, 1]: config.channels x image_size^2
  int64_t label = 0;          // index into the label names
  // The item's true box (x0, y0, x1, y1; x1, y1 exclusive) in the model's pixels (the file's box
  // scaled by image_size / the image's side), when the items file lists one for this image.
  bool has_box = false;
  float box[4] = {0, 0, 0, 0};
  std::string path;  // the image file, resolved against the listing's directory
};

// Reads a listing of "image<TAB>label-name" lines (image paths relative to the listing's
// directory, or absolute), each image converted to config.channels, resized to image_size
// (vision::Resize) and scaled to [0, 1]. With items_jsonl (the corpus's <split>.items.jsonl; ""
// = none) each image's box is the box of its first item whose label is the image's label (else
// its first item); images the items file does not list have no box. `labels` gives the names by
// label (empty: vision::FashionMnistNames()); it must hold config.classes names. Images are read
// on `threads` threads (0 = the machine's cores); the order is the listing's. Errors name the file
// and line: a line without exactly one tab, an empty path, an unknown label name, an unreadable
// image (and the image file).
std::vector<LabeledImage> LoadLabeledImages(const std::string& tsv, const std::string& items_jsonl,
                                            const models::ClassifierConfig& config, int threads,
                                            const std::vector<std::string>& labels = {});

// An image as a classifier of `config` reads it (channels, size, [0, 1]).
std::vector<float> ClassifierPixels(const std::string& image_path,
                                    const models::ClassifierConfig& config);

// ---- prediction and evaluation ---------------------------------------------------------------

struct ClassifiedImage {
  int64_t label = 0;                          // argmax of the combined probabilities
  std::vector<float> probabilities;           // combined (mean of the scales' softmax) [classes]
  std::vector<std::vector<float>> per_scale;  // [scales][classes]: each scale's softmax
  std::vector<std::array<float, 3>> boxes;    // per scale >= 2: (t_x, t_y, t_l), image pixels
  std::vector<std::array<float, 3>> local;    // per scale >= 2: the same in the previous input's
  std::vector<std::vector<float>> crops;      // per scale >= 2 (with keep_crops): [C, z, z]
};

// Runs the model (eval mode, no gradients; its mode is restored) on images f32 [C, H, W] each,
// `batch_size` at a time.
std::vector<ClassifiedImage> ClassifyImages(models::ImageClassifier& model,
                                            const std::vector<const std::vector<float>*>& images,
                                            int64_t batch_size = 64, bool keep_crops = false);

// A box (t_x, t_y, t_l) as corners (x0, y0, x1, y1), clipped to the image's side.
std::array<float, 4> BoxCorners(const std::array<float, 3>& box, int64_t side);
// Intersection over union of two boxes given as corners (0 when either is empty).
double BoxIoU(const std::array<float, 4>& a, const std::array<float, 4>& b);

struct ClassifyEval {
  int64_t images = 0;
  std::vector<double> accuracy;  // per scale, in percent
  double combined = 0.0;         // accuracy of the combined prediction, in percent
  double loss = 0.0;             // the training loss (cross-entropies + ranking), mean per image
  // Per scale >= 2 (index s - 2), over the images with a true box: the mean IoU of the scale's box
  // (clipped to the image) with the true box, and the share of those with IoU >= 0.5.
  std::vector<double> iou, iou50;
  int64_t boxes = 0;  // images with a true box
  // "acc scale1 61.20 scale2 70.10 combined 72.00 | IoU scale2 0.310 (0.22 >= 0.5)".
  std::string Describe() const;
};

ClassifyEval EvaluateClassifier(models::ImageClassifier& model,
                                const std::vector<LabeledImage>& images, int64_t batch_size = 64);

// ---- training --------------------------------------------------------------------------------

struct ClassifyTrainOptions {
  std::string out_dir = "model";  // best.ckpt, last.ckpt, train.log
  int64_t batch_size = 32;
  double lr = 1e-3;      // peak learning rate (Adam)
  int64_t warmup = 200;  // steps of linear warm-up, then inverse square root decay
  double clip_norm = 1.0;
  int64_t max_steps = 0, max_epochs = 0;  // 0 = no limit (one of the three must be set)
  double max_minutes = 0.0;
  int64_t valid_every = 500;  // steps between validations (and at the end)
  int64_t patience = 0;       // validations without a better combined accuracy; 0 = off
  uint64_t seed = 1;          // the batches' shuffle, per epoch from (seed, epoch)
  int threads = 0;            // 0 = the machine's cores
  bool progress = true;       // the progress bar on stderr
  int64_t log_every = 50;
  bool hold_coarser = true;  // ImageClassifier::Loss's hold_coarser
  // The class names by label, recorded in the checkpoints (empty: vision::FashionMnistNames());
  // as many as the model's classes.
  std::vector<std::string> labels;
};

struct ClassifyTrainSummary {
  int64_t steps = 0, epochs_started = 0;
  double best_accuracy = 0.0;  // the best dev combined accuracy (best.ckpt's), percent
  double seconds = 0.0;
  double images_per_second = 0.0;  // over training steps only (no validation)
  ClassifyEval last;               // the last validation
  std::string stop_reason;
};

// Trains `model` on `train`, validating on `dev`: every step the shuffled batch's loss
// (ImageClassifier::Loss), clipped gradients, Adam (default betas) with a linear warm-up to lr
// then lr * sqrt(warmup / step). Every valid_every steps and at the end: dev accuracy per scale
// and combined, mean IoU of the boxes; best.ckpt holds the best combined accuracy, last.ckpt the
// latest state (both written atomically, with the optimizer, the schedule and where the loop
// stands). With `resume`, continues last.ckpt exactly: a run resumed at any validation ends with
// the same last.ckpt, bit for bit, as an uninterrupted one. Lines go to out_dir/train.log and
// stderr.
ClassifyTrainSummary TrainClassifier(models::ImageClassifier& model,
                                     const std::vector<LabeledImage>& train,
                                     const std::vector<LabeledImage>& dev,
                                     const ClassifyTrainOptions& options, bool resume);

// A classifier loaded from a checkpoint written by TrainClassifier.
struct LoadedClassifier {
  std::shared_ptr<models::ImageClassifier> model;  // in eval mode
  std::vector<std::string> labels;                 // the class names by label
  std::string train_json;                          // the training options recorded ("{}" if none)
};
// attend::Error naming the file for anything that is not a classifier's checkpoint (a
// translation, speech or captioning model's is named as such).
LoadedClassifier LoadClassifier(const std::string& checkpoint_path);

}  // namespace attend::nmt
