// The recurrent modules GRU, LSTM (stacked, optionally bidirectional, over padded batches) and
// GRUCell, LSTMCell, all built on the fused layer op RnnLayer (src/ops/rnn_cell.cc).
#include "attend/nn/rnn.h"

#include <cmath>
#include <functional>
#include <string>

#include "attend/ops.h"

namespace attend::nn {

namespace {

int64_t Gates(RnnMode mode) { return mode == RnnMode::kLstm ? 4 : 3; }
const char* Name(RnnMode mode) { return mode == RnnMode::kLstm ? "LSTM" : "GRU"; }

// A parameter of `shape` drawn from U(-1/sqrt(H), 1/sqrt(H)), as PyTorch's RNN reset_parameters.
Tensor UniformParameter(const Shape& shape, int64_t hidden, Generator& gen, DType dtype) {
  Tensor t = Tensor::Empty(shape, dtype);
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden));
  init::Uniform(t, -k, k, gen);
  return t;
}

}  // namespace

// ---- GRU / LSTM ----

RnnBase::RnnBase(RnnMode mode, int64_t input_size, int64_t hidden_size, Generator& gen,
                 const RnnOptions& options)
    : mode_(mode),
      input_size_(input_size),
      hidden_size_(hidden_size),
      options_(options),
      dropout_gen_(options.dropout_seed) {
  const char* name = Name(mode);
  ATTEND_CHECK(input_size > 0 && hidden_size > 0, name, ": input_size (", input_size,
               ") and hidden_size (", hidden_size, ") must be positive");
  ATTEND_CHECK(options.num_layers >= 1, name, ": num_layers must be at least 1, got ",
               options.num_layers);
  ATTEND_CHECK(options.dropout >= 0.0 && options.dropout <= 1.0, name,
               ": dropout must be in [0, 1], got ", options.dropout);
  ATTEND_CHECK(IsFloating(options.dtype), name, ": parameters must be f32 or f64, got ",
               DTypeName(options.dtype));
  const int nd = num_directions();
  const int64_t gh = Gates(mode) * hidden_size;
  for (int64_t layer = 0; layer < options.num_layers; ++layer) {
    const int64_t in = layer == 0 ? input_size : nd * hidden_size;
    for (int d = 0; d < nd; ++d) {
      const std::string suffix = "_l" + std::to_string(layer) + (d == 1 ? "_reverse" : "");
      // PyTorch's registration (and initialisation) order: w_ih, w_hh, b_ih, b_hh.
      w_ih_.push_back(RegisterParameter(
          "weight_ih" + suffix, UniformParameter(Shape{gh, in}, hidden_size, gen, options.dtype)));
      w_hh_.push_back(RegisterParameter(
          "weight_hh" + suffix,
          UniformParameter(Shape{gh, hidden_size}, hidden_size, gen, options.dtype)));
      if (options.bias) {
        b_ih_.push_back(RegisterParameter(
            "bias_ih" + suffix, UniformParameter(Shape{gh}, hidden_size, gen, options.dtype)));
        b_hh_.push_back(RegisterParameter(
            "bias_hh" + suffix, UniformParameter(Shape{gh}, hidden_size, gen, options.dtype)));
      } else {
        b_ih_.emplace_back();
        b_hh_.emplace_back();
      }
    }
  }
}

size_t RnnBase::Slot(int64_t layer, int dir) const {
  ATTEND_CHECK(layer >= 0 && layer < options_.num_layers && dir >= 0 && dir < num_directions(),
               Name(mode_), ": no layer ", layer, " direction ", dir, " in a module with ",
               options_.num_layers, " layers and ", num_directions(), " directions");
  return static_cast<size_t>(layer * num_directions() + dir);
}

RnnLayerOutput RnnBase::Run(const Tensor& x, const Tensor& lengths, const Tensor& h0,
                            const Tensor& c0) {
  const char* name = Name(mode_);
  ATTEND_CHECK(x.defined() && x.dim() == 3, name, ": input must be 3-D ",
               options_.batch_first ? "[B, T, in]" : "[T, B, in]", ", got ",
               x.defined() ? x.str() : "undefined");
  ATTEND_CHECK(x.size(2) == input_size_, name, ": input ", x.str(), " has width ", x.size(2),
               " but the module was built for input_size ", input_size_);
  ATTEND_CHECK(x.dtype() == options_.dtype, name, ": input ", x.str(), " but parameters are ",
               DTypeName(options_.dtype));
  const Tensor xb = options_.batch_first ? x : x.Transpose(0, 1);  // [B, T, in]
  const int nd = num_directions();
  const int64_t nl = options_.num_layers, batch = xb.size(0);
  const Shape state_shape{nl * nd, batch, hidden_size_};
  for (const Tensor* s : {&h0, &c0}) {
    if (!s->defined()) continue;
    ATTEND_CHECK(s->shape() == state_shape, name, ": initial ", s == &h0 ? "h0 " : "c0 ", s->str(),
                 " must be [num_layers * num_directions, B, H] = ", state_shape.str(),
                 " for input ", x.str());
  }
  Tensor input = xb;
  std::vector<Tensor> hs, cs;
  for (int64_t layer = 0; layer < nl; ++layer) {
    std::vector<Tensor> wi, wh, bi, bh;
    for (int d = 0; d < nd; ++d) {
      const size_t k = Slot(layer, d);
      wi.push_back(w_ih_[k]);
      wh.push_back(w_hh_[k]);
      if (options_.bias) {
        bi.push_back(b_ih_[k]);
        bh.push_back(b_hh_[k]);
      }
    }
    const Tensor h0l = h0.defined() ? h0.Narrow(0, layer * nd, nd) : Tensor();  // [D, B, H]
    const Tensor c0l = c0.defined() ? c0.Narrow(0, layer * nd, nd) : Tensor();
    RnnLayerOutput r = RnnLayer(mode_, input, wi, wh, bi, bh, h0l, c0l, lengths);
    input = r.output;  // [B, T, D*H]
    if (layer + 1 < nl && options_.dropout > 0.0 && training())
      input = Dropout(input, options_.dropout, true, dropout_gen_);
    hs.push_back(r.h_n);
    if (mode_ == RnnMode::kLstm) cs.push_back(r.c_n);
  }
  RnnLayerOutput out;
  out.output = options_.batch_first ? input : input.Transpose(0, 1);
  out.h_n = nl == 1 ? hs[0] : Concat(hs, 0);  // [L*D, B, H]
  if (mode_ == RnnMode::kLstm) out.c_n = nl == 1 ? cs[0] : Concat(cs, 0);
  return out;
}

GRU::GRU(int64_t input_size, int64_t hidden_size, Generator& gen, const RnnOptions& options)
    : RnnBase(RnnMode::kGru, input_size, hidden_size, gen, options) {}

GRU::Output GRU::Forward(const Tensor& x, const Tensor& lengths, const Tensor& h0) {
  RnnLayerOutput r = Run(x, lengths, h0, Tensor());
  return Output{r.output, r.h_n};
}

LSTM::LSTM(int64_t input_size, int64_t hidden_size, Generator& gen, const RnnOptions& options)
    : RnnBase(RnnMode::kLstm, input_size, hidden_size, gen, options) {}

LSTM::Output LSTM::Forward(const Tensor& x, const Tensor& lengths, const Tensor& h0,
                           const Tensor& c0) {
  RnnLayerOutput r = Run(x, lengths, h0, c0);
  return Output{r.output, r.h_n, r.c_n};
}

// ---- cells ----

namespace {

// Creates a cell's four parameters in PyTorch's order and registers them through `reg`.
void RegisterCell(RnnMode mode, int64_t input_size, int64_t hidden_size, bool bias, Generator& gen,
                  DType dtype, const std::function<Tensor(const std::string&, Tensor)>& reg,
                  Tensor* w_ih, Tensor* w_hh, Tensor* b_ih, Tensor* b_hh) {
  const char* name = mode == RnnMode::kLstm ? "LSTMCell" : "GRUCell";
  ATTEND_CHECK(input_size > 0 && hidden_size > 0, name, ": input_size (", input_size,
               ") and hidden_size (", hidden_size, ") must be positive");
  ATTEND_CHECK(IsFloating(dtype), name, ": parameters must be f32 or f64, got ", DTypeName(dtype));
  const int64_t gh = Gates(mode) * hidden_size;
  *w_ih = reg("weight_ih", UniformParameter(Shape{gh, input_size}, hidden_size, gen, dtype));
  *w_hh = reg("weight_hh", UniformParameter(Shape{gh, hidden_size}, hidden_size, gen, dtype));
  if (bias) {
    *b_ih = reg("bias_ih", UniformParameter(Shape{gh}, hidden_size, gen, dtype));
    *b_hh = reg("bias_hh", UniformParameter(Shape{gh}, hidden_size, gen, dtype));
  }
}

// Checks a cell's input ([B, in] or [in]) and returns it batched, [B, in].
Tensor CellInput(const char* name, const Tensor& x, int64_t input_size, DType dtype) {
  ATTEND_CHECK(x.defined() && (x.dim() == 1 || x.dim() == 2), name,
               ": input must be [B, in] or [in], got ", x.defined() ? x.str() : "undefined");
  ATTEND_CHECK(x.size(-1) == input_size, name, ": input ", x.str(), " has width ", x.size(-1),
               " but the cell was built for input_size ", input_size);
  ATTEND_CHECK(x.dtype() == dtype, name, ": input ", x.str(), " but parameters are ",
               DTypeName(dtype));
  return x.dim() == 2 ? x : x.Unsqueeze(0);
}

// Checks a cell's state ([B, H], or [H] with an unbatched input) and returns it as the layer op
// takes initial states, [1, B, H]; undefined stays undefined (zeros).
Tensor CellState(const char* name, const char* which, const Tensor& s, const Tensor& x,
                 int64_t hidden_size) {
  if (!s.defined()) return Tensor();
  const bool batched = x.dim() == 2;
  const Shape want = batched ? Shape{x.size(0), hidden_size} : Shape{hidden_size};
  ATTEND_CHECK(s.shape() == want, name, ": state ", which, " ", s.str(), " must be ", want.str(),
               " for input ", x.str());
  return (batched ? s : s.Unsqueeze(0)).Unsqueeze(0);  // [1, B, H]
}

std::vector<Tensor> Listed(const Tensor& t) {
  return t.defined() ? std::vector<Tensor>{t} : std::vector<Tensor>{};
}

}  // namespace

GRUCell::GRUCell(int64_t input_size, int64_t hidden_size, Generator& gen, bool bias, DType dtype)
    : input_size(input_size), hidden_size(hidden_size) {
  RegisterCell(
      RnnMode::kGru, input_size, hidden_size, bias, gen, dtype,
      [this](const std::string& n, Tensor t) { return RegisterParameter(n, t); }, &weight_ih,
      &weight_hh, &bias_ih, &bias_hh);
}

Tensor GRUCell::Forward(const Tensor& x, const Tensor& h) const {
  const Tensor xb = CellInput("GRUCell", x, input_size, weight_ih.dtype());  // [B, in]
  const Tensor hb = CellState("GRUCell", "h", h, x, hidden_size);            // [1, B, H]
  RnnLayerOutput r = RnnLayer(RnnMode::kGru, xb.Unsqueeze(1), {weight_ih}, {weight_hh},
                              Listed(bias_ih), Listed(bias_hh), hb);
  const Tensor hn = r.h_n.Select(0, 0);  // [B, H]
  return x.dim() == 2 ? hn : hn.Squeeze(0);
}

LSTMCell::LSTMCell(int64_t input_size, int64_t hidden_size, Generator& gen, bool bias, DType dtype)
    : input_size(input_size), hidden_size(hidden_size) {
  RegisterCell(
      RnnMode::kLstm, input_size, hidden_size, bias, gen, dtype,
      [this](const std::string& n, Tensor t) { return RegisterParameter(n, t); }, &weight_ih,
      &weight_hh, &bias_ih, &bias_hh);
}

std::pair<Tensor, Tensor> LSTMCell::Forward(const Tensor& x, const Tensor& h,
                                            const Tensor& c) const {
  const Tensor xb = CellInput("LSTMCell", x, input_size, weight_ih.dtype());  // [B, in]
  const Tensor hb = CellState("LSTMCell", "h", h, x, hidden_size);            // [1, B, H]
  const Tensor cb = CellState("LSTMCell", "c", c, x, hidden_size);
  RnnLayerOutput r = RnnLayer(RnnMode::kLstm, xb.Unsqueeze(1), {weight_ih}, {weight_hh},
                              Listed(bias_ih), Listed(bias_hh), hb, cb);
  Tensor hn = r.h_n.Select(0, 0), cn = r.c_n.Select(0, 0);  // [B, H]
  if (x.dim() == 1) return {hn.Squeeze(0), cn.Squeeze(0)};
  return {hn, cn};
}

}  // namespace attend::nn
