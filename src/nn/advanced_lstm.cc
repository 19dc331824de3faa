// The Advanced LSTM (Tao and Liu 2018): an LSTM step over an attention-weighted mix of the K
// previous states, run as a per-step loop of autograd ops (formulas in attend/nn/advanced_lstm.h).
#include "attend/nn/advanced_lstm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "attend/ops.h"

namespace attend::nn {

namespace {

constexpr const char* kName = "AdvancedLSTM";

// A parameter of `shape` drawn from U(-1/sqrt(n), 1/sqrt(n)).
Tensor UniformParameter(const Shape& shape, int64_t n, Generator& gen, DType dtype) {
  Tensor t = Tensor::Empty(shape, dtype);
  const double k = 1.0 / std::sqrt(static_cast<double>(n));
  init::Uniform(t, -k, k, gen);
  return t;
}

// What one direction of one layer leaves behind.
struct DirectionResult {
  Tensor output;                // [B, T, H], zero at padded steps
  Tensor history;               // [B, K, 2H]: the last K states (h | c), most recent first
  Tensor weights;               // [B, T, K], when asked for
  std::vector<int64_t> filled;  // per row, how many history slots hold real states (1..K)
};

// Runs one direction over x [B, T, in] from `history` [B, K, 2H] (slot 0 the initial state;
// `filled` real slots per row). Row b takes part only at its steps t < lengths[b]; at the others
// its state, history and fill stay as they are, and its output and weights are zero.
DirectionResult RunDirection(const AdvancedLSTM::Weights& w, const Tensor& x, bool reverse,
                             const std::vector<int64_t>& lengths, Tensor history,
                             std::vector<int64_t> filled, bool want_weights) {
  const int64_t batch = x.size(0), steps = x.size(1), hidden = w.w_hh.size(1);
  const int64_t slots = history.size(1);
  // Every step's input-side terms at once: one GEMM for the gates, one for the scores.
  Tensor x_gates = Matmul(x, w.w_ih.T());  // [B, T, 4H]
  if (w.b_ih.defined()) x_gates = x_gates + (w.b_ih + w.b_hh);
  Tensor x_score = Matmul(x, w.attn_in.T());  // [B, T, A]
  if (w.attn_bias.defined()) x_score = x_score + w.attn_bias;
  // W_a h of every history slot. Each state is projected once, when it is made, and shifts
  // along with the history, so the K scores of a step need no GEMM of their own.
  Tensor projected = Matmul(history.Narrow(2, 0, hidden), w.attn_hist.T());  // [B, K, A]
  const Tensor v = w.attn_v.Unsqueeze(1);                                    // [A, 1]
  const Tensor w_hh_t = w.w_hh.T(), w_hist_t = w.attn_hist.T();

  std::vector<Tensor> outputs(steps), weights(want_weights ? steps : 0);
  std::vector<bool> active(batch), excluded(batch * slots);
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t t = reverse ? steps - 1 - s : s;
    int64_t n_active = 0;
    bool any_excluded = false;
    for (int64_t b = 0; b < batch; ++b) {
      active[b] = t < lengths[b];
      n_active += active[b] ? 1 : 0;
      for (int64_t k = 0; k < slots; ++k) {
        excluded[b * slots + k] = k >= filled[b];
        any_excluded = any_excluded || k >= filled[b];
      }
    }
    if (n_active == 0) {  // every sequence ended before t (forward) or starts after it (reverse)
      outputs[t] = Tensor::Zeros({batch, hidden}, x.dtype());
      if (want_weights) weights[t] = Tensor::Zeros({batch, slots}, x.dtype());
      continue;
    }
    // Scores e_k = v . tanh(W_a h_{t-k} + U_a x_t + b_a) over the slots, softmax over the filled
    // ones, then the mixed state (h~ | c~) as one batched product.
    const Tensor mask = any_excluded ? Tensor::FromVector(excluded, Shape{batch, slots}) : Tensor();
    const Tensor scores =
        Matmul(Tanh(projected + x_score.Select(1, t).Unsqueeze(1)), v).Squeeze(2);  // [B, K]
    Tensor alpha = Softmax(scores, 1, mask);
    const Tensor mixed = Matmul(alpha.Unsqueeze(1), history).Squeeze(1);  // [B, 2H]
    // The LSTM step from (x_t, h~, c~), gates in PyTorch's order i, f, g, o.
    const Tensor gates = x_gates.Select(1, t) + Matmul(mixed.Narrow(1, 0, hidden), w_hh_t);
    const Tensor in_gate = Sigmoid(gates.Narrow(1, 0, hidden));
    const Tensor forget = Sigmoid(gates.Narrow(1, hidden, hidden));
    const Tensor cand = Tanh(gates.Narrow(1, 2 * hidden, hidden));
    const Tensor out_gate = Sigmoid(gates.Narrow(1, 3 * hidden, hidden));
    const Tensor c = forget * mixed.Narrow(1, hidden, hidden) + in_gate * cand;
    Tensor h = out_gate * Tanh(c);
    // The new state enters at slot 0 and the oldest leaves. With K = 1 the single weight is 1
    // whatever its score, so the new state's projection is not needed.
    Tensor next_history = Concat({h, c}, 1).Unsqueeze(1);
    Tensor next_projected = projected;
    if (slots > 1) {
      next_history = Concat({next_history, history.Narrow(1, 0, slots - 1)}, 1);
      next_projected =
          Concat({Matmul(h, w_hist_t).Unsqueeze(1), projected.Narrow(1, 0, slots - 1)}, 1);
    }
    if (n_active < batch) {
      const Tensor on = Tensor::FromVector(active, Shape{batch, 1});
      const Tensor off = LogicalNot(on);
      next_history = Where(on.Unsqueeze(2), next_history, history);
      if (slots > 1) next_projected = Where(on.Unsqueeze(2), next_projected, projected);
      h = MaskedFill(h, off, 0.0);
      alpha = MaskedFill(alpha, off, 0.0);
    }
    history = next_history;
    projected = next_projected;
    outputs[t] = h;
    if (want_weights) weights[t] = alpha;
    for (int64_t b = 0; b < batch; ++b)
      if (active[b]) filled[b] = std::min(filled[b] + 1, slots);
  }
  DirectionResult r;
  r.output = Stack(outputs, 1);
  r.history = history;
  if (want_weights) r.weights = Stack(weights, 1);
  r.filled = std::move(filled);
  return r;
}

}  // namespace

AdvancedLSTM::AdvancedLSTM(int64_t input_size, int64_t hidden_size, Generator& gen,
                           const RnnOptions& options, const AdvancedLstmOptions& advanced)
    : input_size_(input_size),
      hidden_size_(hidden_size),
      history_(advanced.history),
      attention_dim_(advanced.attention_dim > 0 ? advanced.attention_dim : hidden_size),
      options_(options),
      dropout_gen_(options.dropout_seed) {
  ATTEND_CHECK(input_size > 0 && hidden_size > 0, kName, ": input_size (", input_size,
               ") and hidden_size (", hidden_size, ") must be positive");
  ATTEND_CHECK(options.num_layers >= 1, kName, ": num_layers must be at least 1, got ",
               options.num_layers);
  ATTEND_CHECK(options.dropout >= 0.0 && options.dropout <= 1.0, kName,
               ": dropout must be in [0, 1], got ", options.dropout);
  ATTEND_CHECK(IsFloating(options.dtype), kName, ": parameters must be f32 or f64, got ",
               DTypeName(options.dtype));
  ATTEND_CHECK(advanced.history >= 1, kName, ": history (the number of previous steps weighed) ",
               "must be at least 1, got ", advanced.history);
  ATTEND_CHECK(advanced.attention_dim >= 0, kName,
               ": attention_dim must be positive (or 0 for hidden_size), got ",
               advanced.attention_dim);
  const int nd = num_directions();
  const int64_t h = hidden_size, a = attention_dim_;
  const DType dt = options.dtype;
  for (int64_t layer = 0; layer < options.num_layers; ++layer) {
    const int64_t in = layer == 0 ? input_size : nd * hidden_size;
    for (int d = 0; d < nd; ++d) {
      const std::string sfx = "_l" + std::to_string(layer) + (d == 1 ? "_reverse" : "");
      Weights w;
      // The LSTM's parameters in torch.nn.LSTM's names, order and distribution.
      w.w_ih = RegisterParameter("weight_ih" + sfx, UniformParameter({4 * h, in}, h, gen, dt));
      w.w_hh = RegisterParameter("weight_hh" + sfx, UniformParameter({4 * h, h}, h, gen, dt));
      if (options.bias) {
        w.b_ih = RegisterParameter("bias_ih" + sfx, UniformParameter({4 * h}, h, gen, dt));
        w.b_hh = RegisterParameter("bias_hh" + sfx, UniformParameter({4 * h}, h, gen, dt));
      }
      w.attn_hist =
          RegisterParameter("attn_weight_hist" + sfx, UniformParameter({a, h}, h, gen, dt));
      w.attn_in = RegisterParameter("attn_weight_in" + sfx, UniformParameter({a, in}, in, gen, dt));
      if (options.bias)
        w.attn_bias = RegisterParameter("attn_bias" + sfx, UniformParameter({a}, h, gen, dt));
      w.attn_v = RegisterParameter("attn_v" + sfx, UniformParameter({a}, a, gen, dt));
      weights_.push_back(w);
    }
  }
}

const AdvancedLSTM::Weights& AdvancedLSTM::weights(int64_t layer, int dir) const {
  ATTEND_CHECK(layer >= 0 && layer < options_.num_layers && dir >= 0 && dir < num_directions(),
               kName, ": no layer ", layer, " direction ", dir, " in a module with ",
               options_.num_layers, " layers and ", num_directions(), " directions");
  return weights_[static_cast<size_t>(layer * num_directions() + dir)];
}

void AdvancedLSTM::State::SelectRows(const Tensor& rows) {
  if (h.defined()) h = IndexSelect(h, 1, rows);
  if (c.defined()) c = IndexSelect(c, 1, rows);
  if (past_h.defined()) past_h = IndexSelect(past_h, 2, rows);
  if (past_c.defined()) past_c = IndexSelect(past_c, 2, rows);
  if (past_count.defined()) past_count = IndexSelect(past_count, 0, rows);
}

Tensor AdvancedLSTM::Forward(const Tensor& x, const Tensor& lengths, State* state,
                             std::vector<Tensor>* attention) {
  ATTEND_CHECK(x.defined() && x.dim() == 3, kName, ": input must be 3-D ",
               options_.batch_first ? "[B, T, in]" : "[T, B, in]", ", got ",
               x.defined() ? x.str() : "undefined");
  ATTEND_CHECK(x.size(2) == input_size_, kName, ": input ", x.str(), " has width ", x.size(2),
               " but the module was built for input_size ", input_size_);
  ATTEND_CHECK(x.dtype() == options_.dtype, kName, ": input ", x.str(), " but parameters are ",
               DTypeName(options_.dtype));
  const Tensor xb = options_.batch_first ? x : x.Transpose(0, 1);  // [B, T, in]
  const int64_t batch = xb.size(0), steps = xb.size(1);
  ATTEND_CHECK(batch >= 1 && steps >= 1, kName, ": input ", x.str(),
               " needs at least one sequence and one step");
  std::vector<int64_t> lens(batch, steps);
  if (lengths.defined()) {
    ATTEND_CHECK(lengths.dtype() == DType::kI64 && lengths.dim() == 1 && lengths.size(0) == batch,
                 kName, ": lengths ", lengths.str(), " must be i64 [", batch, "] for input ",
                 x.str());
    lens = lengths.ToVector<int64_t>();
    for (int64_t b = 0; b < batch; ++b)
      ATTEND_CHECK(lens[b] >= 1 && lens[b] <= steps, kName, ": lengths[", b, "] = ", lens[b],
                   " is outside [1, ", steps, "] for input ", x.str());
  }
  const int nd = num_directions();
  const int64_t nl = options_.num_layers, hidden = hidden_size_, k_hist = history_;

  // The initial state: checked field by field, missing parts are zeros / empty history.
  State in = state ? *state : State();
  const Shape state_shape{nl * nd, batch, hidden};
  for (const Tensor* s : {&in.h, &in.c}) {
    if (!s->defined()) continue;
    ATTEND_CHECK(s->shape() == state_shape && s->dtype() == options_.dtype, kName, ": state ",
                 s == &in.h ? "h " : "c ", s->str(), " must be ", DTypeName(options_.dtype),
                 " [num_layers * num_directions, B, H] = ", state_shape.str(), " for input ",
                 x.str());
  }
  std::vector<int64_t> filled(batch, 1);
  const bool has_past = in.past_h.defined() || in.past_c.defined();
  if (has_past || in.past_count.defined()) {
    ATTEND_CHECK(k_hist > 1, kName, ": state has past states but history is 1 (no past slots)");
    ATTEND_CHECK(in.past_h.defined() && in.past_c.defined() && in.past_count.defined(), kName,
                 ": state past_h, past_c and past_count go together (got ",
                 in.past_h.defined() ? "" : "no ", "past_h, ", in.past_c.defined() ? "" : "no ",
                 "past_c, ", in.past_count.defined() ? "" : "no ", "past_count)");
    const Shape past_shape{k_hist - 1, nl * nd, batch, hidden};
    for (const Tensor* s : {&in.past_h, &in.past_c})
      ATTEND_CHECK(s->shape() == past_shape && s->dtype() == options_.dtype, kName, ": state ",
                   s == &in.past_h ? "past_h " : "past_c ", s->str(), " must be ",
                   DTypeName(options_.dtype),
                   " [history - 1, num_layers * num_directions, B, H] = ", past_shape.str(),
                   " for input ", x.str());
    ATTEND_CHECK(in.past_count.dtype() == DType::kI64 && in.past_count.dim() == 1 &&
                     in.past_count.size(0) == batch,
                 kName, ": state past_count ", in.past_count.str(), " must be i64 [", batch, "]");
    const std::vector<int64_t> count = in.past_count.ToVector<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      ATTEND_CHECK(count[b] >= 0 && count[b] <= k_hist - 1, kName, ": state past_count[", b,
                   "] = ", count[b], " is outside [0, ", k_hist - 1, "]");
      filled[b] = 1 + count[b];
    }
  }

  const DType dt = options_.dtype;
  Tensor input = xb;
  std::vector<Tensor> h_n, c_n, past_h, past_c;
  if (attention) attention->clear();
  for (int64_t layer = 0; layer < nl; ++layer) {
    std::vector<Tensor> outs;
    for (int d = 0; d < nd; ++d) {
      const int64_t ld = layer * nd + d;
      const Tensor h0 = in.h.defined() ? in.h.Select(0, ld) : Tensor::Zeros({batch, hidden}, dt);
      const Tensor c0 = in.c.defined() ? in.c.Select(0, ld) : Tensor::Zeros({batch, hidden}, dt);
      Tensor history = Concat({h0, c0}, 1).Unsqueeze(1);  // [B, 1, 2H]
      if (k_hist > 1) {
        const Tensor past =
            has_past ? Concat({in.past_h.Select(1, ld), in.past_c.Select(1, ld)}, 2).Transpose(0, 1)
                     : Tensor::Zeros({batch, k_hist - 1, 2 * hidden}, dt);  // [B, K-1, 2H]
        history = Concat({history, past}, 1);
      }
      DirectionResult r = RunDirection(weights_[static_cast<size_t>(ld)], input, d == 1, lens,
                                       history, filled, attention != nullptr);
      outs.push_back(r.output);
      h_n.push_back(r.history.Select(1, 0).Narrow(1, 0, hidden));
      c_n.push_back(r.history.Select(1, 0).Narrow(1, hidden, hidden));
      if (k_hist > 1) {
        const Tensor older = r.history.Narrow(1, 1, k_hist - 1).Transpose(0, 1);  // [K-1, B, 2H]
        past_h.push_back(older.Narrow(2, 0, hidden));
        past_c.push_back(older.Narrow(2, hidden, hidden));
      }
      if (attention)
        attention->push_back(options_.batch_first ? r.weights : r.weights.Transpose(0, 1));
      // Every layer and direction sees each row for the same number of steps, so they all end
      // with the same fill; the last one's is kept.
      if (ld == nl * nd - 1) filled = r.filled;
    }
    input = nd == 1 ? outs[0] : Concat(outs, 2);  // [B, T, D*H]
    if (layer + 1 < nl && options_.dropout > 0.0 && training())
      input = Dropout(input, options_.dropout, true, dropout_gen_);
  }
  if (state) {
    State out;
    out.h = Stack(h_n, 0);
    out.c = Stack(c_n, 0);
    if (k_hist > 1) {
      out.past_h = Stack(past_h, 1);  // [K-1, L*D, B, H]
      out.past_c = Stack(past_c, 1);
      std::vector<int64_t> count(batch);
      for (int64_t b = 0; b < batch; ++b) count[b] = filled[b] - 1;
      out.past_count = Tensor::FromVector(count, Shape{batch});
    }
    *state = out;
  }
  return options_.batch_first ? input : input.Transpose(0, 1);
}

}  // namespace attend::nn
