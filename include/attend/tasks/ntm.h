// The Neural Turing Machine (Graves, Wayne and Danihelka 2014) on the copy task, against an LSTM
// without memory: the data (random binary sequences, built from a seed), the two models, the
// task the one trainer (attend/train.h) runs, the bit-error evaluation per sequence length, and
// the pictures of the heads' weights over time (src/tasks/ntm.cc).
//
// The NTM's heads attend over every memory location at every step ("we focus everywhere, just to
// different extents"): content addressing (cosine similarity with a strength), interpolation with
// the previous weights, a circular shift and a sharpening, the four steps of the paper's
// section 3.3, composed from the engine's differentiable ops.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "attend/tensor.h"
#include "attend/train.h"

namespace attend::tasks {

// ---- the copy task ----------------------------------------------------------------------------

// Each sequence is `length` random vectors of kCopyBits bits. The model sees the vectors, then a
// delimiter (its own input channel), then nothing, and must write the vectors back in order.
inline constexpr int64_t kCopyBits = 8;
inline constexpr int64_t kCopyInputs = kCopyBits + 1;  // the bits and the delimiter channel

struct CopySet {
  std::vector<int64_t> lengths;
  std::vector<std::vector<uint8_t>> bits;  // per sequence, length * kCopyBits values 0/1
  int64_t size() const { return static_cast<int64_t>(lengths.size()); }
};

struct CopyData {
  CopySet train, dev;
  std::vector<int64_t> test_lengths;  // one test set per length, in this order
  std::vector<CopySet> test;
};

struct CopyDataOptions {
  int64_t train_size = 20000;
  int64_t dev_size = 500;
  int64_t max_train_length = 20;  // train and dev lengths are uniform in [1, max_train_length]
  std::vector<int64_t> test_lengths = {20, 40, 60, 80};
  int64_t test_per_length = 100;
  uint64_t seed = 1;
};

// Builds the three splits from `options.seed` alone (the same sequences on every machine). No
// sequence occurs in two splits: dev is drawn first, then test, and a training draw equal to a
// dev or test sequence is drawn again (there are only 2^8 sequences of length 1). attend::Error
// for sizes or lengths that are not positive, or too few distinct short sequences to fill a split.
CopyData BuildCopyData(const CopyDataOptions& options);

// A batch of copy sequences, padded to T = 2 * max length + 1 steps. Sequence b of length L reads
// its vectors at steps 0 .. L-1 and the delimiter at step L; its targets are at steps L+1 .. 2L.
struct CopyBatch {
  Tensor input;   // f32 [B, T, kCopyInputs]
  Tensor target;  // f32 [B, T, kCopyBits], 0 outside the output phase
  Tensor mask;    // f32 [B, T, 1]: 1 at the output phase's steps
  std::vector<int64_t> lengths;
};
CopyBatch MakeCopyBatch(const CopySet& set, const std::vector<int64_t>& rows,
                        DType dtype = DType::kF32);

// Binary cross-entropy with logits, averaged over the masked bits: the training loss.
Tensor CopyLoss(const Tensor& logits, const CopyBatch& batch);
// Per sequence, the output bits that are wrong once the logits are thresholded at 0 (p = 0.5).
std::vector<int64_t> WrongBits(const Tensor& logits, const CopyBatch& batch);

// ---- NTM addressing (section 3.3) -------------------------------------------------------------

// Tensors of one head's addressing, activated as the paper asks: key [B, M]; beta [B] >= 0;
// gate [B] in [0, 1]; shift [B, 3] a distribution over the shifts (-1, 0, +1); gamma [B] >= 1.
struct HeadAddress {
  Tensor key, beta, gate, shift, gamma;
};

// The small constant inside the sharpening's log, so that a weight that rounds to 0 keeps a
// finite gradient.
inline constexpr double kSharpenEps = 1e-12;

// w~_i = sum_j w_j s(i - j) over the circular shifts -1, 0, +1: w [B, N], shift [B, 3].
Tensor CircularShift(const Tensor& w, const Tensor& shift);
// w_i = (w~_i + eps)^gamma / sum_j (w~_j + eps)^gamma: w [B, N], gamma [B].
Tensor Sharpen(const Tensor& w, const Tensor& gamma);
// The cosine's norms are sqrt(|x|^2 + kCosineEps), as attention::CosineScore takes them: a zero
// key or location gives cosine 0, not 0/0.
inline constexpr double kCosineEps = 1e-8;
// x / sqrt(|x|^2 + kCosineEps) over the last dim.
Tensor UnitRows(const Tensor& x);
// The four steps for one head: w^c = softmax(beta * cos(key, memory_i)), w^g = g w^c + (1 - g)
// prev, shift, sharpen. memory [B, N, M], prev [B, N] -> [B, N]; every row sums to 1.
// unit_memory: UnitRows(memory) when the caller has it (both heads share it), else computed.
Tensor Address(const Tensor& memory, const HeadAddress& head, const Tensor& prev,
               const Tensor& unit_memory = Tensor());

// 1 + softplus(x) for gamma, softplus(x) = relu(x) + log(1 + exp(-|x|)) (no overflow).
Tensor Softplus(const Tensor& x);

// ---- the models -------------------------------------------------------------------------------

struct NtmConfig {
  std::string controller = "ntm";  // "ntm" or "lstm" (the baseline without memory)
  int64_t memory_size = 128;       // N locations
  int64_t memory_width = 20;       // M numbers per location
  int64_t hidden = 100;            // the NTM's LSTM controller
  // The baseline LSTM's hidden size; 0 = the size whose parameter count is closest to the NTM's.
  int64_t lstm_hidden = 0;
  uint64_t init_seed = 1;
};

// The heads' weights and the memory of one run, for pictures and tests.
struct NtmTrace {
  std::vector<Tensor> read_weights, write_weights;  // per step [B, N]
};

// A model of the copy task: input [B, T, kCopyInputs] -> logits [B, T, kCopyBits].
class CopyModel : public nn::Module {
 public:
  virtual Tensor Forward(const Tensor& input, NtmTrace* trace = nullptr) = 0;
};

// The NTM: an LSTM cell controller reading [x_t; r_{t-1}], one read and one write head computed
// from its state by one Linear ("heads"), and the output Linear over [h_t; r_t]. Per step the
// read head addresses and reads the memory left by the previous step, then the write head erases
// and adds: M_i <- M_i (1 - w_i e) + w_i a. The memory starts at 1e-6 everywhere and both heads'
// weights start focused on location 0. Parameters: controller.{weight,bias}_{ih,hh},
// heads.weight [4M + 12, H], heads.bias, output.weight [8, H + M], output.bias.
class NtmModel : public CopyModel {
 public:
  NtmModel(int64_t memory_size, int64_t memory_width, int64_t hidden, Generator& gen,
           DType dtype = DType::kF32);
  Tensor Forward(const Tensor& input, NtmTrace* trace = nullptr) override;
  int64_t memory_size() const { return n_; }
  int64_t memory_width() const { return m_; }
  // The heads' raw outputs split and activated: read head first, then write head, whose erase
  // (sigmoid) and add (tanh) vectors go to *erase and *add.
  void SplitHeads(const Tensor& raw, HeadAddress* read, HeadAddress* write, Tensor* erase,
                  Tensor* add) const;

 private:
  int64_t n_, m_, hidden_;
  std::shared_ptr<nn::LSTMCell> controller_;
  std::shared_ptr<nn::Linear> heads_, output_;
};

// The baseline: one LSTM layer over the inputs and a Linear ("lstm.*", "output.*").
class LstmCopyModel : public CopyModel {
 public:
  LstmCopyModel(int64_t hidden, Generator& gen, DType dtype = DType::kF32);
  Tensor Forward(const Tensor& input, NtmTrace* trace = nullptr) override;

 private:
  std::shared_ptr<nn::LSTM> lstm_;
  std::shared_ptr<nn::Linear> output_;
};

// The LSTM hidden size whose parameter count is closest to the NTM's of that configuration.
int64_t MatchedLstmHidden(const NtmConfig& config);
std::shared_ptr<CopyModel> MakeCopyModel(const NtmConfig& config, DType dtype = DType::kF32);

// ---- task, evaluation, pictures ---------------------------------------------------------------

// The copy task for the trainer: the loss of a batch is CopyLoss; the dev score is minus the
// mean wrong bits per sequence.
class NtmCopyTask : public train::Task {
 public:
  NtmCopyTask(const NtmConfig& config, const CopyDataOptions& data);
  nn::Module& Model() override { return *model_; }
  CopyModel& copy_model() { return *model_; }
  int64_t NumTrain() const override { return data_.train.size(); }
  Tensor Loss(const std::vector<int64_t>& rows) override;
  train::TaskEval Evaluate() override;
  std::string ConfigJson() const override;
  std::string Describe() const override;
  std::string Unit() const override { return "output bits"; }
  double UnitsOf(const std::vector<int64_t>& rows) const override;
  const CopyData& data() const { return data_; }
  const NtmConfig& config() const { return config_; }

 private:
  NtmConfig config_;
  CopyDataOptions data_options_;
  CopyData data_;
  std::shared_ptr<CopyModel> model_;
};

struct CopyScore {
  double bits_per_sequence = 0.0;  // wrong bits after thresholding, mean over the sequences
  double loss = 0.0;               // CopyLoss over the whole set
};
// Scores `set` in batches of `batch_size` (no gradient; call with the model in eval mode).
CopyScore EvaluateCopy(CopyModel& model, const CopySet& set, int64_t batch_size = 100);

// Pictures of sequence `row` of `set` into out_dir: "ntm-bits.png" (input, output probability,
// target: one column per step, one row per channel, white 0 to black 1) and, for the NTM,
// "ntm-weights.png" (write weights above read weights: one column per step, one row per memory
// location, white 0 to black 1, a red column at the delimiter). Returns the files written.
std::vector<std::string> DrawCopyPictures(CopyModel& model, const CopySet& set, int64_t row,
                                          const std::string& out_dir);

}  // namespace attend::tasks
