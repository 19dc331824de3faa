// One training loop for every system that is not a sequence-to-sequence model (the catalogue's
// document classifiers, sentence-pair matchers, memory networks, image models, ...): a task says
// what its model is, what the loss of a batch of training examples is and how the dev set is
// scored; TrainTask does the rest the same way for all of them: shuffled batches, Adam with a
// linear warm-up then inverse square root decay, gradient clipping, logging with a progress bar,
// validation, best/last checkpoints written atomically, early stopping, and an exact resume.
//
// The translation, speech and captioning trainer (attend/nmt.h) and the image classifier's
// (attend/classify.h) predate this one; they keep their own loops for now.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/nn.h"

namespace attend::train {

// A validation's result. `score` orders checkpoints: higher is better (accuracy, F1, mIoU, the
// negative of an error rate); `loss` is the mean training loss over the dev set (0 if the task has
// none); `text` is the line the log prints ("acc 91.20 | f1 88.05").
struct TaskEval {
  double score = 0.0;
  double loss = 0.0;
  std::string text;
};

// What a system gives the trainer. The training set is fixed and indexed 0 .. NumTrain() - 1;
// a batch is a list of those indices. Every call is made with the model in the mode it needs
// (Loss in training mode, Evaluate in eval mode under a no-grad scope).
class Task {
 public:
  virtual ~Task() = default;
  virtual nn::Module& Model() = 0;
  virtual int64_t NumTrain() const = 0;
  // The scalar loss of the training examples `rows`, a mean over them, with its graph.
  virtual Tensor Loss(const std::vector<int64_t>& rows) = 0;
  // Scores the dev set.
  virtual TaskEval Evaluate() = 0;
  // The model's and the data's configuration as a JSON object: written into every checkpoint
  // ("task"), and a resumed run refuses a checkpoint whose configuration differs.
  virtual std::string ConfigJson() const = 0;
  // One line for the log's head: "HAN (word and sentence attention), 6 classes".
  virtual std::string Describe() const = 0;
  // What the throughput counts: "examples" by default, or tokens, pixels, ... with their count.
  virtual std::string Unit() const { return "examples"; }
  virtual double UnitsOf(const std::vector<int64_t>& rows) const {
    return static_cast<double>(rows.size());
  }
};

struct TaskTrainOptions {
  std::string out_dir = "model";  // best.ckpt, last.ckpt, train.log
  int64_t batch_size = 32;
  double lr = 1e-3;                       // peak learning rate (Adam)
  int64_t warmup = 100;                   // steps of linear warm-up, then lr * sqrt(warmup / step)
  double clip_norm = 1.0;                 // 0 = no clipping
  int64_t max_steps = 0, max_epochs = 0;  // 0 = no limit (one of the three must be set)
  double max_minutes = 0.0;
  int64_t valid_every = 500;  // steps between validations (and at the end)
  int64_t patience = 0;       // validations without a better score; 0 = off
  uint64_t seed = 1;          // the batches' shuffle, per epoch from (seed, epoch)
  int threads = 0;            // 0 = leave the thread count as it is
  bool progress = true;       // the progress bar on stderr (when it is a terminal)
  int64_t log_every = 50;
};

struct TaskTrainSummary {
  int64_t steps = 0, epochs_started = 0;
  double best_score = 0.0;  // best.ckpt's dev score
  double seconds = 0.0;
  double units_per_second = 0.0;  // over training steps only (no validation)
  TaskEval last;                  // the last validation
  // The mean training loss of each logged window (this run's steps only): (step, loss).
  std::vector<std::pair<int64_t, double>> curve;
  std::string stop_reason;
};

// Trains task.Model() as the header describes. With `resume`, continues out_dir/last.ckpt
// exactly: a run resumed at any validation ends with the same last.ckpt, bit for bit, as an
// uninterrupted one (the task's own random streams must be buffers of its model). attend::Error
// for bad options, an empty training set, a non-finite loss (naming the step), a checkpoint of
// another configuration.
TaskTrainSummary TrainTask(Task& task, const TaskTrainOptions& options, bool resume);

// Loads the weights of a checkpoint written by TrainTask into `model` and returns the task's
// configuration recorded in it (the JSON object Task::ConfigJson gave). attend::Error naming the
// file when it is not such a checkpoint or its tensors do not fit the model.
std::string LoadTaskCheckpoint(const std::string& path, nn::Module& model);

// Minibatches of 0 .. n-1 for one epoch: a permutation drawn from (seed, epoch) alone, cut into
// batches of batch_size (the last may be shorter).
std::vector<std::vector<int64_t>> ShuffledBatches(int64_t n, int64_t batch_size, uint64_t seed,
                                                  int64_t epoch);

// "12m05s", "1h02m"; "?" for a negative or infinite time.
std::string FormatDuration(double seconds);

// Lines to a log file (appended) and stderr, and a progress bar on stderr when it is a terminal.
class Logger {
 public:
  Logger(const std::string& path, bool progress);
  void Line(const std::string& s);  // a line in the file and on stderr
  void Bar(const std::string& s);   // replaces the progress bar
  void ClearBar();

 private:
  std::ofstream file_;
  bool progress_, bar_shown_ = false;
};

}  // namespace attend::train
