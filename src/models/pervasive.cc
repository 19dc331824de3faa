// Pervasive attention (Elbayad, Besacier and Verbeek 2018): one 2-D convolutional network over the
// grid of (target position, source position) pairs instead of an encoder, a decoder and an
// attention between them.
//
//   H0[t, s] = [E_y(y_t) + P_y(t); E_x(x_s) + P_x(s)]          2 * embed_dim channels, [T, S]
//   layer l: X_l = [H0; N_1; ..; N_{l-1}] (DenseNet: every earlier map, concatenated)
//            Z_l = ReLU(LN(W_l ReLU(LN(X_l)) + b_l)) * keep    4 * growth channels (1x1 conv)
//            N_l = dropout(CausalConv_l(Z_l))                 growth channels, kernel x kernel
//   out[t]  = W_o dropout(W_p max_s LN(X_{L+1})[t, s] + b_p) + b_o
//
// Design choices (docs/attention.md, "Pervasive attention"):
// - One dense block, no transition layers: channels grow linearly (2 * embed_dim + layers *
//   growth), which the small models here afford, and there is nothing to tune between blocks.
// - Per-position LayerNorm over channels where the paper has batch norm: batch statistics mix
//   grid positions across sentences (padding included) and differ between training and one-row
//   decoding steps, so they would break both the padding invariance and the equality of
//   teacher forcing and incremental decoding; a LayerNorm of one position's channels reads that
//   position alone.
// - Learned position embeddings for both sides (max_positions each): max-pooling over the source
//   forgets where a feature came from, and the convolutions see only a window.
// - The masked filter stores only its rows at and above the centre (CausalConv2d): the same
//   function as the paper's k x k filter with the lower rows zeroed.
// - keep (1 at real source positions, 0 at padding) zeroes the convolution's input at padding,
//   which then reads as the convolution's own zero padding: appending padding to a source leaves
//   every real output as it was. The 1x1 layers and norms are per position, and the max-pool
//   skips padding (-inf).
// - A final LayerNorm (no ReLU) before the pool: zeros from a ReLU would tie many source
//   positions for the maximum and blur the implicit alignment.
//
// The implicit alignment (the paper's "implicit attention"): per target position, the share of
// the pooled channels whose maximum sits at each source position (rows sum to one).
//
// Decoding: row t of every feature map depends on rows <= t only, so Step computes one row per
// layer from the cached conv inputs Z_l of the previous kernel / 2 rows: O(layers * S) per step.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/ops/conv.h"

namespace attend::models {
namespace {

// A fresh dropout seed per module, drawn from the model's generator.
uint64_t NextSeed(Generator& gen) { return Generator::Bits(gen.seed(), gen.Reserve(1)); }

// The masked kernel x kernel convolution's parameters: weight [out, in, kernel / 2 + 1, kernel]
// (the rows at and above the centre), bias [out]; both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) over
// the weights the filter really has, as torch's Conv2d initialises.
class CausalConv : public nn::Module {
 public:
  CausalConv(int64_t in, int64_t out, int64_t kernel, Generator& gen) {
    Tensor w = Tensor::Empty({out, in, kernel / 2 + 1, kernel});
    nn::init::KaimingUniform(w, gen, std::sqrt(5.0));
    weight = RegisterParameter("weight", w);
    Tensor b = Tensor::Empty({out});
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * (kernel / 2 + 1) * kernel));
    nn::init::Uniform(b, -bound, bound, gen);
    bias = RegisterParameter("bias", b);
  }
  Tensor weight, bias;
};

// One DenseNet layer (channels last): LayerNorm-ReLU-1x1 to 4 * growth, LayerNorm-ReLU, the
// masked convolution to growth channels, dropout.
class DenseLayer : public nn::Module {
 public:
  DenseLayer(int64_t in, int64_t growth, int64_t kernel, double dropout_p, Generator& gen) {
    norm1 = RegisterModule("norm1", std::make_shared<nn::LayerNormModule>(Shape{in}));
    bottleneck =
        RegisterModule("bottleneck", std::make_shared<nn::Linear>(in, 4 * growth, true, gen));
    norm2 = RegisterModule("norm2", std::make_shared<nn::LayerNormModule>(Shape{4 * growth}));
    conv = RegisterModule("conv", std::make_shared<CausalConv>(4 * growth, growth, kernel, gen));
    dropout =
        RegisterModule("dropout", std::make_shared<nn::DropoutModule>(dropout_p, NextSeed(gen)));
  }

  // X [..., S, C_in] -> Z [..., S, 4 growth], zero where keep [.., S, 1] is (padding).
  Tensor ConvInput(const Tensor& x, const Tensor& keep) const {
    Tensor h = bottleneck->Forward(Relu(norm1->Forward(x)));
    return Mul(Relu(norm2->Forward(h)), keep);
  }

  // Teacher forcing: X [B, T, S, C_in] -> the new features [B, T, S, growth].
  Tensor Forward(const Tensor& x, const Tensor& keep) {
    Tensor z = ConvInput(x, keep).Permute({0, 3, 1, 2}).Contiguous();  // [B, 4g, T, S]
    Tensor y = CausalConv2d(z, conv->weight, conv->bias);              // [B, g, T, S]
    return dropout->Forward(y.Permute({0, 2, 3, 1}));
  }

  // One decoding row: X [N, S, C_in] and the conv inputs of the previous kernel / 2 rows
  // `above` [N, 4g, kernel / 2, S] (zeros before the first row; undefined for kernel 1) ->
  // the new features [N, S, growth]; `above` moves down one row.
  Tensor Step(const Tensor& x, const Tensor& keep, Tensor* above) {
    const int64_t n = x.size(0), s = x.size(1);
    Tensor z = ConvInput(x, keep).Permute({0, 2, 1}).Unsqueeze(2);  // [N, 4g, 1, S]
    Tensor window = above->defined() ? Concat({*above, z}, 2) : z.Contiguous();
    const int64_t kernel = conv->weight.size(3);
    Tensor y = Conv2d(window, conv->weight, conv->bias, 1, Size2{0, kernel / 2});  // [N, g, 1, S]
    if (above->defined()) *above = window.Narrow(2, 1, above->size(2)).Contiguous();
    return dropout->Forward(y.View({n, y.size(1), s}).Permute({0, 2, 1}));
  }

  std::shared_ptr<nn::LayerNormModule> norm1, norm2;
  std::shared_ptr<nn::Linear> bottleneck;
  std::shared_ptr<CausalConv> conv;
  std::shared_ptr<nn::DropoutModule> dropout;
};

// A named container ("layers") that gives its children dotted names.
class Stack : public nn::Module {
 public:
  template <typename M>
  std::shared_ptr<M> RegisterChild(const std::string& name, std::shared_ptr<M> m) {
    return RegisterModule(name, std::move(m));
  }
};

struct PervasiveState : DecoderState {
  int64_t rows() const override { return src.size(0); }
  Tensor src;                 // [N, S, E]: source embeddings with positions
  Tensor keep, pad;           // [N, S, 1]: f32 1 at real positions; bool true at padding
  std::vector<Tensor> above;  // per layer: the conv inputs of the previous kernel / 2 rows
  int64_t length = 0;         // target positions decoded so far
};

class Pervasive : public Seq2Seq {
 public:
  Pervasive(const ModelConfig& c, Generator& gen) : Seq2Seq(c) {
    const int64_t e = c.embed_dim;
    src_embed_ = RegisterModule(
        "src_embed", std::make_shared<nn::Embedding>(c.src_vocab, e, gen, SpecialIds::kPad));
    tgt_embed_ = RegisterModule(
        "tgt_embed", std::make_shared<nn::Embedding>(c.tgt_vocab, e, gen, SpecialIds::kPad));
    src_positions_ = RegisterModule(
        "src_positions", std::make_shared<nn::LearnedPositionalEncoding>(c.max_positions, e, gen));
    tgt_positions_ = RegisterModule(
        "tgt_positions", std::make_shared<nn::LearnedPositionalEncoding>(c.max_positions, e, gen));
    embed_dropout_ = RegisterModule("embed_dropout",
                                    std::make_shared<nn::DropoutModule>(c.dropout, NextSeed(gen)));
    auto layers = RegisterModule("layers", std::make_shared<Stack>());
    int64_t channels = 2 * e;
    for (int64_t i = 0; i < c.dense_layers; ++i) {
      layers_.push_back(layers->RegisterChild(
          std::to_string(i),
          std::make_shared<DenseLayer>(channels, c.growth, c.kernel, c.dropout, gen)));
      channels += c.growth;
    }
    norm_ = RegisterModule("norm", std::make_shared<nn::LayerNormModule>(Shape{channels}));
    project_ = RegisterModule("project", std::make_shared<nn::Linear>(channels, e, true, gen));
    output_dropout_ = RegisterModule("output_dropout",
                                     std::make_shared<nn::DropoutModule>(c.dropout, NextSeed(gen)));
    output_ = RegisterModule("output", std::make_shared<nn::Linear>(e, c.tgt_vocab, true, gen));
  }

  Tensor Forward(const Batch& batch, Tensor* attention) override {
    CheckTokens(batch.src, config_.src_vocab, "source", "Forward");
    CheckTokens(batch.tgt_in, config_.tgt_vocab, "target", "Forward");
    ATTEND_CHECK(batch.tgt_in.dim() == 2 && batch.src.dim() == 2 &&
                     batch.tgt_in.size(0) == batch.src.size(0) && batch.tgt_in.size(1) > 0,
                 "Pervasive::Forward: tgt_in ", batch.tgt_in.str(), " and src ", batch.src.str(),
                 " must be [B, T] and [B, S] with one B");
    const int64_t b = batch.src.size(0), t = batch.tgt_in.size(1), s = batch.src.size(1);
    ATTEND_CHECK(t <= config_.max_positions, "Pervasive::Forward: target length ", t,
                 " exceeds max_positions ", config_.max_positions);
    Tensor pad = SourcePadding(batch.src, batch.src_lengths, "Forward");  // [B, S, 1]
    Tensor src = EmbedSource(batch.src);                                  // [B, S, E]
    Tensor tgt =
        embed_dropout_->Forward(tgt_positions_->Forward(tgt_embed_->Forward(batch.tgt_in)));
    const int64_t e = config_.embed_dim;
    Tensor x =
        Concat({tgt.Unsqueeze(2).Expand({b, t, s, e}), src.Unsqueeze(1).Expand({b, t, s, e})},
               3);                                                        // [B, T, S, 2E]
    const Tensor keep = Keep(pad).Unsqueeze(1), pad4 = pad.Unsqueeze(1);  // [B, 1, S, 1]
    for (const auto& layer : layers_) x = Concat({x, layer->Forward(x, keep)}, 3);
    return Head(x, pad4, attention);  // [B, T, V]
  }

  std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& src_lengths) override {
    NoGradGuard no_grad;
    CheckTokens(src, config_.src_vocab, "source", "Start");
    auto state = std::make_unique<PervasiveState>();
    state->pad = SourcePadding(src, src_lengths, "Start");
    state->keep = Keep(state->pad);
    state->src = EmbedSource(src);
    const int64_t n = src.size(0), s = src.size(1), above = config_.kernel / 2;
    for (size_t i = 0; i < layers_.size(); ++i)
      state->above.push_back(
          above == 0 ? Tensor()
                     : Tensor::Zeros({n, 4 * config_.growth, above, s}, state->src.dtype()));
    return state;
  }

  Tensor Step(DecoderState& base, const Tensor& tokens, Tensor* attention) override {
    NoGradGuard no_grad;
    PervasiveState& state = Cast(base, "Step");
    const int64_t n = state.rows(), s = state.src.size(1), e = config_.embed_dim;
    ATTEND_CHECK(tokens.defined() && tokens.dtype() == DType::kI64 && tokens.dim() == 1 &&
                     tokens.size(0) == n,
                 "Pervasive::Step: tokens must be i64 [", n, "] (one per hypothesis), got ",
                 tokens.defined() ? tokens.str() : std::string("undefined"));
    CheckTokens(tokens, config_.tgt_vocab, "target", "Step");
    const int64_t pos = state.length;
    ATTEND_CHECK(pos < config_.max_positions, "Pervasive::Step: decoding position ", pos,
                 " reaches max_positions ", config_.max_positions);
    Tensor y = Add(tgt_embed_->Forward(tokens), tgt_positions_->weight.Select(0, pos));  // [N, E]
    y = embed_dropout_->Forward(y);
    Tensor x = Concat({y.Unsqueeze(1).Expand({n, s, e}), state.src}, 2);  // [N, S, 2E]
    for (size_t i = 0; i < layers_.size(); ++i)
      x = Concat({x, layers_[i]->Step(x, state.keep, &state.above[i])}, 2);
    state.length = pos + 1;
    return LogSoftmax(Head(x, state.pad, attention), -1);  // [N, V]
  }

  void Select(DecoderState& base, const Tensor& rows) override {
    NoGradGuard no_grad;
    PervasiveState& state = Cast(base, "Select");
    ATTEND_CHECK(rows.defined() && rows.dtype() == DType::kI64 && rows.dim() == 1,
                 "Pervasive::Select: rows must be i64 [N'], got ",
                 rows.defined() ? rows.str() : std::string("undefined"));
    const int64_t n = state.rows();
    const std::vector<int64_t> r = rows.ToVector<int64_t>();
    bool identity = static_cast<int64_t>(r.size()) == n;
    for (size_t i = 0; i < r.size(); ++i) {
      ATTEND_CHECK(r[i] >= 0 && r[i] < n, "Pervasive::Select: rows[", i, "] = ", r[i],
                   " is not one of the ", n, " hypotheses held");
      identity = identity && r[i] == static_cast<int64_t>(i);
    }
    if (identity) return;
    state.src = IndexSelect(state.src, 0, rows);
    state.keep = IndexSelect(state.keep, 0, rows);
    state.pad = IndexSelect(state.pad, 0, rows);
    for (Tensor& t : state.above)
      if (t.defined()) t = IndexSelect(t, 0, rows);
  }

 private:
  PervasiveState& Cast(DecoderState& base, const char* where) const {
    auto* state = dynamic_cast<PervasiveState*>(&base);
    ATTEND_CHECK(state != nullptr, "Pervasive::", where,
                 ": the state was not made by this model's Start");
    return *state;
  }

  void CheckTokens(const Tensor& ids, int64_t vocab, const char* side, const char* where) const {
    ATTEND_CHECK(ids.defined() && ids.dtype() == DType::kI64 && ids.dim() >= 1,
                 "Pervasive::", where, ": ", side, " token ids must be i64, got ",
                 ids.defined() ? ids.str() : std::string("undefined"));
    const std::vector<int64_t> v = ids.ToVector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i)
      ATTEND_CHECK(v[i] >= 0 && v[i] < vocab, "Pervasive::", where, ": ", side, " token id ", v[i],
                   " at flat index ", i, " of ", ids.str(), " is outside the vocabulary [0, ",
                   vocab, ")");
  }

  // True at padding: bool [B, S, 1] from lengths [B].
  Tensor SourcePadding(const Tensor& src, const Tensor& lengths, const char* where) const {
    ATTEND_CHECK(src.dim() == 2 && src.size(1) > 0, "Pervasive::", where,
                 ": src must be [B, S] with S > 0, got ", src.str());
    const int64_t b = src.size(0), s = src.size(1);
    ATTEND_CHECK(s <= config_.max_positions, "Pervasive::", where, ": source length ", s,
                 " exceeds max_positions ", config_.max_positions);
    ATTEND_CHECK(lengths.defined() && lengths.dtype() == DType::kI64 && lengths.dim() == 1 &&
                     lengths.size(0) == b,
                 "Pervasive::", where, ": src_lengths must be i64 [", b, "], got ",
                 lengths.defined() ? lengths.str() : std::string("undefined"));
    const std::vector<int64_t> len = lengths.ToVector<int64_t>();
    std::vector<bool> m(static_cast<size_t>(b * s));
    for (int64_t i = 0; i < b; ++i) {
      ATTEND_CHECK(len[i] >= 1 && len[i] <= s, "Pervasive::", where, ": src_lengths[", i,
                   "] = ", len[i], " is not in [1, ", s, "]");
      for (int64_t j = 0; j < s; ++j) m[i * s + j] = j >= len[i];
    }
    return Tensor::FromVector(m, {b, s, 1});
  }

  // 1 at real positions, 0 at padding, in the model's dtype.
  Tensor Keep(const Tensor& pad) const {
    return MaskedFill(Tensor::Ones(pad.shape(), norm_->weight.dtype()), pad, 0.0);
  }

  Tensor EmbedSource(const Tensor& src) {
    return embed_dropout_->Forward(src_positions_->Forward(src_embed_->Forward(src)));
  }

  // The last feature map [..., S, C] and padding [..., S, 1] -> logits [..., V]; with
  // `attention`, the implicit alignment [..., S].
  Tensor Head(const Tensor& x, const Tensor& pad, Tensor* attention) {
    Tensor h = MaskedFill(norm_->Forward(x), pad, -std::numeric_limits<double>::infinity());
    if (attention != nullptr) *attention = Alignment(h);
    Tensor pooled = Max(h, {h.dim() - 2});  // [..., C]
    return output_->Forward(output_dropout_->Forward(project_->Forward(pooled)));
  }

  // Per row of h [..., S, C]: the share of the C channels whose maximum over S is at each source
  // position (the first maximum on ties, as Argmax) -> [..., S], rows summing to one.
  static Tensor Alignment(const Tensor& h) {
    NoGradGuard no_grad;
    const int64_t s = h.size(-2), c = h.size(-1);
    const std::vector<int64_t> winner = Argmax(h, h.dim() - 2).Contiguous().ToVector<int64_t>();
    const int64_t rows = static_cast<int64_t>(winner.size()) / c;
    std::vector<int64_t> count(static_cast<size_t>(rows * s), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) ++count[r * s + winner[r * c + k]];
    std::vector<float> w(count.size());
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = static_cast<float>(static_cast<double>(count[i]) / static_cast<double>(c));
    std::vector<int64_t> dims = h.shape().vec();
    dims.pop_back();
    return Tensor::FromVector(w, Shape(dims));
  }

  std::shared_ptr<nn::Embedding> src_embed_, tgt_embed_;
  std::shared_ptr<nn::LearnedPositionalEncoding> src_positions_, tgt_positions_;
  std::shared_ptr<nn::DropoutModule> embed_dropout_, output_dropout_;
  std::vector<std::shared_ptr<DenseLayer>> layers_;
  std::shared_ptr<nn::LayerNormModule> norm_;
  std::shared_ptr<nn::Linear> project_, output_;
};

}  // namespace

std::shared_ptr<Seq2Seq> MakePervasive(const ModelConfig& config, Generator& gen) {
  config.Validate();
  return std::make_shared<Pervasive>(config, gen);
}

}  // namespace attend::models
