// The RNN encoder-decoders: a bidirectional GRU/LSTM encoder and a GRU/LSTM decoder (or, with
// cell advanced-lstm, Tao and Liu's Advanced LSTM in both and in the listener) that reads
// either one fixed context vector (arch "rnn", the baseline of Sutskever/Cho) or an attended
// context at every step (arch "rnn-attention": global / local-m / local-p attention with a
// selectable score and teacher forcing at a chosen ratio), wired into the decoder one of three
// ways: Luong et al. 2015's (attend from the new state, combine after the step, input feeding),
// Bahdanau et al. 2015's (attend from the previous state, the context fed into the step) or the
// PyTorch tutorial's AttnDecoderRNN (weights over max_source_len positions from a layer over the
// previous word and state). A self-attention layer may refine the encoder's states first (the
// encyclopedia's "encoder self dot / QKV"). With speech features as the source (feature_dim > 0)
// the encoder is Listen, Attend and Spell's pyramidal listener (Chan et al. 2016), and the score
// may be Chorowski et al.'s location-aware one.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nn/advanced_lstm.h"
#include "attend/nn/rnn.h"
#include "attend/ops.h"

namespace attend::models {
namespace {

using attention::ScoreFunction;

std::shared_ptr<ScoreFunction> MakeScore(const ModelConfig& c, Generator& gen) {
  const int64_t h = c.hidden_dim;
  switch (c.score) {
    case Score::kAdditive:
      return std::make_shared<attention::AdditiveScore>(h, h, c.attention_dim, gen);
    case Score::kDot: return std::make_shared<attention::DotScore>();
    case Score::kGeneral: return std::make_shared<attention::GeneralScore>(h, h, gen);
    case Score::kConcat:
      return std::make_shared<attention::ConcatScore>(h, h, c.attention_dim, gen);
    case Score::kLocation:
      return std::make_shared<attention::LocationScore>(h, c.max_source_len, gen);
    case Score::kLocationAware:
      return std::make_shared<attention::LocationAwareScore>(
          h, h, c.attention_dim, c.location_filters, c.location_width, gen);
    case Score::kQkv:
      return std::make_shared<attention::QkvScore>(h, h, c.attention_dim, c.attention_dim, gen);
  }
  ATTEND_CHECK(false, "MakeScore: unknown score ", static_cast<int>(c.score));
  return nullptr;
}

// A GRU, an LSTM or an Advanced LSTM behind one call (the decoder and the encoder are either).
struct Recurrent {
  std::shared_ptr<nn::GRU> gru;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::AdvancedLSTM> advanced;
  // x [B, T, in] -> output [B, T, D*H]; h, c [L*D, B, H] in and out (c: the LSTMs only). The
  // Advanced LSTM's earlier steps travel in `past` (a decoder stepping one token at a time keeps
  // them; null: the sequence starts with no past).
  Tensor Run(const Tensor& x, const Tensor& lengths, Tensor* h, Tensor* c,
             nn::AdvancedLSTM::State* past = nullptr) {
    if (advanced) {
      nn::AdvancedLSTM::State local;
      nn::AdvancedLSTM::State& s = past ? *past : local;
      s.h = h ? *h : Tensor();
      s.c = c ? *c : Tensor();
      Tensor out = advanced->Forward(x, lengths, &s);
      if (h) *h = s.h;
      if (c) *c = s.c;
      return out;
    }
    if (gru) {
      nn::GRU::Output o = gru->Forward(x, lengths, h ? *h : Tensor());
      if (h) *h = o.h_n;
      return o.output;
    }
    nn::LSTM::Output o = lstm->Forward(x, lengths, h ? *h : Tensor(), c ? *c : Tensor());
    if (h) *h = o.h_n;
    if (c) *c = o.c_n;
    return o.output;
  }
};

class RnnState : public DecoderState {
 public:
  int64_t rows() const override { return h.size(1); }
  Tensor memory;         // [N, S, H] encoder states (after the self-attention layer, if any)
  Tensor keys;           // [N, S, *] the score's prepared keys, computed once per sentence
  Tensor values;         // [N, S, A] the qkv score's projected values (other scores: memory)
  Tensor padding;        // bool [N, 1, S], true = padding
  Tensor lengths;        // i64 [N]
  Tensor fixed_context;  // [N, H] the baseline's context vector
  Tensor h, c;           // [L, N, H]
  Tensor feed;           // [N, H] the previous attentional state (input feeding)
  Tensor previous;       // [N, S] the last step's weights (location-aware score)
  int64_t step = 0;
  // advanced-lstm: the decoder's K-1 earlier states per layer and how many are real (the latest
  // state is h, c above).
  nn::AdvancedLSTM::State past;
  // The row of Start's batch each row descends from (empty: row i is row i). The per-sentence
  // tensors above (memory to fixed_context) are equal in all rows of one origin.
  std::vector<int64_t> origin;
  // Decoding (eval mode, no gradient): the output, combine and additive score's query layers
  // packed (RnnPacked), and under a shortlist the output layer cut to the kept ids.
  nn::PrepackedLinear out, combine, score_query;
  nn::PrepackedRecurrentStep decoder;
};

// The decoder's layers packed for decoding in the model's decode precision; below f32 also the
// encoder and the additive score's key projection (f32 runs them as training does).
struct RnnPacked {
  nn::PrepackedLinear out, combine, score_query, score_keys;
  nn::PrepackedRecurrentStep decoder;
  nn::PrepackedRecurrent encoder;
};

class RnnSeq2Seq : public Seq2Seq {
 public:
  RnnSeq2Seq(const ModelConfig& c, Generator& gen) : Seq2Seq(c) {
    ATTEND_CHECK(c.hidden_dim % 2 == 0, "rnn model: hidden_dim ", c.hidden_dim,
                 " must be even (the bidirectional encoder gives hidden_dim / 2 per direction)");
    attention_ = c.arch == Arch::kRnnAttention;
    // The fixed-context baseline has no attention to wire (Validate refuses another wiring).
    wiring_ = attention_ ? c.wiring : Wiring::kLuong;
    // Input feeding passes Luong's h~ to the next step; the other wirings feed the context into
    // the step already, so they ignore the option.
    feeding_ = wiring_ == Wiring::kLuong && c.input_feeding;
    if (wiring_ == Wiring::kTutorial) {
      ATTEND_CHECK(c.window == Window::kGlobal, "rnn model: --wiring tutorial weighs its ",
                   c.max_source_len, " positions itself: --window ", NameOf(c.window),
                   " does not apply (use global)");
      ATTEND_CHECK(c.score == Score::kAdditive,
                   "rnn model: --wiring tutorial scores with its own layer over [embedding; "
                   "s_{t-1}]: --score ",
                   NameOf(c.score), " does not apply (leave the default)");
    }
    const int64_t h = c.hidden_dim, e = c.embed_dim;
    // The context's width: the qkv score mixes values projected to attention_dim.
    const int64_t dc =
        attention_ && wiring_ != Wiring::kTutorial && c.score == Score::kQkv ? c.attention_dim : h;
    speech_ = c.feature_dim > 0;
    if (!speech_)
      src_embed_ = RegisterModule(
          "src_embed", std::make_shared<nn::Embedding>(c.src_vocab, e, gen, SpecialIds::kPad));
    tgt_embed_ = RegisterModule(
        "tgt_embed", std::make_shared<nn::Embedding>(c.tgt_vocab, e, gen, SpecialIds::kPad));
    nn::RnnOptions enc;
    enc.num_layers = c.encoder_layers;
    enc.bidirectional = true;
    enc.dropout = c.encoder_layers > 1 ? c.dropout : 0.0;
    enc.dropout_seed = gen.Reserve(1);
    nn::RnnOptions dec;
    dec.num_layers = c.decoder_layers;
    dec.dropout = c.decoder_layers > 1 ? c.dropout : 0.0;
    dec.dropout_seed = gen.Reserve(1);
    // luong: [y_{t-1}; h~_{t-1}] (feeding) or y_{t-1}; bahdanau: [y_{t-1}; c_t]; tutorial:
    // relu(W [y_{t-1}; c_t]), H wide.
    const int64_t dec_in = wiring_ == Wiring::kBahdanau   ? e + dc
                           : wiring_ == Wiring::kTutorial ? h
                                                          : e + (feeding_ ? h : 0);
    encoder_ =
        MakeRecurrent("encoder", speech_ ? c.feature_dim * c.frame_stacking : e, h / 2, gen, enc);
    decoder_ = MakeRecurrent("decoder", dec_in, h, gen, dec);
    if (speech_) {
      // Each level reads pairs of the level below's outputs: 2 * h inputs, h / 2 per direction.
      nn::RnnOptions level;
      level.bidirectional = true;
      for (int64_t i = 0; i < c.pyramid_levels; ++i)
        pyramid_.push_back(MakeRecurrent("pyramid." + std::to_string(i), 2 * h, h / 2, gen, level));
    }
    bridge_ = RegisterModule("bridge", std::make_shared<nn::Linear>(h, h, true, gen));
    if (attention_ && wiring_ == Wiring::kTutorial) {
      // The tutorial's attn and attn_combine, with their biases.
      attn_ =
          RegisterModule("attn", std::make_shared<nn::Linear>(e + h, c.max_source_len, true, gen));
      attn_combine_ =
          RegisterModule("attn_combine", std::make_shared<nn::Linear>(e + h, h, true, gen));
    } else if (attention_) {
      score_ = RegisterModule("score", MakeScore(c, gen));
      qkv_ = std::dynamic_pointer_cast<attention::QkvScore>(score_);
      if (c.window == Window::kLocalP)
        local_p_ = RegisterModule("local_p", std::make_shared<attention::LocalPredictive>(
                                                 h, c.attention_dim, c.window_size, gen));
    }
    // luong: h~ = tanh(W_c [c_t; s_t]); bahdanau: tanh(W_c [s_t; c_t; y_{t-1}]); the tutorial
    // reads s_t as it is.
    if (wiring_ == Wiring::kLuong)
      combine_ = RegisterModule("combine", std::make_shared<nn::Linear>(dc + h, h, false, gen));
    else if (wiring_ == Wiring::kBahdanau)
      combine_ = RegisterModule("combine", std::make_shared<nn::Linear>(h + dc + e, h, false, gen));
    out_ = RegisterModule("out", std::make_shared<nn::Linear>(h, c.tgt_vocab, true, gen));
    embed_dropout_ = RegisterModule("embed_dropout",
                                    std::make_shared<nn::DropoutModule>(c.dropout, gen.Reserve(1)));
    out_dropout_ = RegisterModule("out_dropout",
                                  std::make_shared<nn::DropoutModule>(c.dropout, gen.Reserve(1)));
    // The teacher-forcing coin's stream, kept as a buffer so a resumed run flips the same coins.
    tf_state_ = RegisterBuffer(
        "tf_rng_state",
        Tensor::FromVector(std::vector<int64_t>{static_cast<int64_t>(gen.Reserve(1)), 0}, {2}));
    // Registered last, so that the models without it draw the same initial weights as before.
    if (c.encoder_self_attention == SelfAttend::kQkv)
      self_qkv_ = RegisterModule(
          "self_attention", std::make_shared<attention::QkvScore>(h, h, c.attention_dim, h, gen));
  }

  Tensor Forward(const Batch& batch, Tensor* attention) override {
    return Run(batch, attention, nullptr);
  }

  // The decoder's weights as the site "attention" and, with the encoder's self-attention, its
  // weights as "encoder.0.self" (queries and keys both the source positions).
  std::vector<AttentionMap> AttentionMaps(const Batch& batch) override {
    NoGradGuard no_grad;
    Tensor weights, self_weights;
    Run(batch, &weights, &self_weights);
    std::vector<AttentionMap> maps;
    if (self_weights.defined())
      maps.push_back({"encoder.0.self", "self", "encoder", 0, self_weights.Unsqueeze(1)});
    if (weights.defined())
      maps.push_back({"attention", "cross", "decoder", 0, weights.Unsqueeze(1)});
    return maps;
  }

  std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& src_lengths) override {
    CheckSource(src);
    // Packed for decoding in eval mode without gradients (the packed layers are f32 only).
    std::shared_ptr<const RnnPacked> pk;
    if (!training() && !GradMode::enabled() && out_->weight.dtype() == DType::kF32)
      pk = Packed<RnnPacked>();
    auto st = std::make_unique<RnnState>(Encode(src, src_lengths, nullptr, pk.get()));
    if (pk) {
      st->out = pk->out;
      st->combine = pk->combine;
      st->score_query = pk->score_query;
      st->decoder = pk->decoder;
    }
    return st;
  }

  void RestrictOutput(DecoderState& state, const std::vector<int64_t>& ids) override {
    auto& st = static_cast<RnnState&>(state);
    CheckKeptIds(ids, config_.tgt_vocab);
    ATTEND_CHECK(st.out.defined(),
                 "rnn model: a shortlist needs eval mode without gradients "
                 "(the packed output layer)");
    st.out = st.out.Rows(ids);
  }

  Tensor Step(DecoderState& state, const Tensor& tokens, Tensor* attention) override {
    auto& st = static_cast<RnnState&>(state);
    CheckTokens(tokens, config_.tgt_vocab, "target");
    ATTEND_CHECK(tokens.dim() == 1 && tokens.size(0) == st.rows(), "Step: tokens ", tokens.str(),
                 " must be i64 [", st.rows(), "]");
    Tensor emb = embed_dropout_->Forward(tgt_embed_->Forward(tokens));  // [N, E]
    Tensor w;
    Tensor ht = DecodeStep(st, emb, attention ? &w : nullptr);
    if (attention) *attention = w;
    // [N, V], or [N, kept] under a shortlist (the packed layer is cut to the kept rows).
    if (st.out.defined()) return LogSoftmax(st.out.Forward(ht), 1);
    return LogSoftmax(out_->Forward(out_dropout_->Forward(ht)), 1);  // [N, V]
  }

  // The per-sentence tensors (memory, keys, values, padding, lengths, fixed context) are
  // gathered only when the rows' origins change (a beam's first expansion, a finished sentence
  // leaving the batch): between those, a beam's step moves hypotheses only among the rows of
  // their own sentence, whose copies are equal, and the gather was a tenth of an int8 beam
  // search's time. The hypotheses' own state (h, c, feed, previous, past) is gathered always.
  void Select(DecoderState& state, const Tensor& rows) override {
    auto& st = static_cast<RnnState&>(state);
    ATTEND_CHECK(rows.defined() && rows.dtype() == DType::kI64 && rows.dim() == 1,
                 "rnn model: Select rows must be i64 [N'], got ",
                 rows.defined() ? rows.str() : std::string("undefined"));
    const int64_t n = st.rows();
    const std::vector<int64_t> r = rows.ToVector<int64_t>();
    std::vector<int64_t> origin(r.size());
    bool same = static_cast<int64_t>(r.size()) == n;
    for (size_t i = 0; i < r.size(); ++i) {
      ATTEND_CHECK(r[i] >= 0 && r[i] < n, "rnn model: Select rows[", i, "] = ", r[i],
                   " is not one of the ", n, " hypotheses held");
      origin[i] = st.origin.empty() ? r[i] : st.origin[static_cast<size_t>(r[i])];
      if (same) same = origin[i] == (st.origin.empty() ? static_cast<int64_t>(i) : st.origin[i]);
    }
    auto pick = [&](Tensor& t, int dim) {
      if (t.defined()) t = IndexSelect(t, dim, rows);
    };
    if (!same) {
      pick(st.memory, 0);
      pick(st.keys, 0);
      pick(st.values, 0);
      pick(st.padding, 0);
      pick(st.lengths, 0);
      pick(st.fixed_context, 0);
    }
    st.origin = std::move(origin);
    pick(st.h, 1);
    pick(st.c, 1);
    if (st.past.past_count.defined()) st.past.SelectRows(rows);
    pick(st.feed, 0);
    pick(st.previous, 0);
  }

 protected:
  std::shared_ptr<const void> PackDecoder() const override {
    if (out_->weight.dtype() != DType::kF32) return nullptr;
    const nn::Precision p = decode_precision();
    auto pk = std::make_shared<RnnPacked>();
    pk->out = nn::PrepackedLinear(*out_, p);
    if (combine_) pk->combine = nn::PrepackedLinear(*combine_, p);
    if (const auto* additive = dynamic_cast<const attention::AdditiveScore*>(score_.get())) {
      pk->score_query = nn::PrepackedLinear(*additive->query_proj, p);
      if (p != nn::Precision::kF32) pk->score_keys = nn::PrepackedLinear(*additive->key_proj, p);
    }
    // The token encoder (not a speech listener's pyramid, nor the Advanced LSTM).
    if (p != nn::Precision::kF32 && !speech_ && (encoder_.gru || encoder_.lstm))
      pk->encoder = nn::PrepackedRecurrent(
          encoder_.gru ? static_cast<const nn::RnnBase&>(*encoder_.gru) : *encoder_.lstm, p);
    if (decoder_.gru) pk->decoder = nn::PrepackedRecurrentStep(*decoder_.gru, p);
    if (decoder_.lstm) pk->decoder = nn::PrepackedRecurrentStep(*decoder_.lstm, p);
    return pk;
  }

 private:
  static void CheckTokens(const Tensor& ids, int64_t vocab, const char* side) {
    ATTEND_CHECK(ids.defined() && ids.dtype() == DType::kI64, "rnn model: ", side,
                 " tokens must be i64, got ", ids.defined() ? ids.str() : "undefined");
    if (ids.numel() == 0) return;
    const Tensor flat = ids.Contiguous();
    const int64_t* p = flat.data<int64_t>();
    for (int64_t i = 0; i < flat.numel(); ++i)
      ATTEND_CHECK(p[i] >= 0 && p[i] < vocab, "rnn model: ", side, " token id ", p[i],
                   " is outside the vocabulary of ", vocab);
  }

  // Token ids, or speech features f32 [B, S, feature_dim].
  void CheckSource(const Tensor& src) const {
    if (!speech_) return CheckTokens(src, config_.src_vocab, "source");
    ATTEND_CHECK(src.defined() && src.dtype() == DType::kF32 && src.dim() == 3 &&
                     src.size(2) == config_.feature_dim,
                 "speech model: the source must be f32 features [B, S, ", config_.feature_dim,
                 "], got ", src.defined() ? src.str() : "undefined");
  }

  Recurrent MakeRecurrent(const std::string& name, int64_t in, int64_t hidden, Generator& gen,
                          const nn::RnnOptions& options) {
    Recurrent r;
    if (config_.cell == Cell::kGru) {
      r.gru = RegisterModule(name, std::make_shared<nn::GRU>(in, hidden, gen, options));
    } else if (config_.cell == Cell::kLstm) {
      r.lstm = RegisterModule(name, std::make_shared<nn::LSTM>(in, hidden, gen, options));
    } else {
      nn::AdvancedLstmOptions advanced;
      advanced.history = config_.history;
      advanced.attention_dim = config_.attention_dim;
      r.advanced = RegisterModule(
          name, std::make_shared<nn::AdvancedLSTM>(in, hidden, gen, options, advanced));
    }
    return r;
  }

  // Teacher-forced logits [B, T, V]; with `attention` the decoder's weights [B, T, S], with
  // `self_weights` the encoder self-attention's [B, S, S].
  Tensor Run(const Batch& batch, Tensor* attention, Tensor* self_weights) {
    CheckSource(batch.src);
    CheckTokens(batch.tgt_in, config_.tgt_vocab, "target");
    const int64_t b = batch.tgt_in.size(0), t_len = batch.tgt_in.size(1);
    RnnState st = Encode(batch.src, batch.src_lengths, self_weights);
    Tensor emb = embed_dropout_->Forward(tgt_embed_->Forward(batch.tgt_in));  // [B, T, E]
    const bool sample = training() && config_.teacher_forcing < 1.0;
    if (wiring_ == Wiring::kLuong && !feeding_ && !sample && !st.previous.defined()) {
      // Every step's input is known: one recurrent call over the whole target, then attention
      // for all steps at once ([B, T, S] scores).
      Tensor top = decoder_.Run(emb, Tensor(), &st.h, has_cell_ ? &st.c : nullptr);
      Tensor weights;
      Tensor ht = Attend(st, top, /*first_step=*/0, attention ? &weights : nullptr);  // [B, T, H]
      if (attention) *attention = weights;
      return out_->Forward(out_dropout_->Forward(ht));  // [B, T, V]
    }
    std::vector<Tensor> states, weights, step_logits;
    Tensor next = emb.Select(1, 0);  // [B, E]
    for (int64_t t = 0; t < t_len; ++t) {
      Tensor w;
      Tensor ht = DecodeStep(st, next, attention ? &w : nullptr);  // [B, H]
      states.push_back(ht);
      if (attention) weights.push_back(w);
      if (t + 1 == t_len) break;
      Tensor reference = emb.Select(1, t + 1);
      if (!sample) {
        next = reference;
        continue;
      }
      // Scheduled sampling: each sentence feeds its own greedy prediction with probability
      // 1 - teacher_forcing (the prediction carries no gradient).
      Tensor logits = out_->Forward(out_dropout_->Forward(ht));  // [B, V]
      step_logits.push_back(logits);
      Tensor predicted;
      {
        NoGradGuard no_grad;
        predicted = Argmax(logits, 1);
      }
      Tensor use_ref = CoinFlips(b);  // bool [B, 1]
      next = Where(use_ref, reference, embed_dropout_->Forward(tgt_embed_->Forward(predicted)));
    }
    if (attention && attention_) *attention = Stack(weights, 1);  // [B, T, S]
    if (!step_logits.empty()) {
      step_logits.push_back(out_->Forward(out_dropout_->Forward(states.back())));
      return Stack(step_logits, 1);
    }
    return out_->Forward(out_dropout_->Forward(Stack(states, 1)));  // [B, T, V]
  }

  // The listener: the encoder over the frames, then each pyramid level over pairs of the level
  // below's outputs ([B, S, H] -> [B, ceil(S / 2), 2H]; an odd S gets one zero frame). A
  // sequence of n steps keeps ceil(n / 2): its last pair may end in a zero (padding) output.
  // lengths becomes the reduced lengths; hn and cn hold the last layer's final states.
  Tensor Listen(const Tensor& frames, Tensor* lengths, Tensor* hn, Tensor* cn) {
    Tensor* c = has_cell_ ? cn : nullptr;
    Tensor x = StackSteps(frames, config_.frame_stacking, lengths);  // [B, S / k, k F]
    x = encoder_.Run(x, *lengths, hn, c);                            // [B, S / k, H]
    for (auto& level : pyramid_) {
      x = StackSteps(x, 2, lengths);  // [B, S / 2, 2H]
      *hn = Tensor();                 // each level starts from zero states
      if (c) *c = Tensor();
      x = level.Run(x, *lengths, hn, c);
    }
    return x;
  }

  // Joins k consecutive steps of x [B, S, D] into one: [B, ceil(S / k), k D], zero steps
  // completing the last group; lengths (i64 [B]) become ceil(length / k).
  static Tensor StackSteps(const Tensor& x, int64_t k, Tensor* lengths) {
    if (k == 1) return x;
    const int64_t b = x.size(0), s = x.size(1), d = x.size(2), groups = (s + k - 1) / k;
    Tensor y = x;
    if (groups * k > s) y = Concat({x, Tensor::Zeros({b, groups * k - s, d}, x.dtype())}, 1);
    Tensor reduced = Tensor::Zeros({b}, DType::kI64);
    const Tensor old = lengths->Contiguous();
    for (int64_t i = 0; i < b; ++i)
      reduced.data<int64_t>()[i] = (old.data<int64_t>()[i] + k - 1) / k;
    *lengths = reduced;
    return y.Contiguous().View({b, groups, k * d});
  }

  // bool [B, 1]: true = feed the reference token this step. Coin i of the stream is
  // UniformD(seed, counter) < teacher_forcing, the counter advancing once per sentence and step
  // (tests/reference/models/rnn_model.py draws the same coins).
  Tensor CoinFlips(int64_t b) {
    int64_t* s = tf_state_.data<int64_t>();
    std::vector<bool> coins(b);
    for (int64_t i = 0; i < b; ++i)
      coins[i] = Generator::UniformD(static_cast<uint64_t>(s[0]), static_cast<uint64_t>(s[1]++)) <
                 config_.teacher_forcing;
    return Tensor::FromVector(coins, {b, 1});
  }

  // One self-attention layer over the encoder's states h [B, S, H] (padding keys excluded by
  // `padding` [B, 1, S]), added as a residual: h'_i = h_i + sum_j alpha_ij v_j. dot: scores
  // h_i . h_j / sqrt(H) (scaled like the qkv form, so that the softmax does not saturate as H
  // grows), v = h; qkv: (W_q h_i) . (W_k h_j) / sqrt(A), v_j = W_v h_j (H wide, to add). Rows of
  // padding positions attend too, but nothing downstream reads them.
  Tensor SelfAttend(const Tensor& memory, const Tensor& padding, Tensor* weights) {
    Tensor context, w;
    if (self_qkv_) {
      attention::Attended a = self_qkv_->Attend(memory, memory, padding);
      context = a.context;
      w = a.weights;
    } else {
      const double scale = 1.0 / std::sqrt(static_cast<double>(memory.size(2)));
      w = attention::SoftWeights(MulScalar(Matmul(memory, memory.Transpose(1, 2)), scale),
                                 padding);  // [B, S, S]
      context = attention::WeightedSum(w, memory);
    }
    if (weights) *weights = w;
    return Add(memory, context);
  }

  // The encoder's summary [B, H] read from its outputs: each direction's final state is its
  // output at the position it ends on (forward: the last real position; backward: the first),
  // so this equals the final states without self-attention and reads h' with it.
  static Tensor SummaryOf(const Tensor& memory, const Tensor& lengths) {
    const int64_t b = memory.size(0), s = memory.size(1), h = memory.size(2);
    const Tensor lens = lengths.Contiguous();
    std::vector<int64_t> rows(b);
    for (int64_t i = 0; i < b; ++i)
      rows[i] = i * s + std::max<int64_t>(lens.data<int64_t>()[i] - 1, 0);
    Tensor last = IndexSelect(memory.Contiguous().View({b * s, h}), 0,
                              Tensor::FromVector(rows, {b}));  // [B, H]
    return Concat({last.Narrow(1, 0, h / 2), memory.Select(1, 0).Narrow(1, h / 2, h / 2)}, 1);
  }

  // `pk` (nullable): the packed layers of a translation (Start).
  RnnState Encode(const Tensor& src, const Tensor& lengths, Tensor* self_weights,
                  const RnnPacked* pk = nullptr) {
    ATTEND_CHECK(src.dim() == (speech_ ? 3 : 2) && lengths.defined() && lengths.dim() == 1 &&
                     lengths.size(0) == src.size(0),
                 "rnn model: source ", src.str(), " and lengths ",
                 lengths.defined() ? lengths.str() : "undefined",
                 " must be [B, S] (speech: [B, S, F]) and [B]");
    const int64_t b = src.size(0), h = config_.hidden_dim;
    RnnState st;
    Tensor hn, cn;
    Tensor reduced = lengths;
    if (speech_) {
      st.memory = Listen(src, &reduced, &hn, &cn);  // [B, S', H]
    } else {
      Tensor emb = embed_dropout_->Forward(src_embed_->Forward(src));  // [B, S, E]
      st.memory = pk && pk->encoder.defined()
                      ? pk->encoder.Forward(emb, lengths, &hn, has_cell_ ? &cn : nullptr)
                      : encoder_.Run(emb, lengths, &hn, has_cell_ ? &cn : nullptr);  // [B, S, H]
    }
    const int64_t s = st.memory.size(1);
    if (config_.score == Score::kLocation && attention_ && wiring_ != Wiring::kTutorial)
      ATTEND_CHECK(s <= config_.max_source_len, "rnn model: source length ", s,
                   " exceeds the location score's max_source_len ", config_.max_source_len);
    if (wiring_ == Wiring::kTutorial)
      ATTEND_CHECK(s <= config_.max_source_len, "rnn model: source length ", s,
                   " exceeds max_source_len ", config_.max_source_len,
                   ", the positions the tutorial wiring's attention weighs");
    st.lengths = reduced;
    const bool self_attend = config_.encoder_self_attention != SelfAttend::kNone;
    Tensor padding;
    if (attention_ || self_attend) {
      Tensor pos = Tensor::Arange(s, DType::kI64).View({1, 1, s});
      padding = Ge(pos, reduced.View({b, 1, 1}));  // [B, 1, S]
    }
    Tensor summary;
    if (self_attend) {
      st.memory = SelfAttend(st.memory, padding, self_weights);  // h' [B, S, H]
      summary = SummaryOf(st.memory, reduced);
    } else {
      // The last layer's two directions' final states, side by side: [B, H].
      const int64_t l = speech_ && !pyramid_.empty() ? 1 : config_.encoder_layers;
      summary = Concat({hn.Select(0, 2 * l - 2), hn.Select(0, 2 * l - 1)}, 1);
    }
    Tensor h0 = Tanh(bridge_->Forward(summary));  // [B, H]
    std::vector<Tensor> layers(config_.decoder_layers, h0);
    st.h = Stack(layers, 0);  // [L, B, H]
    if (has_cell_) st.c = Tensor::Zeros({config_.decoder_layers, b, h}, h0.dtype());
    if (feeding_) st.feed = Tensor::Zeros({b, h}, h0.dtype());
    if (attention_) {
      st.padding = padding;
      if (pk && pk->score_keys.defined()) st.keys = pk->score_keys.Forward(st.memory);
      else if (score_) st.keys = score_->PrepareKeys(st.memory);
      if (qkv_) st.values = qkv_->PrepareValues(st.memory);
      if (config_.score == Score::kLocationAware) {
        // Before the first step the alignment is spread evenly over the real positions.
        Tensor real = LogicalNot(st.padding.Squeeze(1)).To(st.memory.dtype());  // [B, S]
        st.previous = Div(real, reduced.To(st.memory.dtype()).View({b, 1}));
      }
    } else {
      st.fixed_context = summary;
    }
    return st;
  }

  // The decoder's attention for queries [N, Tq, H] at target positions first_step..: the
  // context [N, Tq, Dc] and (optionally) the weights [N, Tq, S].
  Tensor Context(RnnState& st, const Tensor& query, int64_t first_step, Tensor* weights) {
    Tensor scores;  // [N, Tq, S]
    if (st.previous.defined()) {
      const auto& score = static_cast<const attention::LocationAwareScore&>(*score_);
      scores = score.Scores(query, st.keys, st.previous);
      if (config_.sharpening != 1.0) scores = MulScalar(scores, config_.sharpening);
    } else if (st.score_query.defined()) {
      scores = static_cast<const attention::AdditiveScore&>(*score_).Scores(query, st.keys,
                                                                            &st.score_query);
    } else {
      scores = score_->Scores(query, st.keys);
    }
    Tensor w;
    if (local_p_) {
      w = local_p_->Weights(scores, query, st.lengths);
    } else {
      Tensor mask = st.padding;  // [N, 1, S]
      if (config_.window == Window::kLocalM) {
        const int64_t tq = query.size(1), s = scores.size(2);
        Tensor window = attention::LocalMonotonicMask(first_step + tq, s, config_.window_size)
                            .Narrow(0, first_step, tq);  // [Tq, S]
        mask = LogicalOr(mask, window.Unsqueeze(0));
      }
      w = attention::SoftWeights(scores, mask);
    }
    if (st.previous.defined()) st.previous = w.Squeeze(1);
    if (weights) *weights = w;
    return attention::WeightedSum(w, st.values.defined() ? st.values : st.memory);
  }

  // tanh(W_c x): Luong's attentional state, or Bahdanau's output layer before `out`.
  Tensor Combine(const RnnState& st, const Tensor& x) const {
    return Tanh(st.combine.defined() ? st.combine.Forward(x) : combine_->Forward(x));
  }

  // Luong: the attentional states h~ = tanh(W_c [c_t; h_t]) for decoder outputs top [N, Tq, H]
  // at target positions first_step.., and (optionally) the weights [N, Tq, S].
  Tensor Attend(RnnState& st, const Tensor& top, int64_t first_step, Tensor* weights) {
    const Tensor context = attention_ ? Context(st, top, first_step, weights)
                                      : st.fixed_context.Unsqueeze(1).Expand(top.shape());
    return Combine(st, Concat({context, top}, 2));
  }

  // One step of the stacked decoder on x [N, in]: updates st.h (and st.c) and returns the top
  // layer's new state [N, H]. Every wiring steps the recurrence through here.
  Tensor StepDecoder(RnnState& st, const Tensor& x) {
    Tensor* c = has_cell_ ? &st.c : nullptr;
    if (st.decoder.defined()) return st.decoder.Step(x, &st.h, c);
    return decoder_.Run(x.Unsqueeze(1), Tensor(), &st.h, c, &st.past).Squeeze(1);
  }

  // One decoder step from input embeddings [N, E] (the previous words y_{t-1}); returns the
  // vector `out` reads [N, H] and updates the state; `weights` [N, S].
  Tensor DecodeStep(RnnState& st, const Tensor& emb, Tensor* weights) {
    Tensor ht;
    switch (wiring_) {
      case Wiring::kLuong: {
        Tensor x = feeding_ ? Concat({emb, st.feed}, 1) : emb;  // [N, in]
        const Tensor top = StepDecoder(st, x).Unsqueeze(1);     // [N, 1, H]
        Tensor w;
        ht = Attend(st, top, st.step, weights ? &w : nullptr).Squeeze(1);  // [N, H]
        if (weights && w.defined()) *weights = w.Squeeze(1);
        if (feeding_) st.feed = ht;
        break;
      }
      case Wiring::kBahdanau: {
        // e_jt = score(s_{t-1}, h_j): the top layer's state before this step (s_0: the bridge).
        const Tensor query = st.h.Select(0, st.h.size(0) - 1).Unsqueeze(1);  // [N, 1, H]
        Tensor w;
        const Tensor context = Context(st, query, st.step, &w).Squeeze(1);  // [N, Dc]
        if (weights) *weights = w.Squeeze(1);
        const Tensor top = StepDecoder(st, Concat({emb, context}, 1));  // [N, H]
        ht = Combine(st, Concat({top, context, emb}, 1));
        break;
      }
      case Wiring::kTutorial: {
        // softmax(W_a [y_{t-1}; s_{t-1}]) over the first S of max_source_len positions, padding
        // excluded (the tutorial itself weighs padding too).
        const Tensor prev = st.h.Select(0, st.h.size(0) - 1);  // [N, H]
        const int64_t s = st.memory.size(1);
        const Tensor scores =
            attn_->Forward(Concat({emb, prev}, 1)).Narrow(1, 0, s).Unsqueeze(1);  // [N, 1, S]
        const Tensor w = attention::SoftWeights(scores, st.padding);
        if (weights) *weights = w.Squeeze(1);
        const Tensor context = attention::WeightedSum(w, st.memory).Squeeze(1);  // [N, H]
        ht = StepDecoder(st, Relu(attn_combine_->Forward(Concat({emb, context}, 1))));
        break;
      }
    }
    ++st.step;
    return ht;
  }

  bool has_cell_ = config_.cell != Cell::kGru;  // a memory cell c beside h (the LSTMs)
  bool attention_ = false, speech_ = false, feeding_ = false;
  Wiring wiring_ = Wiring::kLuong;
  std::shared_ptr<nn::Embedding> src_embed_, tgt_embed_;
  Recurrent encoder_, decoder_;
  std::vector<Recurrent> pyramid_;
  std::shared_ptr<nn::Linear> bridge_, combine_, out_, attn_, attn_combine_;
  std::shared_ptr<ScoreFunction> score_;
  std::shared_ptr<attention::QkvScore> qkv_, self_qkv_;
  std::shared_ptr<attention::LocalPredictive> local_p_;
  std::shared_ptr<nn::DropoutModule> embed_dropout_, out_dropout_;
  Tensor tf_state_;
};

}  // namespace

std::shared_ptr<Seq2Seq> MakeRnnSeq2Seq(const ModelConfig& config, Generator& gen) {
  return std::make_shared<RnnSeq2Seq>(config, gen);
}

}  // namespace attend::models
