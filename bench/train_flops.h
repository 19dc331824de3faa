// The FLOPs of one training step (forward + backward) of the translation models, counted from the
// model's configuration and the batch's actual shape, GEMM by GEMM as the code runs them. Used by
// bench/bench_nmt.cc (MFU of BM_TrainStep), bench/bench_flops.cc (the FLOPs of `attend train`'s
// batches, for bench/translation_compare.sh) and tests/bench/train_flops_check.cc, which counts
// the GEMMs a real step calls and fails when this formula drifts from them.
//
// The formula (docs/results.md, "Issue 20"):
//   - a GEMM of m x n x k is 2 m n k FLOPs; its backward is twice that (the input's gradient and
//     the weight's, each a GEMM of the same size), except where the code skips one (below);
//   - embeddings, biases, activations, dropout, LayerNorm, softmax, the loss and Adam count zero
//     (elementwise: together well under 2 % of a step at these sizes);
//   - attention: the scores and contexts are GEMMs (dot products: q k^T and w v, per batch entry
//     and head, over the padded lengths, causal ones in full as the composition computes them);
//     the additive score v^T tanh(W q + U k) counts its projections as GEMMs and 3 A FLOPs per
//     (query, key) pair (an add and a multiply-add per attention unit; tanh not counted),
//     backward twice that;
//   - the output layer is one GEMM of (B T) x V x hidden, T the padded target length.
// RNN (arch rnn | rnn-attention, the Luong wiring): the encoder's GEMMs cover only the real source
// positions (the recurrent op packs the sequences, so R = the sum of the source lengths): per
// layer and direction the input projection R x G H x in, the recurrent product of every step but
// the first (no initial state: R - B rows forward, R - n_max reverse, n_max the sources as long as
// the longest), and in backward the input's and the input weights' gradients (R rows each), the
// recurrent weights' gradient (R rows) and the state's gradient (the same rows as forward). The
// decoder runs every padded target step on all B rows (G = 3 for a GRU, 4 for an LSTM).
// Transformer: everything on the padded [B, S] and [B, T].
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/models.h"
#include "attend/tensor.h"

namespace attend::bench {

// A batch as the formula reads it: B sentences, padded source length S, padded target length T
// (tgt_in's: the longest target + 1 for bos), and each source's real length.
struct BatchShape {
  int64_t batch = 0, src_len = 0, tgt_len = 0;
  std::vector<int64_t> src_lengths;
};

inline BatchShape ShapeOf(const models::Batch& b) {
  BatchShape s;
  s.batch = b.src.size(0);
  s.src_len = b.src.size(1);
  s.tgt_len = b.tgt_in.size(1);
  s.src_lengths = b.src_lengths.ToVector<int64_t>();
  return s;
}

// B sentences of one source length and one target length (tgt_len = the target tokens + 1).
inline BatchShape UniformShape(int64_t batch, int64_t src_len, int64_t tgt_len) {
  return BatchShape{batch, src_len, tgt_len,
                    std::vector<int64_t>(static_cast<size_t>(batch), src_len)};
}

struct FlopPart {
  const char* name;
  double forward = 0.0, backward = 0.0;
  double total() const { return forward + backward; }
};

struct StepFlops {
  // encoder: the encoder's layers (RNN: recurrent layers and the bridge; Transformer: projections
  // and feed-forward of the encoder layers). decoder: the same for the decoder (the RNN's combine
  // layer; the Transformer's cross-attention keys and values). attention: scores and contexts
  // (with the RNN scores' own projections). output: the output layer.
  FlopPart encoder{"encoder"}, decoder{"decoder"}, attention{"attention"}, output{"output"};
  // The GEMMs alone (what tests/bench/train_flops_check.cc counts in a real step).
  double gemm_forward = 0.0, gemm_backward = 0.0;
  std::vector<const FlopPart*> parts() const { return {&encoder, &decoder, &attention, &output}; }
  double forward() const {
    return encoder.forward + decoder.forward + attention.forward + output.forward;
  }
  double backward() const {
    return encoder.backward + decoder.backward + attention.backward + output.backward;
  }
  double total() const { return forward() + backward(); }
};

namespace detail {

struct Counter {
  StepFlops f;
  static double Gemm(int64_t m, int64_t n, int64_t k) {
    return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  }
  // A forward GEMM and its usual backward (two GEMMs of the same size).
  void Linear(FlopPart& p, int64_t m, int64_t n, int64_t k, int64_t times = 1) {
    Forward(p, m, n, k, times);
    Backward(p, m, n, k, 2 * times);
  }
  void Forward(FlopPart& p, int64_t m, int64_t n, int64_t k, int64_t times = 1) {
    const double x = static_cast<double>(times) * Gemm(m, n, k);
    p.forward += x;
    f.gemm_forward += x;
  }
  void Backward(FlopPart& p, int64_t m, int64_t n, int64_t k, int64_t times = 1) {
    const double x = static_cast<double>(times) * Gemm(m, n, k);
    p.backward += x;
    f.gemm_backward += x;
  }
};

// One bidirectional (or not) recurrent layer over packed rows: src lengths `len`, input width
// `in`, hidden `h` per direction, G gates.
inline void PackedRecurrentLayer(Counter& c, FlopPart& p, const std::vector<int64_t>& len,
                                 int directions, int64_t in, int64_t h, int64_t gates) {
  int64_t rows = 0, longest = 0;
  for (int64_t l : len) {
    rows += l;
    longest = std::max(longest, l);
  }
  const auto batch = static_cast<int64_t>(len.size());
  const auto at_longest = static_cast<int64_t>(std::count(len.begin(), len.end(), longest));
  const int64_t g = gates * h;
  for (int d = 0; d < directions; ++d) {
    // The first step a direction processes has no state to multiply (zero initial state): the
    // forward direction's first step holds all B sequences, the reverse one's the longest.
    const int64_t recurrent_rows = rows - (d == 0 ? batch : at_longest);
    c.Forward(p, rows, g, in);            // x W_ih^T over the packed rows
    c.Forward(p, recurrent_rows, g, h);   // h W_hh^T, step by step
    c.Backward(p, recurrent_rows, h, g);  // dh += dg W_hh (not for the first step: no h0 grad)
    c.Backward(p, rows, in, g);           // dx = dg W_ih
    c.Backward(p, g, in, rows);           // dW_ih = dg^T x
    c.Backward(p, g, h, rows);            // dW_hh = dg^T h_prev (all rows)
  }
}

inline StepFlops Rnn(const models::ModelConfig& cfg, const BatchShape& b) {
  using models::Score;
  ATTEND_CHECK(cfg.wiring == models::Wiring::kLuong,
               "TrainStepFlops: only the Luong wiring is counted, not ",
               models::NameOf(cfg.wiring));
  ATTEND_CHECK(cfg.cell == models::Cell::kGru || cfg.cell == models::Cell::kLstm,
               "TrainStepFlops: only GRU and LSTM cells are counted");
  const bool attention = cfg.arch == models::Arch::kRnnAttention;
  ATTEND_CHECK(cfg.encoder_self_attention == models::SelfAttend::kNone && cfg.token_source() &&
                   cfg.teacher_forcing >= 1.0 &&
                   !(attention && cfg.window == models::Window::kLocalP),
               "TrainStepFlops: encoder self-attention, speech, scheduled sampling and local-p "
               "windows are not counted");
  ATTEND_CHECK(!attention || cfg.score == Score::kAdditive || cfg.score == Score::kDot ||
                   cfg.score == Score::kGeneral,
               "TrainStepFlops: only the additive, dot and general scores are counted, not ",
               models::NameOf(cfg.score));
  Counter c;
  StepFlops& f = c.f;
  const int64_t B = b.batch, S = b.src_len, T = b.tgt_len, E = cfg.embed_dim, H = cfg.hidden_dim;
  const int64_t A = cfg.attention_dim, V = cfg.tgt_vocab;
  const int64_t gates = cfg.cell == models::Cell::kLstm ? 4 : 3;
  // Encoder: bidirectional, H / 2 per direction.
  for (int64_t l = 0; l < cfg.encoder_layers; ++l)
    PackedRecurrentLayer(c, f.encoder, b.src_lengths, 2, l == 0 ? E : H, H / 2, gates);
  c.Linear(f.encoder, B, H, H);  // the bridge, tanh(W [h_fwd; h_bwd])
  // Decoder: one step per padded target position, all B rows (the state is given: no step is
  // skipped). Input feeding reads [y; h~] every step.
  const bool feeding = cfg.input_feeding;
  for (int64_t l = 0; l < cfg.decoder_layers; ++l) {
    const int64_t in = l == 0 ? E + (feeding ? H : 0) : H;
    c.Linear(f.decoder, B * T, gates * H, in);  // x W_ih^T
    c.Linear(f.decoder, B * T, gates * H, H);   // h W_hh^T
  }
  c.Linear(f.decoder, B * T, H, 2 * H);  // combine: tanh(W_c [c; s]), H + H wide
  if (attention) {
    // Keys prepared once per batch over the padded [B, S]; the query projected per step.
    if (cfg.score == Score::kAdditive) {
      c.Linear(f.attention, B * S, A, H);  // U k (key_proj)
      c.Linear(f.attention, B * T, A, H);  // W q (query_proj)
      const double pairs = static_cast<double>(B) * T * S;
      f.attention.forward += 3.0 * A * pairs;  // v^T tanh(Wq + Uk): add + multiply-add per unit
      f.attention.backward += 6.0 * A * pairs;
    } else {
      if (cfg.score == Score::kGeneral) c.Linear(f.attention, B * S, H, H);  // W k
      c.Linear(f.attention, T, S, H, B);                                     // q k^T, per sentence
    }
    c.Linear(f.attention, T, H, S, B);  // context = w memory, per sentence
  }
  c.Linear(f.output, B * T, V, H);
  return f;
}

inline StepFlops Transformer(const models::ModelConfig& cfg, const BatchShape& b) {
  ATTEND_CHECK(!cfg.transparent, "TrainStepFlops: transparent attention is not counted");
  Counter c;
  StepFlops& f = c.f;
  const int64_t B = b.batch, S = b.src_len, T = b.tgt_len, d = cfg.d_model, F = cfg.ff_dim;
  const int64_t V = cfg.tgt_vocab;
  // Scores q k^T and contexts w v for queries tq over keys tk, all heads: 2 GEMMs of
  // 2 tq tk d FLOPs in all (per batch entry and head: tq x tk x d/h and tq x d/h x tk).
  auto attend = [&](int64_t tq, int64_t tk) {
    c.Linear(f.attention, tq, tk, d / cfg.heads, B * cfg.heads);
    c.Linear(f.attention, tq, d / cfg.heads, tk, B * cfg.heads);
  };
  for (int64_t l = 0; l < cfg.layers; ++l) {
    c.Linear(f.encoder, B * S, 3 * d, d);  // q, k, v in one GEMM
    attend(S, S);
    c.Linear(f.encoder, B * S, d, d);  // out_proj
    c.Linear(f.encoder, B * S, F, d);  // linear1
    c.Linear(f.encoder, B * S, d, F);  // linear2
  }
  for (int64_t l = 0; l < cfg.DecoderDepth(); ++l) {
    c.Linear(f.decoder, B * T, 3 * d, d);  // self-attention q, k, v
    attend(T, T);                          // causal: computed in full
    c.Linear(f.decoder, B * T, d, d);      // out_proj
    c.Linear(f.decoder, B * S, 2 * d, d);  // cross-attention keys and values of the memory
    c.Linear(f.decoder, B * T, d, d);      // cross-attention queries
    attend(T, S);
    c.Linear(f.decoder, B * T, d, d);  // out_proj
    c.Linear(f.decoder, B * T, F, d);  // linear1
    c.Linear(f.decoder, B * T, d, F);  // linear2
  }
  c.Linear(f.output, B * T, V, d);  // the shared embedding matrix transposed (or the output layer)
  return f;
}

}  // namespace detail

// The FLOPs of one training step of `config` on a batch of `shape`. Throws attend::Error for a
// configuration the formula does not cover (it names the option).
inline StepFlops TrainStepFlops(const models::ModelConfig& config, const BatchShape& shape) {
  ATTEND_CHECK(shape.batch > 0 && shape.src_len > 0 && shape.tgt_len > 0 &&
                   static_cast<int64_t>(shape.src_lengths.size()) == shape.batch,
               "TrainStepFlops: the batch shape needs B, S, T > 0 and B source lengths");
  switch (config.arch) {
    case models::Arch::kRnn:
    case models::Arch::kRnnAttention: return detail::Rnn(config, shape);
    case models::Arch::kTransformer: return detail::Transformer(config, shape);
    default: break;
  }
  ATTEND_CHECK(false, "TrainStepFlops: arch ", models::NameOf(config.arch), " is not counted");
  return {};
}

}  // namespace attend::bench
