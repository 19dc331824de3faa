// Sparse Attentive Backtracking (Ke et al. 2018) on long-range tasks, against an LSTM trained with
// full backpropagation through time and one trained with truncated BPTT: the data (the copy task
// over a long gap, built from a seed; pixel-by-pixel Fashion-MNIST), the three models, the task
// the one trainer (attend/train.h) runs, the measurement of a training step's time and memory,
// and the picture of which memories the attending steps chose (src/tasks/sab.cc).
//
// SAB keeps the hidden state of every katt-th step as a memory; at those steps the state attends
// to the ktop best-scoring memories only (sparse weights) and adds their summary. The recurrent
// path is truncated every ktrunc steps, so credit for an event far back reaches it only through
// the few memories attention picked: the paper's "backtracking" along sparse skip connections.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention_models.h"
#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "attend/tensor.h"
#include "attend/train.h"

namespace attend::tasks {

// ---- the copy task over a long gap ----------------------------------------------------------

// A sequence is kSabCopySymbols symbols from an alphabet of kSabAlphabet, then `gap` blank steps,
// a delimiter, and kSabCopySymbols blank steps during which the model must write the symbols back
// in order. One-hot inputs: channels 0..7 the symbols, 8 the blank, 9 the delimiter.
inline constexpr int64_t kSabCopySymbols = 10;
inline constexpr int64_t kSabAlphabet = 8;
inline constexpr int64_t kSabBlank = kSabAlphabet;          // input channel 8
inline constexpr int64_t kSabDelimiter = kSabAlphabet + 1;  // input channel 9
inline constexpr int64_t kSabCopyInputs = kSabAlphabet + 2;

struct SabCopyOptions {
  int64_t gap = 100;  // T blank steps between the symbols and the delimiter
  int64_t train_size = 4000, dev_size = 200, test_size = 500;
  uint64_t seed = 1;
};

// Per split, the symbols (0..7) of each sequence, kSabCopySymbols per sequence.
struct SabCopySet {
  std::vector<std::vector<uint8_t>> symbols;
  int64_t size() const { return static_cast<int64_t>(symbols.size()); }
};
struct SabCopyData {
  int64_t gap = 0;
  SabCopySet train, dev, test;
};

// The three splits from options.seed alone (mt19937_64, fixed by the standard): no sequence in two
// splits (dev drawn first, then test, then train, a repeat drawn again). attend::Error for a gap
// or a size that is not positive.
SabCopyData BuildSabCopyData(const SabCopyOptions& options);
// The number of steps of a copy sequence: symbols, gap, delimiter, output phase.
inline int64_t SabCopySteps(int64_t gap) { return 2 * kSabCopySymbols + gap + 1; }

// ---- pixel-by-pixel Fashion-MNIST -----------------------------------------------------------

struct SabPixelOptions {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int64_t image_size = 28;  // 28 (784 steps) or smaller (area-averaged, image_size^2 steps)
  int64_t train_size = 10000, dev_size = 1000, test_size = 2000;
};
// Images as normalised pixels, one per step in row-major order.
struct SabPixelSet {
  std::vector<float> pixels;  // size() * side * side
  std::vector<int64_t> labels;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};
struct SabPixelData {
  int64_t side = 28;
  SabPixelSet train, dev, test;
};
// Train: the first train_size images of the training file; dev: its last dev_size images (never
// among the first 50,000, so train and dev are disjoint); test: the first test_size images of the
// test file. attend::Error for sizes out of range, an image size outside 4..28, missing files.
SabPixelData LoadSabPixelData(const SabPixelOptions& options);

// ---- batches ----------------------------------------------------------------------------------

// What a model reads and what it is scored on: input [B, T, C]; the targets i64 [B * T] (row-major
// over batch and step) with -1 at the steps that are not scored.
struct SabBatch {
  Tensor input;
  Tensor target;
  int64_t classes = 0;
};
SabBatch MakeSabCopyBatch(const SabCopyData& data, const SabCopySet& set,
                          const std::vector<int64_t>& rows, DType dtype = DType::kF32);
// Scored at the last step only.
SabBatch MakeSabPixelBatch(const SabPixelData& data, const SabPixelSet& set,
                           const std::vector<int64_t>& rows, DType dtype = DType::kF32);

// ---- the models -------------------------------------------------------------------------------

struct SabConfig {
  std::string task = "copy";  // copy | pixels
  std::string model = "sab";  // sab | lstm-full | lstm-truncated
  int64_t hidden = 128;
  int64_t ktop = 5, katt = 10, ktrunc = 10;
  uint64_t init_seed = 1;
};

// A recurrent layer and a Linear readout of every step's state: input [B, T, C] -> logits
// [B, T, classes]. `weights` (when asked and the model attends) gets SAB's weights per attending
// step, and `steps` their time steps.
class SabModel : public nn::Module {
 public:
  SabModel(const SabConfig& config, int64_t inputs, int64_t classes, Generator& gen,
           DType dtype = DType::kF32);
  Tensor Forward(const Tensor& input, std::vector<Tensor>* weights = nullptr,
                 std::vector<int64_t>* steps = nullptr) const;
  const SabConfig& config() const { return config_; }

 private:
  SabConfig config_;
  std::shared_ptr<attention::SparseAttentiveBacktracking> sab_;  // model sab ("sab.*")
  std::shared_ptr<nn::LSTM> lstm_;                               // the LSTMs ("lstm.*")
  std::shared_ptr<nn::Linear> readout_;                          // "readout.*"
};

// Truncated BPTT over an LSTM: the sequence runs in chunks of ktrunc steps, each starting from
// the previous chunk's final state detached, so that no gradient crosses a chunk's border. The
// values are those of the untruncated LSTM. x [B, T, in] -> [B, T, H].
Tensor TruncatedLstm(nn::LSTM& lstm, const Tensor& x, int64_t ktrunc);

// ---- task, evaluation, measurement, pictures --------------------------------------------------

// The copy task or the pixel task for the trainer: the loss is the cross-entropy over the scored
// steps; the dev score the accuracy over them, in percent.
class SabTask : public train::Task {
 public:
  SabTask(const SabConfig& config, const SabCopyOptions& copy, const SabPixelOptions& pixels);
  nn::Module& Model() override { return *model_; }
  SabModel& model() { return *model_; }
  int64_t NumTrain() const override;
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;
  std::string ConfigJson() const override;
  std::string Describe() const override;
  std::string Unit() const override { return "steps"; }
  double UnitsOf(const std::vector<int64_t>& rows) const override;
  // A batch of split "train", "dev" or "test".
  SabBatch Batch(const std::string& split, const std::vector<int64_t>& rows) const;
  int64_t SplitSize(const std::string& split) const;
  const SabConfig& config() const { return config_; }

 private:
  SabConfig config_;
  SabCopyOptions copy_options_;
  SabPixelOptions pixel_options_;
  SabCopyData copy_;
  SabPixelData pixels_;
  std::shared_ptr<SabModel> model_;
};

struct SabScore {
  double accuracy = 0.0;  // percent of the scored steps whose argmax is the target
  double loss = 0.0;      // mean cross-entropy over them
};
// Scores a split in batches (no gradient; call with the model in eval mode).
SabScore EvaluateSab(SabTask& task, const std::string& split, int64_t batch_size = 100);

// The cost of one training step (forward, loss, backward) on the training rows `rows`, measured
// `repeats` times after one untimed warm-up: the median wall time, and the peak of the engine's
// allocator (bytes of tensors in use) during the step above what was in use before it, i.e. the
// activations kept for backward and the gradients, without parameters and optimizer state.
struct SabStepCost {
  double ms_per_step = 0.0;
  double peak_mib = 0.0;
};
SabStepCost MeasureSabStep(SabTask& task, const std::vector<int64_t>& rows, int repeats = 7);

// "sab-attention.png" in out_dir for test sequence `row`: one row per attending step, one column
// per memory (labelled by the step that stored it), the sparse weights from white 0 to black 1.
// Returns the path, or "" for a model without attention.
std::string DrawSabAttention(SabTask& task, int64_t row, const std::string& out_dir);

}  // namespace attend::tasks
