// Attention inside larger structures: self-attention with a learned context vector and the
// Hierarchical Attention Network, Sparse Attentive Backtracking, stacked latent attention,
// transparent attention, squeeze-and-excitation, and image-captioning attention.
#pragma once

#include <memory>
#include <vector>

#include "attend/attention.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"
#include "attend/nn/rnn.h"

namespace attend::attention {

// Yang et al. 2016: u_t = tanh(W h_t + b), alpha = softmax_t(u_t . u_w), s = sum_t alpha_t h_t.
// h [B, T, D], mask bool [B, T] (true = padding) -> context [B, 1, D], weights [B, 1, T].
class ContextAttention : public nn::Module {
 public:
  ContextAttention(int64_t dim, int64_t attn_dim, Generator& gen, DType dtype = DType::kF32);
  Attended Forward(const Tensor& h, const Tensor& mask = Tensor()) const;
  std::shared_ptr<nn::Linear> proj;  // W, b
  Tensor context_vector;             // u_w [attn_dim]
};

// The Hierarchical Attention Network (Yang et al. 2016): words -> bidirectional GRU -> word
// attention -> sentence vectors -> bidirectional GRU -> sentence attention -> document vector.
class HierarchicalAttentionNetwork : public nn::Module {
 public:
  HierarchicalAttentionNetwork(int64_t vocab, int64_t embed_dim, int64_t word_hidden,
                               int64_t sentence_hidden, int64_t attn_dim, Generator& gen,
                               int64_t padding_idx = 0, DType dtype = DType::kF32);
  struct Output {
    Tensor document;          // [B, 2 * sentence_hidden]
    Tensor word_weights;      // [B, S, W] (all zero for absent sentences)
    Tensor sentence_weights;  // [B, S]
  };
  // words i64 [B, S, W]; word_lengths i64 [B, S] (0 for absent sentences); sentence_counts
  // i64 [B] (>= 1).
  Output Forward(const Tensor& words, const Tensor& word_lengths,
                 const Tensor& sentence_counts) const;
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::GRU> word_rnn, sentence_rnn;
  std::shared_ptr<ContextAttention> word_attention, sentence_attention;
};

// Sparse Attentive Backtracking (Ke et al. 2018) as a recurrent layer: an LSTM whose hidden state
// at every katt-th step is stored as a memory; at those steps the current state attends (concat
// score) to the ktop most relevant memories with sparse top-k weights and adds the summary to its
// hidden state. The recurrent path is truncated every ktrunc steps (the carried state is
// detached), while gradients still reach old states through the sparse attention.
class SparseAttentiveBacktracking : public nn::Module {
 public:
  SparseAttentiveBacktracking(int64_t input_size, int64_t hidden_size, int64_t ktop, int64_t katt,
                              int64_t ktrunc, Generator& gen, DType dtype = DType::kF32);
  struct Output {
    Tensor output;                // [B, T, H]
    std::vector<Tensor> weights;  // per attending step: [B, 1, M] over the memories so far
    std::vector<int64_t> steps;   // the time step of each entry of `weights`
  };
  Output Forward(const Tensor& x) const;  // x [B, T, in]
  std::shared_ptr<nn::LSTMCell> cell;
  std::shared_ptr<ConcatScore> score;
  int64_t ktop, katt, ktrunc;
};

// Stacked latent attention: L additive attention layers over the same keys. Layer l scores with
// the latent z_l = U_l k_j + W_l c_{l-1} (+ z_{l-1}, the skip path that carries the previous
// layer's pre-softmax latent forward), e_l = v_l^T tanh(z_l), c_l = sum_j softmax(e_l)_j k_j;
// c_0 is the query.
class StackedLatentAttention : public nn::Module {
 public:
  StackedLatentAttention(int64_t query_dim, int64_t key_dim, int64_t attn_dim, int num_layers,
                         Generator& gen, DType dtype = DType::kF32);
  struct Output {
    Tensor context;               // [B, Tq, Dk], the last layer's
    std::vector<Tensor> weights;  // per layer [B, Tq, Tk]
  };
  Output Forward(const Tensor& query, const Tensor& keys, const Tensor& mask = Tensor()) const;
  std::vector<std::shared_ptr<nn::Linear>> key_proj, query_proj;
  std::vector<Tensor> v;
};

// Transparent attention (Bapna et al. 2018): decoder layer i reads a softmax-weighted mix of all
// encoder layers (embeddings included), mix_i = sum_j softmax(s_i)_j h_j, s learned [D, E].
class TransparentAttention : public nn::Module {
 public:
  TransparentAttention(int num_encoder_layers, int num_decoder_layers, DType dtype = DType::kF32);
  // encoder_layers: E tensors [B, T, D]. Returns one memory [B, T, D] per decoder layer.
  std::vector<Tensor> Forward(const std::vector<Tensor>& encoder_layers) const;
  Tensor MixWeights() const;  // softmax(s): [num_decoder_layers, num_encoder_layers]
  Tensor logits;              // s
};

// Squeeze-and-excitation (Hu et al. 2018): s = sigmoid(W2 relu(W1 mean_spatial(x))),
// y = x * s per channel. x [B, C, ...] -> y of the same shape; channel weights s [B, C].
class SqueezeExcitation : public nn::Module {
 public:
  SqueezeExcitation(int64_t channels, int64_t reduction, Generator& gen, DType dtype = DType::kF32);
  Tensor Forward(const Tensor& x) const { return ForwardWithWeights(x).first; }
  std::pair<Tensor, Tensor> ForwardWithWeights(const Tensor& x) const;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// A small CNN with channel attention, the way SENet uses it: two blocks of conv 3x3 -> ReLU ->
// squeeze-and-excitation (the second after a 2x2 max-pool), global average pooling, a linear
// classifier. x [B, C_in, H, W] -> logits [B, classes] and each block's channel weights [B, C].
class SeCnn : public nn::Module {
 public:
  SeCnn(int64_t in_channels, int64_t channels1, int64_t channels2, int64_t num_classes,
        int64_t reduction, Generator& gen, DType dtype = DType::kF32);
  struct Output {
    Tensor logits;
    std::vector<Tensor> channel_weights;
  };
  Output Forward(const Tensor& x) const;
  std::shared_ptr<nn::Conv2dModule> conv1, conv2;
  std::shared_ptr<SqueezeExcitation> se1, se2;
  std::shared_ptr<nn::Linear> classifier;
};

// Show, Attend and Tell: a decoder state attends over the H x W grid of a CNN's feature map
// (additive score), with the paper's gate beta = sigmoid(f_beta(h)) on the context.
class ImageAttention : public nn::Module {
 public:
  ImageAttention(int64_t feature_dim, int64_t hidden_dim, int64_t attn_dim, Generator& gen,
                 bool gate = true, DType dtype = DType::kF32);
  struct Prepared {
    Tensor annotations;  // [B, H*W, C]
    Tensor keys;         // projected once per image: [B, H*W, A]
    int64_t height = 0, width = 0;
  };
  Prepared Prepare(const Tensor& features) const;  // features [B, C, H, W]
  // h [B, hidden] -> context [B, 1, C], weights [B, 1, H*W] (view as [B, H, W] to draw).
  Attended Step(const Prepared& p, const Tensor& h) const;
  std::shared_ptr<AdditiveScore> score;
  std::shared_ptr<nn::Linear> gate;  // f_beta, null without the gate
};

}  // namespace attend::attention
