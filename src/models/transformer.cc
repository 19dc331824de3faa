// The Transformer encoder-decoder (Vaswani et al. 2017, as the Annotated Transformer), pre- or
// post-norm, with key/value-cached incremental decoding for translation, and optionally
// transparent attention (Bapna et al. 2018): each decoder layer attends over its own learned mix
// of the embeddings and every encoder layer's output.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "attend/attention.h"
#include "attend/attention_models.h"
#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/models.h"

namespace attend::models {
namespace {

// Self-attention key/value caches start with room for this many target positions and double
// when full, so a sentence of length T costs O(log T) reallocations, not one per token.
constexpr int64_t kInitialCacheCapacity = 16;

// A fresh dropout seed per module, drawn from the model's generator, so layers built from one
// generator drop different positions.
uint64_t NextSeed(Generator& gen) { return Generator::Bits(gen.seed(), gen.Reserve(1)); }

// What both layer kinds share: self-attention, for a decoder layer cross-attention, then the
// feed-forward, each a residual sublayer with its own LayerNorm and dropout. Modules are registered
// under torch's names in torch's order (nn.TransformerEncoderLayer / nn.TransformerDecoderLayer),
// which also fixes the order in which they draw from the generator.
class Layer : public nn::Module {
 public:
  std::shared_ptr<attention::MultiHeadAttention> self_attn, multihead_attn;  // cross: decoder only
  std::shared_ptr<nn::Linear> linear1, linear2;
  std::shared_ptr<nn::DropoutModule> dropout;  // inside the feed-forward

 protected:
  Layer(const ModelConfig& c, Generator& gen, bool decoder) : pre_norm_(c.pre_norm) {
    auto make_attention = [&] {
      return std::make_shared<attention::MultiHeadAttention>(c.d_model, c.heads, gen, c.dropout);
    };
    self_attn = RegisterModule("self_attn", make_attention());
    if (decoder) multihead_attn = RegisterModule("multihead_attn", make_attention());
    linear1 =
        RegisterModule("linear1", std::make_shared<nn::Linear>(c.d_model, c.ff_dim, true, gen));
    linear2 =
        RegisterModule("linear2", std::make_shared<nn::Linear>(c.ff_dim, c.d_model, true, gen));
    const int sublayers = decoder ? 3 : 2;
    for (int i = 1; i <= sublayers; ++i)
      norms_.push_back(RegisterModule("norm" + std::to_string(i),
                                      std::make_shared<nn::LayerNormModule>(Shape{c.d_model})));
    dropout =
        RegisterModule("dropout", std::make_shared<nn::DropoutModule>(c.dropout, NextSeed(gen)));
    for (int i = 1; i <= sublayers; ++i)
      dropouts_.push_back(
          RegisterModule("dropout" + std::to_string(i),
                         std::make_shared<nn::DropoutModule>(c.dropout, NextSeed(gen))));
  }

  // Residual sublayer i around `block`: x + drop(block(norm(x))) pre-norm,
  // norm(x + drop(block(x))) post-norm.
  template <typename Block>
  Tensor Sublayer(size_t i, const Tensor& x, Block&& block) {
    if (pre_norm_) return x + dropouts_[i]->Forward(block(norms_[i]->Forward(x)));
    return norms_[i]->Forward(x + dropouts_[i]->Forward(block(x)));
  }
  Tensor FeedForward(const Tensor& x) {
    return linear2->Forward(dropout->Forward(Relu(linear1->Forward(x))));
  }
  // The feed-forward through packed weights (eval mode: no dropout).
  static Tensor FeedForward(const Tensor& x, const nn::PrepackedLinear& ff1,
                            const nn::PrepackedLinear& ff2) {
    return ff2.Forward(Relu(ff1.Forward(x)));
  }

 private:
  bool pre_norm_;
  std::vector<std::shared_ptr<nn::LayerNormModule>> norms_;
  std::vector<std::shared_ptr<nn::DropoutModule>> dropouts_;
};

// An encoder layer's weights packed for translation (a decode precision other than f32).
struct PrepackedEncoderLayer {
  attention::PrepackedAttention self;
  nn::PrepackedLinear ff1, ff2;
};

class EncoderLayer : public Layer {
 public:
  EncoderLayer(const ModelConfig& c, Generator& gen) : Layer(c, gen, /*decoder=*/false) {}

  // x [B, S, E], pad_mask bool [B, S] (true = padding) -> [B, S, E]; with `self_weights`, the
  // self-attention weights per head [B, H, S, S]. `pk` (nullable, eval mode): Pack's weights.
  Tensor Forward(const Tensor& x, const Tensor& pad_mask, Tensor* self_weights = nullptr,
                 const PrepackedEncoderLayer* pk = nullptr) {
    Tensor h = Sublayer(0, x, [&](const Tensor& in) {
      return self_attn->SelfAttention(in, pad_mask, /*causal=*/false, self_weights,
                                      /*average_weights=*/false, pk ? &pk->self : nullptr);
    });
    return Sublayer(1, h, [&](const Tensor& in) {
      return pk ? Layer::FeedForward(in, pk->ff1, pk->ff2) : FeedForward(in);
    });
  }

  PrepackedEncoderLayer Pack(nn::Precision precision) const {
    return {self_attn->Pack(/*query_only=*/false, precision),
            nn::PrepackedLinear(*linear1, precision), nn::PrepackedLinear(*linear2, precision)};
  }
};

// One decoder layer's decoding state: cross-attention keys/values projected once from the
// encoder output (one row per sentence, never copied), and the self-attention keys/values of
// every target position each hypothesis has decoded so far.
struct LayerCache {
  attention::KVCache cross;  // [B, H, S, hd], B sentences
  attention::KVCache self;   // [N, H, capacity, hd], N hypotheses
};

// A decoder layer's weights packed for decoding steps (nn::PrepackedLinear), made in Start;
// below f32 also the cross-attention's key/value projection of the encoder's output.
struct PrepackedDecoderLayer {
  attention::PrepackedAttention self, cross;
  nn::PrepackedLinear ff1, ff2, memory_kv;
};

class DecoderLayer : public Layer {
 public:
  DecoderLayer(const ModelConfig& c, Generator& gen) : Layer(c, gen, /*decoder=*/true) {}

  // Teacher forcing: y [B, T, E], memory [B, S, E], pad_mask [B, S] -> [B, T, E]. With `cross`,
  // the cross-attention weights averaged over heads [B, T, S], or per head [B, H, T, S] with
  // `per_head`; with `self`, the self-attention weights per head [B, H, T, T]. Weights asked for
  // keep their graph (guided alignment trains on them); the heads then take the composed path.
  Tensor Forward(const Tensor& y, const Tensor& memory, const Tensor& pad_mask, Tensor* cross,
                 bool per_head = false, Tensor* self = nullptr) {
    const attention::KVCache kv = multihead_attn->CrossKeysValues(memory);
    auto self_block = [&](const Tensor& x) {
      return self_attn->SelfAttention(x, Tensor(), /*causal=*/true, self, false);
    };
    auto cross_block = [&](const Tensor& x) {
      return multihead_attn->CrossAttention(x, kv, pad_mask, cross, nullptr, !per_head);
    };
    return Sublayers(y, self_block, cross_block, [&](const Tensor& x) { return FeedForward(x); });
  }

  // One decoding step: y [N, 1, E] at position cache.self.length; appends this position's keys
  // and values to the cache (the caller has made room) and attends over every position so far.
  // memory_rows (i64 [N] or undefined): the sentence (row of cache.cross and pad_mask) each
  // hypothesis reads.
  Tensor Step(const Tensor& y, LayerCache& cache, const Tensor& pad_mask, const Tensor& memory_rows,
              Tensor* weights, const PrepackedDecoderLayer* pk) {
    auto self_block = [&](const Tensor& x) {
      return self_attn->SelfAttentionStep(x, cache.self, pk ? &pk->self : nullptr);
    };
    auto cross_block = [&](const Tensor& x) {
      return multihead_attn->CrossAttention(x, cache.cross, pad_mask, weights,
                                            pk ? &pk->cross : nullptr, true, memory_rows);
    };
    auto ff_block = [&](const Tensor& x) {
      return pk ? Layer::FeedForward(x, pk->ff1, pk->ff2) : FeedForward(x);
    };
    return Sublayers(y, self_block, cross_block, ff_block);
  }

  // This layer's weights packed for Step (eval mode: dropout is the identity there).
  PrepackedDecoderLayer Pack(nn::Precision precision) const {
    PrepackedDecoderLayer pk;
    pk.self = self_attn->Pack(/*query_only=*/false, precision);
    pk.cross = multihead_attn->Pack(/*query_only=*/true, precision);
    pk.ff1 = nn::PrepackedLinear(*linear1, precision);
    pk.ff2 = nn::PrepackedLinear(*linear2, precision);
    // f32 keeps the training path's GEMM for the memory, so that Step matches Forward exactly.
    if (precision != nn::Precision::kF32) pk.memory_kv = multihead_attn->PackKeysValues(precision);
    return pk;
  }

 private:
  // The three residual sublayers, shared by Forward and Step so both compute the same thing.
  template <typename SelfBlock, typename CrossBlock, typename FeedForwardBlock>
  Tensor Sublayers(const Tensor& y, SelfBlock&& self_block, CrossBlock&& cross_block,
                   FeedForwardBlock&& ff_block) {
    Tensor h = Sublayer(0, y, self_block);
    h = Sublayer(1, h, cross_block);
    return Sublayer(2, h, ff_block);
  }
};

// A named container ("encoder", "decoder", "layers") that gives its children dotted names.
class Stack : public nn::Module {
 public:
  template <typename M>
  std::shared_ptr<M> RegisterChild(const std::string& name, std::shared_ptr<M> m) {
    return RegisterModule(name, std::move(m));
  }
};

// The decoder packed in the model's decode precision (Seq2Seq::PackDecoder); below f32 the
// encoder as well (f32 translation runs the encoder as training does).
struct TransformerPacked {
  std::vector<PrepackedEncoderLayer> encoder;  // empty in f32
  std::vector<PrepackedDecoderLayer> layers;
  nn::PrepackedLinear logits;
};

struct TransformerState : DecoderState {
  int64_t rows() const override {
    return memory_rows.defined() ? memory_rows.size(0) : src_mask.size(0);
  }
  std::vector<LayerCache> layers;
  // Eval mode only: each decoder layer's weights and the output projection packed for Step
  // (TransformerPacked), the projection cut to the kept rows under a shortlist.
  std::shared_ptr<const struct TransformerPacked> packed;
  nn::PrepackedLinear logits;
  Tensor src_mask;  // [B, S] bool, true = padding (per sentence)
  // i64 [N]: the sentence each hypothesis continues (its row of src_mask and of the cross
  // caches); undefined while hypothesis n is sentence n (before the first reordering Select).
  Tensor memory_rows;
  int64_t length = 0;    // target positions decoded so far
  int64_t capacity = 0;  // positions the self-attention caches hold
};

class Transformer : public Seq2Seq {
 public:
  Transformer(const ModelConfig& c, Generator& gen) : Seq2Seq(c) {
    ATTEND_CHECK(!c.share_embeddings || c.src_vocab == c.tgt_vocab,
                 "Transformer: share_embeddings needs equal source and target vocabularies, got "
                 "src_vocab ",
                 c.src_vocab, " and tgt_vocab ", c.tgt_vocab);
    // Embeddings are scaled by sqrt(d_model) on the way in, so they start at std d^-1/2: unit
    // scale after scaling, and a sensible output projection when shared.
    auto make_embedding = [&](int64_t vocab) {
      auto e = std::make_shared<nn::Embedding>(vocab, c.d_model, gen, SpecialIds::kPad);
      nn::init::Normal(e->weight, 0.0, 1.0 / std::sqrt(static_cast<double>(c.d_model)), gen);
      e->weight.Select(0, SpecialIds::kPad).Fill(0.0);
      return e;
    };
    if (c.share_embeddings) {
      embed_ = RegisterModule("embed", make_embedding(c.src_vocab));
      src_embed_ = tgt_embed_ = embed_;
    } else {
      src_embed_ = RegisterModule("src_embed", make_embedding(c.src_vocab));
      tgt_embed_ = RegisterModule("tgt_embed", make_embedding(c.tgt_vocab));
      output_ =
          RegisterModule("output", std::make_shared<nn::Linear>(c.d_model, c.tgt_vocab, true, gen));
    }
    positions_ = RegisterModule("positions", std::make_shared<nn::SinusoidalPositionalEncoding>(
                                                 c.max_positions, c.d_model));
    embed_dropout_ = RegisterModule("embed_dropout",
                                    std::make_shared<nn::DropoutModule>(c.dropout, NextSeed(gen)));
    auto encoder = RegisterModule("encoder", std::make_shared<Stack>());
    auto decoder = RegisterModule("decoder", std::make_shared<Stack>());
    auto enc_layers = encoder->RegisterChild("layers", std::make_shared<Stack>());
    auto dec_layers = decoder->RegisterChild("layers", std::make_shared<Stack>());
    // Drawn layer by layer, an encoder layer then a decoder layer (a deeper stack's extra
    // layers last), so equal depths give the weights they always did.
    for (int64_t i = 0; i < std::max(c.layers, c.DecoderDepth()); ++i) {
      if (i < c.layers)
        encoder_layers_.push_back(
            enc_layers->RegisterChild(std::to_string(i), std::make_shared<EncoderLayer>(c, gen)));
      if (i < c.DecoderDepth())
        decoder_layers_.push_back(
            dec_layers->RegisterChild(std::to_string(i), std::make_shared<DecoderLayer>(c, gen)));
    }
    if (c.pre_norm) {  // pre-norm leaves each stack's output unnormalised: one final LayerNorm
      encoder_norm_ =
          encoder->RegisterChild("norm", std::make_shared<nn::LayerNormModule>(Shape{c.d_model}));
      decoder_norm_ =
          decoder->RegisterChild("norm", std::make_shared<nn::LayerNormModule>(Shape{c.d_model}));
    }
    // Its scores start at zero: every decoder layer reads the uniform mix (the paper's code
    // initialises them to a constant as well), and nothing is drawn, so the other weights are
    // those of the plain model from the same generator.
    if (c.transparent)
      transparent_ = RegisterModule(
          "transparent", std::make_shared<attention::TransparentAttention>(
                             static_cast<int>(c.layers + 1), static_cast<int>(c.DecoderDepth())));
    embed_scale_ = std::sqrt(static_cast<double>(c.d_model));
  }

  Tensor Forward(const Batch& batch, Tensor* attention) override {
    return Decode(batch, decoder_layers_.size() - 1, /*head=*/-1, attention);
  }

  Tensor ForwardWithHead(const Batch& batch, int64_t layer, int64_t head,
                         Tensor* weights) override {
    const auto layers = static_cast<int64_t>(decoder_layers_.size());
    ATTEND_CHECK(layer >= 0 && layer < layers && head >= 0 && head < config_.heads,
                 "Transformer::ForwardWithHead: layer ", layer, " head ", head,
                 " is not one of the ", layers, " layers x ", config_.heads, " heads");
    return Decode(batch, static_cast<size_t>(layer), head, weights);
  }

  std::vector<AttentionMap> AttentionMaps(const Batch& batch) override {
    NoGradGuard no_grad;
    CheckTokens(batch.src, config_.src_vocab, "source", "AttentionMaps");
    CheckTokens(batch.tgt_in, config_.tgt_vocab, "target", "AttentionMaps");
    ATTEND_CHECK(batch.tgt_in.size(1) <= config_.max_positions,
                 "Transformer::AttentionMaps: target length ", batch.tgt_in.size(1),
                 " exceeds max_positions ", config_.max_positions);
    std::vector<AttentionMap> maps;
    Tensor mask = SourceMask(batch.src, batch.src_lengths, "AttentionMaps");  // [B, S]
    const std::vector<Tensor> memory = Encode(batch.src, mask, &maps);
    Tensor y = Embed(*tgt_embed_, batch.tgt_in, 0);
    for (size_t i = 0; i < decoder_layers_.size(); ++i) {
      Tensor self, cross;
      y = decoder_layers_[i]->Forward(y, memory[i], mask, &cross, /*per_head=*/true, &self);
      const auto layer = static_cast<int64_t>(i);
      maps.push_back({"decoder." + std::to_string(i) + ".self", "self", "decoder", layer, self});
      maps.push_back({"decoder." + std::to_string(i) + ".cross", "cross", "decoder", layer, cross});
    }
    return maps;
  }

  std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& src_lengths) override {
    NoGradGuard no_grad;  // decoding is inference only; the caches are written in place
    CheckTokens(src, config_.src_vocab, "source", "Start");
    auto state = std::make_unique<TransformerState>();
    state->src_mask = SourceMask(src, src_lengths, "Start");
    // Eval mode (f32 weights): the weights packed once for every Step (and below f32, for the
    // encoder and the memory's keys and values too).
    if (!training() && tgt_embed_->weight.dtype() == DType::kF32)
      state->packed = Packed<TransformerPacked>();
    const TransformerPacked* pk = state->packed.get();
    const std::vector<Tensor> memory =
        Encode(src, state->src_mask, nullptr, pk && !pk->encoder.empty() ? &pk->encoder : nullptr);
    const int64_t n = src.size(0), h = config_.heads, hd = config_.d_model / config_.heads;
    state->capacity = std::min(kInitialCacheCapacity, config_.max_positions);
    const DType dtype = memory[0].dtype();
    for (size_t i = 0; i < decoder_layers_.size(); ++i) {
      const auto& layer = decoder_layers_[i];
      const nn::PrepackedLinear* kv = pk ? &pk->layers[i].memory_kv : nullptr;
      LayerCache lc;
      lc.cross =
          layer->multihead_attn->CrossKeysValues(memory[i], kv && kv->defined() ? kv : nullptr);
      lc.cross.k = lc.cross.k.Contiguous();  // [N, H, S, hd]
      lc.cross.v = lc.cross.v.Contiguous();
      lc.self = attention::KVCache::Empty(n, h, state->capacity, hd, dtype);
      state->layers.push_back(std::move(lc));
    }
    if (pk) state->logits = pk->logits;
    return state;
  }

  Tensor Step(DecoderState& base, const Tensor& tokens, Tensor* attention) override {
    NoGradGuard no_grad;
    auto* state = dynamic_cast<TransformerState*>(&base);
    ATTEND_CHECK(state != nullptr,
                 "Transformer::Step: the state was not made by this model's Start");
    const int64_t n = state->rows();
    ATTEND_CHECK(tokens.defined() && tokens.dtype() == DType::kI64 && tokens.dim() == 1 &&
                     tokens.size(0) == n,
                 "Transformer::Step: tokens must be i64 [", n, "] (one per hypothesis), got ",
                 tokens.defined() ? tokens.str() : std::string("undefined"));
    CheckTokens(tokens, config_.tgt_vocab, "target", "Step");
    const int64_t pos = state->length;
    ATTEND_CHECK(pos < config_.max_positions, "Transformer::Step: decoding position ", pos,
                 " reaches max_positions ", config_.max_positions);
    if (pos == state->capacity) Grow(*state);
    Tensor y = Embed(*tgt_embed_, tokens.Reshape({n, 1}), pos);  // [N, 1, E]
    Tensor weights;
    for (size_t i = 0; i < decoder_layers_.size(); ++i) {
      const bool last = i + 1 == decoder_layers_.size();
      y = decoder_layers_[i]->Step(y, state->layers[i], state->src_mask, state->memory_rows,
                                   last && attention != nullptr ? &weights : nullptr,
                                   state->packed ? &state->packed->layers[i] : nullptr);
    }
    state->length = pos + 1;
    if (attention != nullptr) *attention = weights.View({n, weights.size(2)});     // [N, S]
    if (!state->logits.defined()) return LogSoftmax(Logits(y).View({n, -1}), -1);  // [N, V]
    if (decoder_norm_) y = decoder_norm_->Forward(y);
    // [N, V], or [N, kept] under a shortlist (the packed projection is cut to the kept rows).
    return LogSoftmax(state->logits.Forward(y).View({n, -1}), -1);
  }

  void RestrictOutput(DecoderState& base, const std::vector<int64_t>& ids) override {
    auto* state = dynamic_cast<TransformerState*>(&base);
    ATTEND_CHECK(state != nullptr,
                 "Transformer::RestrictOutput: the state was not made by this model's Start");
    CheckKeptIds(ids, config_.tgt_vocab);
    ATTEND_CHECK(state->logits.defined(),
                 "transformer: a shortlist needs eval mode (the packed "
                 "output projection)");
    state->logits = state->logits.Rows(ids);
  }

 protected:
  std::shared_ptr<const void> PackDecoder() const override {
    if (tgt_embed_->weight.dtype() != DType::kF32) return nullptr;
    const nn::Precision p = decode_precision();
    auto pk = std::make_shared<TransformerPacked>();
    if (p != nn::Precision::kF32)
      for (const auto& layer : encoder_layers_) pk->encoder.push_back(layer->Pack(p));
    for (const auto& layer : decoder_layers_) pk->layers.push_back(layer->Pack(p));
    pk->logits = output_ ? nn::PrepackedLinear(*output_, p)
                         : nn::PrepackedLinear(embed_->weight, Tensor(), p);
    return pk;
  }

  void Select(DecoderState& base, const Tensor& rows) override {
    NoGradGuard no_grad;
    auto* state = dynamic_cast<TransformerState*>(&base);
    ATTEND_CHECK(state != nullptr,
                 "Transformer::Select: the state was not made by this model's Start");
    ATTEND_CHECK(rows.defined() && rows.dtype() == DType::kI64 && rows.dim() == 1,
                 "Transformer::Select: rows must be i64 [N'], got ",
                 rows.defined() ? rows.str() : std::string("undefined"));
    const int64_t n = state->rows();
    std::vector<int64_t> r = rows.ToVector<int64_t>();
    for (size_t i = 0; i < r.size(); ++i)
      ATTEND_CHECK(r[i] >= 0 && r[i] < n, "Transformer::Select: rows[", i, "] = ", r[i],
                   " is not one of the ", n, " hypotheses held");
    bool identity = static_cast<int64_t>(r.size()) == n;
    for (size_t i = 0; identity && i < r.size(); ++i) identity = r[i] == static_cast<int64_t>(i);
    if (identity) return;  // every hypothesis kept in place (greedy search, or all beams alive)
    // The hypotheses' own self-attention caches are copied; the memory stays one row per
    // sentence, and each hypothesis records which it reads.
    for (LayerCache& lc : state->layers) lc.self.Reorder(r, state->capacity);
    const Tensor index = Tensor::FromVector(r, {static_cast<int64_t>(r.size())});
    state->memory_rows =
        state->memory_rows.defined() ? IndexSelect(state->memory_rows, 0, index) : index;
  }

 private:
  void CheckTokens(const Tensor& ids, int64_t vocab, const char* side, const char* where) const {
    ATTEND_CHECK(ids.defined() && ids.dtype() == DType::kI64 && ids.dim() >= 1,
                 "Transformer::", where, ": ", side, " token ids must be i64, got ",
                 ids.defined() ? ids.str() : std::string("undefined"));
    const std::vector<int64_t> v = ids.ToVector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i)
      ATTEND_CHECK(v[i] >= 0 && v[i] < vocab, "Transformer::", where, ": ", side, " token id ",
                   v[i], " at flat index ", i, " of ", ids.str(), " is outside the vocabulary [0, ",
                   vocab, ")");
  }

  // True at padding: [B, S] from lengths [B].
  Tensor SourceMask(const Tensor& src, const Tensor& lengths, const char* where) const {
    ATTEND_CHECK(src.dim() == 2 && src.size(1) > 0, "Transformer::", where,
                 ": src must be [B, S] with S > 0, got ", src.str());
    const int64_t b = src.size(0), s = src.size(1);
    ATTEND_CHECK(s <= config_.max_positions, "Transformer::", where, ": source length ", s,
                 " exceeds max_positions ", config_.max_positions);
    ATTEND_CHECK(lengths.defined() && lengths.dtype() == DType::kI64 && lengths.dim() == 1 &&
                     lengths.size(0) == b,
                 "Transformer::", where, ": src_lengths must be i64 [", b, "], got ",
                 lengths.defined() ? lengths.str() : std::string("undefined"));
    const std::vector<int64_t> len = lengths.ToVector<int64_t>();
    std::vector<bool> m(static_cast<size_t>(b * s));
    for (int64_t i = 0; i < b; ++i) {
      ATTEND_CHECK(len[i] >= 1 && len[i] <= s, "Transformer::", where, ": src_lengths[", i,
                   "] = ", len[i], " is not in [1, ", s, "]");
      for (int64_t j = 0; j < s; ++j) m[i * s + j] = j >= len[i];
    }
    return Tensor::FromVector(m, {b, s});
  }

  // ids [B, T] at positions [first, first + T) -> dropout(E[ids] * sqrt(d) + PE) [B, T, E].
  Tensor Embed(const nn::Embedding& table, const Tensor& ids, int64_t first) {
    Tensor x = MulScalar(table.Forward(ids), embed_scale_);
    x = Add(x, positions_->table.Narrow(0, first, ids.size(1)));
    return embed_dropout_->Forward(x);
  }

  // The memory each decoder layer's cross-attention reads, [B, S, E] per decoder layer: the
  // encoder's output (one tensor, shared), or with transparent attention layer i's own mix
  //   m_i = sum_k softmax(w_i)_k z_k,  z_0 = the embedded source (as the first encoder layer
  //   reads it), z_k = encoder layer k's output
  // (attention::TransparentAttention). Pre-norm: the final encoder LayerNorm applied to each
  // m_i, so that m_i is z_L's normalised output when w_i puts all its weight on the last layer
  // (the plain model); each z_k normalised alone would hide the depth the residual stream grows
  // with. With `maps`, each encoder layer's self-attention per head.
  // `packed` (nullable): the encoder layers' packed weights (a translation below f32).
  std::vector<Tensor> Encode(const Tensor& src, const Tensor& mask,
                             std::vector<AttentionMap>* maps = nullptr,
                             const std::vector<PrepackedEncoderLayer>* packed = nullptr) {
    Tensor x = Embed(*src_embed_, src, 0);  // [B, S, E]
    const bool transparent = transparent_ != nullptr;
    std::vector<Tensor> outputs;  // transparent: z_0 .. z_L
    if (transparent) outputs.push_back(x);
    for (size_t i = 0; i < encoder_layers_.size(); ++i) {
      AttentionMap m{"encoder." + std::to_string(i) + ".self", "self", "encoder",
                     static_cast<int64_t>(i), Tensor()};
      x = encoder_layers_[i]->Forward(x, mask, maps ? &m.weights : nullptr,
                                      packed ? &(*packed)[i] : nullptr);
      if (maps) maps->push_back(std::move(m));
      if (transparent) outputs.push_back(x);
    }
    const size_t readers = decoder_layers_.size();
    if (!transparent)
      return std::vector<Tensor>(readers, encoder_norm_ ? encoder_norm_->Forward(x) : x);
    std::vector<Tensor> memory = transparent_->Forward(outputs);
    if (encoder_norm_)
      for (Tensor& m : memory) m = encoder_norm_->Forward(m);
    return memory;
  }

  // The teacher-forced decoder over batch: logits [B, T, V]. With `weights`, decoder layer
  // `layer`'s cross-attention: averaged over heads [B, T, S] (head -1), or head `head`'s.
  Tensor Decode(const Batch& batch, size_t layer, int64_t head, Tensor* weights) {
    CheckTokens(batch.src, config_.src_vocab, "source", "Forward");
    CheckTokens(batch.tgt_in, config_.tgt_vocab, "target", "Forward");
    ATTEND_CHECK(batch.tgt_in.dim() == 2 && batch.src.dim() == 2 &&
                     batch.tgt_in.size(0) == batch.src.size(0),
                 "Transformer::Forward: tgt_in ", batch.tgt_in.str(), " and src ", batch.src.str(),
                 " must be [B, T] and [B, S] with one B");
    ATTEND_CHECK(batch.tgt_in.size(1) <= config_.max_positions,
                 "Transformer::Forward: target length ", batch.tgt_in.size(1),
                 " exceeds max_positions ", config_.max_positions);
    Tensor mask = SourceMask(batch.src, batch.src_lengths, "Forward");  // [B, S]
    const std::vector<Tensor> memory = Encode(batch.src, mask);         // each [B, S, E]
    Tensor y = Embed(*tgt_embed_, batch.tgt_in, 0);                     // [B, T, E]
    for (size_t i = 0; i < decoder_layers_.size(); ++i) {
      if (i != layer || weights == nullptr) {
        y = decoder_layers_[i]->Forward(y, memory[i], mask, nullptr);
      } else if (head < 0) {
        y = decoder_layers_[i]->Forward(y, memory[i], mask, weights);
      } else {
        Tensor heads;  // [B, H, T, S]
        y = decoder_layers_[i]->Forward(y, memory[i], mask, &heads, /*per_head=*/true);
        *weights = heads.Select(1, head);
      }
    }
    return Logits(y);  // [B, T, V]
  }

  // Decoder output [.., E] -> logits [.., V] (the shared matrix transposed, or the output layer).
  Tensor Logits(Tensor y) {
    if (decoder_norm_) y = decoder_norm_->Forward(y);
    if (output_) return output_->Forward(y);
    return Matmul(y, embed_->weight.T());
  }

  // Doubles the self-attention caches' capacity (up to max_positions), keeping what is filled.
  void Grow(TransformerState& state) const {
    const int64_t cap = std::min(2 * state.capacity, config_.max_positions);
    std::vector<int64_t> all(static_cast<size_t>(state.rows()));
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    for (LayerCache& lc : state.layers) lc.self.Reorder(all, cap);
    state.capacity = cap;
  }

  std::shared_ptr<nn::Embedding> embed_, src_embed_, tgt_embed_;
  std::shared_ptr<nn::Linear> output_;
  std::shared_ptr<nn::SinusoidalPositionalEncoding> positions_;
  std::shared_ptr<nn::DropoutModule> embed_dropout_;
  std::vector<std::shared_ptr<EncoderLayer>> encoder_layers_;
  std::vector<std::shared_ptr<DecoderLayer>> decoder_layers_;
  std::shared_ptr<nn::LayerNormModule> encoder_norm_, decoder_norm_;
  // Transparent attention (null without it): its scores `logits` [decoder layers, encoder layers
  // + 1], row i decoder layer i's for z_0 .. z_L.
  std::shared_ptr<attention::TransparentAttention> transparent_;
  double embed_scale_ = 1.0;
};

}  // namespace

std::shared_ptr<Seq2Seq> MakeTransformer(const ModelConfig& config, Generator& gen) {
  config.Validate();
  return std::make_shared<Transformer>(config, gen);
}

}  // namespace attend::models
