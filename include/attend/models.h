// Sequence-to-sequence translation models behind one interface: the RNN encoder-decoder without
// attention (one fixed context vector), the RNN encoder-decoder with attention, and the
// Transformer. Training uses Forward (teacher forcing); translation uses Start / Step / Select,
// which decode one token at a time with everything that depends only on the source computed
// once per sentence (encoder states, projected keys, the Transformer's key/value caches).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "attend/nn.h"
#include "attend/tensor.h"

namespace attend::models {

// Token ids every vocabulary reserves (nmt::Vocabulary keeps them in these places).
struct SpecialIds {
  static constexpr int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;
};

// A padded batch of sentence pairs (token ids, i64).
struct Batch {
  Tensor src;                              // [B, S], padded with kPad
  Tensor src_lengths;                      // [B]
  Tensor tgt_in;                           // [B, T]: kBos y_1 .. y_{n}, padded with kPad
  Tensor tgt_out;                          // [B, T]: y_1 .. y_n kEos, padded with kPad
  Tensor tgt_lengths;                      // [B] (n + 1)
  int64_t src_tokens = 0, tgt_tokens = 0;  // real (non-pad) tokens
};

// Every option of every model, in one typed place; the command line and the checkpoint's
// config JSON both read it (ToJson / FromJson).
struct ModelConfig {
  std::string arch = "rnn-attention";  // rnn | rnn-attention | transformer
  int64_t src_vocab = 0, tgt_vocab = 0;
  double dropout = 0.1;
  // RNN encoder-decoder.
  std::string cell = "gru";  // gru | lstm
  int64_t embed_dim = 256;
  int64_t hidden_dim = 256;  // decoder size = encoder output (hidden_dim / 2 per direction)
  int64_t encoder_layers = 1, decoder_layers = 1;
  std::string score = "additive";  // additive | dot | general | concat | location
  int64_t attention_dim = 256;     // additive / concat
  std::string window = "global";   // global | local-m | local-p
  int64_t window_size = 5;         // D of the local windows
  int64_t max_source_len = 256;    // location score's positions
  bool input_feeding = true;
  double teacher_forcing = 1.0;  // probability of feeding the reference token in training
  // Transformer (Vaswani et al. 2017; the Annotated Transformer).
  int64_t d_model = 256, heads = 4, ff_dim = 1024, layers = 3;
  bool pre_norm = true;
  bool share_embeddings = true;  // source, target and output projection share one matrix
  int64_t max_positions = 1024;

  std::string ToJson() const;
  static ModelConfig FromJson(const std::string& json);  // throws attend::Error naming the key
  void Validate() const;                                 // throws attend::Error
};

// What one decoding step needs to keep per sentence (per beam hypothesis).
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  virtual int64_t rows() const = 0;  // hypotheses currently held
};

class Seq2Seq : public nn::Module {
 public:
  // Teacher-forced training: logits [B, T, V_tgt]. With `attention`, the decoder's attention
  // weights [B, T, S] (Transformer: last layer's cross-attention averaged over heads).
  virtual Tensor Forward(const Batch& batch, Tensor* attention = nullptr) = 0;
  // Encodes src [B, S] (lengths [B]) once and returns the state of B hypotheses.
  virtual std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& src_lengths) = 0;
  // One step: the last tokens i64 [N] of the N hypotheses -> log-probabilities [N, V_tgt];
  // with `attention`, the weights [N, S] this step put on the source.
  virtual Tensor Step(DecoderState& state, const Tensor& tokens, Tensor* attention = nullptr) = 0;
  // Keeps the hypotheses `rows` (i64 [N']; repeats allowed) in that order: beam search expands,
  // reorders and drops hypotheses with it.
  virtual void Select(DecoderState& state, const Tensor& rows) = 0;
  const ModelConfig& config() const { return config_; }

 protected:
  explicit Seq2Seq(ModelConfig config) : config_(std::move(config)) {}
  ModelConfig config_;
};

// Builds the model `config.arch` names, initialised from `gen`.
std::shared_ptr<Seq2Seq> MakeModel(const ModelConfig& config, Generator& gen);
// MakeModel requests (AllocationLimitGuard counts) at most this many bytes per byte of the
// model's tensors: initialisation draws, scales and shifts each one (tested for every
// architecture). nmt::LoadModel caps a checkpoint's model by it and the file's tensor bytes.
inline constexpr uint64_t kModelBuildFactor = 8;
// The constructors MakeModel dispatches to (src/models/rnn_seq2seq.cc, transformer.cc).
std::shared_ptr<Seq2Seq> MakeRnnSeq2Seq(const ModelConfig& config, Generator& gen);
std::shared_ptr<Seq2Seq> MakeTransformer(const ModelConfig& config, Generator& gen);

}  // namespace attend::models
