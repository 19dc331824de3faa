// Recurrent modules GRUCell, LSTMCell, GRU and LSTM (src/nn/rnn.cc), with PyTorch's parameter
// names, shapes, gate order and packed-sequence semantics, over the fused layer op RnnLayer
// (attend/ops/rnn.h).
#pragma once

#include <cstdint>
#include <vector>

#include "attend/nn.h"
#include "attend/ops/rnn.h"
#include "attend/tensor.h"

namespace attend {
namespace nn {

struct RnnOptions {
  int64_t num_layers = 1;
  bool bidirectional = false;
  bool bias = true;
  // Dropout on the outputs of every layer but the last, in training mode only (as PyTorch).
  double dropout = 0.0;
  uint64_t dropout_seed = 0;  // seeds the module's own generator for the dropout masks
  bool batch_first = true;    // x [B, T, in]; false: [T, B, in] (and output [T, B, D*H])
  DType dtype = DType::kF32;
};

// Parameters and the stacked forward shared by GRU and LSTM. Parameters are registered in
// PyTorch's order and names: per layer k, per direction (suffix "_reverse" for the second):
// weight_ih_l{k} [G*H, in_k], weight_hh_l{k} [G*H, H], bias_ih_l{k}, bias_hh_l{k} [G*H], with
// in_0 = input_size and in_k = D*H after, all drawn from U(-1/sqrt(H), 1/sqrt(H)).
class RnnBase : public Module {
 public:
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  int num_directions() const { return options_.bidirectional ? 2 : 1; }
  const RnnOptions& options() const { return options_; }
  // weight_ih, weight_hh, bias_ih, bias_hh of layer `layer`, direction `dir` (biases undefined
  // without bias).
  Tensor weight_ih(int64_t layer, int dir) const { return w_ih_[Slot(layer, dir)]; }
  Tensor weight_hh(int64_t layer, int dir) const { return w_hh_[Slot(layer, dir)]; }
  Tensor bias_ih(int64_t layer, int dir) const { return b_ih_[Slot(layer, dir)]; }
  Tensor bias_hh(int64_t layer, int dir) const { return b_hh_[Slot(layer, dir)]; }
  Generator& dropout_generator() { return dropout_gen_; }

 protected:
  RnnBase(RnnMode mode, int64_t input_size, int64_t hidden_size, Generator& gen,
          const RnnOptions& options);
  // Runs every layer; h_n and c_n come back [L*D, B, H] (c_n undefined for a GRU).
  RnnLayerOutput Run(const Tensor& x, const Tensor& lengths, const Tensor& h0, const Tensor& c0);

 private:
  size_t Slot(int64_t layer, int dir) const;
  RnnMode mode_;
  int64_t input_size_, hidden_size_;
  RnnOptions options_;
  std::vector<Tensor> w_ih_, w_hh_, b_ih_, b_hh_;  // index layer * D + direction
  Generator dropout_gen_;
};

// Multi-layer GRU, as torch.nn.GRU.
class GRU : public RnnBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, Generator& gen, const RnnOptions& options = {});
  struct Output {
    Tensor output;  // [B, T, D*H] (batch_first) or [T, B, D*H]; zero at padded steps
    Tensor h_n;     // [L*D, B, H]
  };
  // x [B, T, in] (or [T, B, in] without batch_first); lengths i64 [B] in [1, T] or undefined;
  // h0 [L*D, B, H] or undefined (zeros).
  Output Forward(const Tensor& x, const Tensor& lengths = Tensor(), const Tensor& h0 = Tensor());
};

// Multi-layer LSTM, as torch.nn.LSTM (no projections).
class LSTM : public RnnBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, Generator& gen, const RnnOptions& options = {});
  struct Output {
    Tensor output;  // [B, T, D*H] (batch_first) or [T, B, D*H]; zero at padded steps
    Tensor h_n;     // [L*D, B, H]
    Tensor c_n;     // [L*D, B, H]
  };
  // As GRU::Forward, with the initial cell state c0 [L*D, B, H] (h0 and c0 are independent:
  // either may be given alone).
  Output Forward(const Tensor& x, const Tensor& lengths = Tensor(), const Tensor& h0 = Tensor(),
                 const Tensor& c0 = Tensor());
};

// A unidirectional GRU or LSTM (all layers) run one step at a time on weights packed once
// (PrepackedLinear), for decoding: the same arithmetic as the module in eval mode, without its
// per-call weight copies (or in bf16 / int8, as PrepackedLinear). Inference only (no gradient);
// it does not follow later changes to the module's weights.
class PrepackedRecurrentStep {
 public:
  PrepackedRecurrentStep() = default;
  explicit PrepackedRecurrentStep(const RnnBase& rnn, Precision precision = Precision::kF32);
  bool defined() const { return !ih_.empty(); }
  // x [N, in]; *h (and *c for an LSTM) [L, N, H] are replaced by the states after the step.
  // Returns the top layer's new hidden state [N, H].
  Tensor Step(const Tensor& x, Tensor* h, Tensor* c) const;

 private:
  bool lstm_ = false;
  int64_t hidden_ = 0;
  std::vector<PrepackedLinear> ih_, hh_;  // per layer, biases folded in
};

// A GRU or LSTM (every layer, one or both directions) run over whole sequences on weights
// packed once (PrepackedLinear), for an encoder at translation time in bf16 / int8: the
// arithmetic of the module's Forward in eval mode, packed-sequence semantics included (each
// sequence's reverse direction starts from zero at its own last step; padded steps output
// zero). Each direction's input projection is one product over all steps. Inference only.
class PrepackedRecurrent {
 public:
  PrepackedRecurrent() = default;
  PrepackedRecurrent(const RnnBase& rnn, Precision precision);
  bool defined() const { return !ih_.empty(); }
  // x [B, T, in] (batch first, as the module's default), lengths i64 [B] in [1, T] or undefined
  // (all T). Returns the output [B, T, D*H]; *h_n (and *c_n for an LSTM; either may be null)
  // become the final states [L*D, B, H].
  Tensor Forward(const Tensor& x, const Tensor& lengths, Tensor* h_n, Tensor* c_n) const;

 private:
  bool lstm_ = false;
  int directions_ = 1;
  int64_t hidden_ = 0;
  std::vector<PrepackedLinear> ih_, hh_;  // index layer * directions + direction, biases folded
};

// One GRU step, as torch.nn.GRUCell: parameters weight_ih [3H, in], weight_hh [3H, H],
// bias_ih, bias_hh [3H].
class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, Generator& gen, bool bias = true,
          DType dtype = DType::kF32);
  // x [B, in] or [in]; h [B, H] or [H] (undefined = zeros) -> h' of the same rank as x.
  Tensor Forward(const Tensor& x, const Tensor& h = Tensor()) const;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
  int64_t input_size, hidden_size;
};

// One LSTM step, as torch.nn.LSTMCell: parameters weight_ih [4H, in], weight_hh [4H, H],
// bias_ih, bias_hh [4H].
class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, Generator& gen, bool bias = true,
           DType dtype = DType::kF32);
  // x [B, in] or [in]; h, c [B, H] or [H] (undefined = zeros) -> (h', c').
  std::pair<Tensor, Tensor> Forward(const Tensor& x, const Tensor& h = Tensor(),
                                    const Tensor& c = Tensor()) const;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
  int64_t input_size, hidden_size;
};

}  // namespace nn
}  // namespace attend
