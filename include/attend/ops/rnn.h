// The fused recurrent layer op: one GRU or LSTM layer over a batch of padded sequences, in one or
// two directions, with a hand-written backward (src/ops/rnn_cell.cc). The modules over it (GRU,
// LSTM, the cells) are in attend/nn/rnn.h.
#pragma once

#include <vector>

#include "attend/tensor.h"

namespace attend {

enum class RnnMode { kLstm, kGru };

// The three results of one recurrent layer. They are views of a single recorded output, so one
// backward pass covers any combination of them.
struct RnnLayerOutput {
  Tensor output;  // [B, T, D*H]: the hidden state of each direction at each step, 0 at padding
  Tensor h_n;     // [D, B, H]: each sequence's final hidden state per direction
  Tensor c_n;     // [D, B, H]: the final cell states (LSTM only; undefined for a GRU)
};

// One layer of a GRU or LSTM over a batch of padded sequences, in D = w_ih.size() directions
// (1, or 2 for forward and reverse), as one op with a hand-written backward:
//   x          [B, T, in]     batch-first input (any strides)
//   w_ih[d]    [G*H, in]      G = 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n), as PyTorch
//   w_hh[d]    [G*H, H]
//   b_ih[d], b_hh[d]  [G*H]   undefined when the layer has no bias (all or none)
//   h0, c0     [D, B, H]      initial states; undefined = zeros (c0: LSTM only)
//   lengths    i64 [B]        each sequence's length in [1, T]; undefined = all T
// As torch with pack_padded_sequence(enforce_sorted=False): sequence b is updated only at its
// steps t < lengths[b]; the output is zero at the other steps, the final state is the state
// after the last valid step, and the reverse direction starts from h0 at step lengths[b] - 1.
// Inside, sequences are packed as PyTorch's PackedSequence (sorted by length, padding never
// computed), the input projections of all steps are one GEMM per direction, each step is one
// GEMM for W_hh h plus one fused gate kernel, and the recurrence runs as independent units
// (directions, then ranges of sequences) on separate threads without per-step barriers.
RnnLayerOutput RnnLayer(RnnMode mode, const Tensor& x, const std::vector<Tensor>& w_ih,
                        const std::vector<Tensor>& w_hh, const std::vector<Tensor>& b_ih,
                        const std::vector<Tensor>& b_hh, const Tensor& h0 = Tensor(),
                        const Tensor& c0 = Tensor(), const Tensor& lengths = Tensor());

}  // namespace attend
