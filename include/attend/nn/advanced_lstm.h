// The Advanced LSTM of Tao and Liu (2018), "Advanced LSTM: A Study about Better Time Dependency
// Modeling in Emotion Recognition" (src/nn/advanced_lstm.cc): an LSTM whose step reads a
// softmax-weighted mix of the states of the K previous steps instead of the previous step alone.
//
// At step t of one direction, with input x_t and the K most recent states s_{t-k} = (h, c)_{t-k}
// (k = 1..K, most recent first):
//   e_k  = v . tanh(W_a h_{t-k} + U_a x_t + b_a)          (attention_dim = A wide)
//   a    = softmax_k(e)                                  (slots before the sequence excluded)
//   h~   = sum_k a_k h_{t-k},   c~ = sum_k a_k c_{t-k}
//   i, f, g, o = sigma, sigma, tanh, sigma of (W_ih x_t + b_ih + W_hh h~ + b_hh)  (PyTorch order)
//   c_t  = f * c~ + i * g,      h_t = o * tanh(c_t)
// With K = 1 the single weight is 1 and this is torch.nn.LSTM on the same weights.
//
// Before the sequence starts only the initial state exists: slots that would lie before it are
// excluded from the softmax (weight 0), so at the first step the cell reads the initial state
// alone and at step t (0-based) it weighs min(t + 1, K) real states, each once.
#pragma once

#include <cstdint>
#include <vector>

#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "attend/tensor.h"

namespace attend {
namespace nn {

struct AdvancedLstmOptions {
  int64_t history = 2;        // K >= 1: how many previous steps each step weighs
  int64_t attention_dim = 0;  // A, the width of the score's tanh layer; 0 = hidden_size
};

// Multi-layer, optionally bidirectional Advanced LSTM over padded batches, with nn::LSTM's
// options (RnnOptions: num_layers, bidirectional, bias, dropout between layers with its seed,
// batch_first, dtype). A per-step loop of autograd ops: the input projections of all steps are
// one GEMM per layer and direction, each step adds one GEMM for the gates, one for the new
// state's score projection (earlier states' projections are kept, so the K scores cost no
// further GEMM) and one batched product that mixes h and c together.
//
// Parameters per layer k and direction (suffix "_l{k}", "_l{k}_reverse" as nn::LSTM):
//   weight_ih [4H, in_k], weight_hh [4H, H], bias_ih, bias_hh [4H]   as torch.nn.LSTM
//   attn_weight_hist [A, H]   W_a, on the earlier hidden states
//   attn_weight_in [A, in_k]  U_a, on the step's input
//   attn_bias [A]             b_a (absent without bias)
//   attn_v [A]                v
// in_0 = input_size, in_k = D*H after. The LSTM's own parameters are drawn as torch.nn.LSTM's,
// U(-1/sqrt(H), 1/sqrt(H)); the attention's from U(-1/sqrt(n), 1/sqrt(n)) with n its input width
// (H for W_a and b_a, in_k for U_a, A for v).
class AdvancedLSTM : public Module {
 public:
  AdvancedLSTM(int64_t input_size, int64_t hidden_size, Generator& gen,
               const RnnOptions& options = {}, const AdvancedLstmOptions& advanced = {});

  // The recurrent state between calls. Every field is optional on input (undefined = zeros /
  // nothing yet); Forward replaces all of them with the state after each sequence's last real
  // step. Slot j of the past is the state j + 1 steps before (h, c) in that direction's order.
  struct State {
    Tensor h, c;            // [L*D, B, H]: the latest state, as nn::LSTM's h_n, c_n
    Tensor past_h, past_c;  // [K-1, L*D, B, H]: the K-1 states before it, most recent first
                            // (always undefined when K = 1)
    Tensor past_count;      // i64 [B]: how many past slots hold real states, in [0, K-1]
    // Keeps the rows `rows` (i64 [N], any order, repeats allowed) of every defined field: beam
    // search's reordering.
    void SelectRows(const Tensor& rows);
  };

  // x [B, T, in] (batch_first) or [T, B, in]; lengths i64 [B] in [1, T] or undefined (all T);
  // state in/out or nullptr (zeros in, nothing out). Returns the output [B, T, D*H] (or
  // [T, B, D*H]), zero at padded steps. Past-the-end steps do not change a sequence's state, and
  // the reverse direction starts at each sequence's last real step, as nn::LSTM.
  // attention (optional) receives L*D tensors, index layer * D + direction, each [B, T, K]
  // (batch_first) or [T, B, K]: the weights a of each step over its K slots (slot k-1 = the state
  // k steps earlier in that direction's order), zero at excluded slots and at padded steps.
  Tensor Forward(const Tensor& x, const Tensor& lengths = Tensor(), State* state = nullptr,
                 std::vector<Tensor>* attention = nullptr);

  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  int64_t history() const { return history_; }
  int64_t attention_dim() const { return attention_dim_; }
  int num_directions() const { return options_.bidirectional ? 2 : 1; }
  const RnnOptions& options() const { return options_; }
  Generator& dropout_generator() { return dropout_gen_; }

  // The parameters of layer `layer`, direction `dir` (biases undefined without bias).
  struct Weights {
    Tensor w_ih, w_hh, b_ih, b_hh;                 // the LSTM's
    Tensor attn_hist, attn_in, attn_bias, attn_v;  // the score's
  };
  const Weights& weights(int64_t layer, int dir) const;

 private:
  int64_t input_size_, hidden_size_, history_, attention_dim_;
  RnnOptions options_;
  std::vector<Weights> weights_;  // index layer * D + direction
  Generator dropout_gen_;
};

}  // namespace nn
}  // namespace attend
