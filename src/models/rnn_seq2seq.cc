// The RNN encoder-decoders: a bidirectional GRU/LSTM encoder and a GRU/LSTM decoder that reads
// either one fixed context vector (arch "rnn", the baseline of Sutskever/Cho) or an attended
// context at every step (arch "rnn-attention": Luong et al. 2015's global / local-m / local-p
// attention with a selectable score, input feeding and teacher forcing at a chosen ratio). With
// speech features as the source (feature_dim > 0) the encoder is Listen, Attend and Spell's
// pyramidal listener (Chan et al. 2016), and the score may be Chorowski et al.'s location-aware
// one.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/models.h"
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
  }
  ATTEND_CHECK(false, "MakeScore: unknown score ", static_cast<int>(c.score));
  return nullptr;
}

// A GRU or an LSTM behind one call (the decoder and the encoder are either).
struct Recurrent {
  std::shared_ptr<nn::GRU> gru;
  std::shared_ptr<nn::LSTM> lstm;
  // x [B, T, in] -> output [B, T, D*H]; h, c [L*D, B, H] in and out (c: LSTM only).
  Tensor Run(const Tensor& x, const Tensor& lengths, Tensor* h, Tensor* c) {
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
  Tensor memory;         // [N, S, H] encoder states (values)
  Tensor keys;           // [N, S, *] the score's prepared keys, computed once per sentence
  Tensor padding;        // bool [N, 1, S], true = padding
  Tensor lengths;        // i64 [N]
  Tensor fixed_context;  // [N, H] the baseline's context vector
  Tensor h, c;           // [L, N, H]
  Tensor feed;           // [N, H] the previous attentional state (input feeding)
  Tensor previous;       // [N, S] the last step's weights (location-aware score)
  int64_t step = 0;
  // Decoding (eval mode, no gradient): the output and combine layers packed once per Start.
  nn::PrepackedLinear out, combine;
  nn::PrepackedRecurrentStep decoder;
};

class RnnSeq2Seq : public Seq2Seq {
 public:
  RnnSeq2Seq(const ModelConfig& c, Generator& gen) : Seq2Seq(c) {
    ATTEND_CHECK(c.hidden_dim % 2 == 0, "rnn model: hidden_dim ", c.hidden_dim,
                 " must be even (the bidirectional encoder gives hidden_dim / 2 per direction)");
    attention_ = c.arch == Arch::kRnnAttention;
    const int64_t h = c.hidden_dim, e = c.embed_dim;
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
    const int64_t dec_in = e + (c.input_feeding ? h : 0);
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
    if (attention_) {
      score_ = RegisterModule("score", MakeScore(c, gen));
      if (c.window == Window::kLocalP)
        local_p_ = RegisterModule("local_p", std::make_shared<attention::LocalPredictive>(
                                                 h, c.attention_dim, c.window_size, gen));
    }
    combine_ = RegisterModule("combine", std::make_shared<nn::Linear>(2 * h, h, false, gen));
    out_ = RegisterModule("out", std::make_shared<nn::Linear>(h, c.tgt_vocab, true, gen));
    embed_dropout_ = RegisterModule("embed_dropout",
                                    std::make_shared<nn::DropoutModule>(c.dropout, gen.Reserve(1)));
    out_dropout_ = RegisterModule("out_dropout",
                                  std::make_shared<nn::DropoutModule>(c.dropout, gen.Reserve(1)));
    // The teacher-forcing coin's stream, kept as a buffer so a resumed run flips the same coins.
    tf_state_ = RegisterBuffer(
        "tf_rng_state",
        Tensor::FromVector(std::vector<int64_t>{static_cast<int64_t>(gen.Reserve(1)), 0}, {2}));
  }

  Tensor Forward(const Batch& batch, Tensor* attention) override {
    CheckSource(batch.src);
    CheckTokens(batch.tgt_in, config_.tgt_vocab, "target");
    const int64_t b = batch.tgt_in.size(0), t_len = batch.tgt_in.size(1);
    RnnState st = Encode(batch.src, batch.src_lengths);
    Tensor emb = embed_dropout_->Forward(tgt_embed_->Forward(batch.tgt_in));  // [B, T, E]
    const bool sample = training() && config_.teacher_forcing < 1.0;
    if (!config_.input_feeding && !sample && !st.previous.defined()) {
      // Every step's input is known: one recurrent call over the whole target, then attention
      // for all steps at once ([B, T, S] scores).
      Tensor top =
          decoder_.Run(emb, Tensor(), &st.h, config_.cell == Cell::kLstm ? &st.c : nullptr);
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

  std::unique_ptr<DecoderState> Start(const Tensor& src, const Tensor& src_lengths) override {
    CheckSource(src);
    auto st = std::make_unique<RnnState>(Encode(src, src_lengths));
    // Packed for decoding in eval mode without gradients (the packed layers are f32 only).
    if (!training() && !GradMode::enabled() && out_->weight.dtype() == DType::kF32) {
      st->out = nn::PrepackedLinear(*out_);
      st->combine = nn::PrepackedLinear(*combine_);
      st->decoder = decoder_.gru ? nn::PrepackedRecurrentStep(*decoder_.gru)
                                 : nn::PrepackedRecurrentStep(*decoder_.lstm);
    }
    return st;
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
    if (st.out.defined()) return LogSoftmax(st.out.Forward(ht), 1);  // [N, V]
    return LogSoftmax(out_->Forward(out_dropout_->Forward(ht)), 1);  // [N, V]
  }

  void Select(DecoderState& state, const Tensor& rows) override {
    auto& st = static_cast<RnnState&>(state);
    auto pick = [&](Tensor& t, int dim) {
      if (t.defined()) t = IndexSelect(t, dim, rows);
    };
    pick(st.memory, 0);
    pick(st.keys, 0);
    pick(st.padding, 0);
    pick(st.lengths, 0);
    pick(st.fixed_context, 0);
    pick(st.h, 1);
    pick(st.c, 1);
    pick(st.feed, 0);
    pick(st.previous, 0);
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
    if (config_.cell == Cell::kGru)
      r.gru = RegisterModule(name, std::make_shared<nn::GRU>(in, hidden, gen, options));
    else r.lstm = RegisterModule(name, std::make_shared<nn::LSTM>(in, hidden, gen, options));
    return r;
  }

  // The listener: the encoder over the frames, then each pyramid level over pairs of the level
  // below's outputs ([B, S, H] -> [B, ceil(S / 2), 2H]; an odd S gets one zero frame). A
  // sequence of n steps keeps ceil(n / 2): its last pair may end in a zero (padding) output.
  // lengths becomes the reduced lengths; hn and cn hold the last layer's final states.
  Tensor Listen(const Tensor& frames, Tensor* lengths, Tensor* hn, Tensor* cn) {
    Tensor* c = config_.cell == Cell::kLstm ? cn : nullptr;
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

  // bool [B, 1]: true = feed the reference token this step.
  Tensor CoinFlips(int64_t b) {
    int64_t* s = tf_state_.data<int64_t>();
    std::vector<bool> coins(b);
    for (int64_t i = 0; i < b; ++i)
      coins[i] = Generator::UniformD(static_cast<uint64_t>(s[0]), static_cast<uint64_t>(s[1]++)) <
                 config_.teacher_forcing;
    return Tensor::FromVector(coins, {b, 1});
  }

  RnnState Encode(const Tensor& src, const Tensor& lengths) {
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
      st.memory = encoder_.Run(emb, lengths, &hn,
                               config_.cell == Cell::kLstm ? &cn : nullptr);  // [B, S, H]
    }
    const int64_t s = st.memory.size(1);
    if (config_.score == Score::kLocation && attention_)
      ATTEND_CHECK(s <= config_.max_source_len, "rnn model: source length ", s,
                   " exceeds the location score's max_source_len ", config_.max_source_len);
    st.lengths = reduced;
    // The last layer's two directions' final states, side by side: [B, H].
    const int64_t l = speech_ && !pyramid_.empty() ? 1 : config_.encoder_layers;
    Tensor summary = Concat({hn.Select(0, 2 * l - 2), hn.Select(0, 2 * l - 1)}, 1);
    Tensor h0 = Tanh(bridge_->Forward(summary));  // [B, H]
    std::vector<Tensor> layers(config_.decoder_layers, h0);
    st.h = Stack(layers, 0);  // [L, B, H]
    if (config_.cell == Cell::kLstm)
      st.c = Tensor::Zeros({config_.decoder_layers, b, h}, h0.dtype());
    if (config_.input_feeding) st.feed = Tensor::Zeros({b, h}, h0.dtype());
    if (attention_) {
      st.keys = score_->PrepareKeys(st.memory);
      Tensor pos = Tensor::Arange(s, DType::kI64).View({1, 1, s});
      st.padding = Ge(pos, reduced.View({b, 1, 1}));  // [B, 1, S]
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

  // The attentional states h~ = tanh(W_c [c_t; h_t]) for decoder outputs top [N, Tq, H] at
  // target positions first_step.., and (optionally) the weights [N, Tq, S].
  Tensor Attend(RnnState& st, const Tensor& top, int64_t first_step, Tensor* weights) {
    Tensor context;
    if (!attention_) {
      context = st.fixed_context.Unsqueeze(1).Expand(top.shape());
    } else {
      Tensor scores;  // [N, Tq, S]
      if (st.previous.defined()) {
        const auto& score = static_cast<const attention::LocationAwareScore&>(*score_);
        scores = score.Scores(top, st.keys, st.previous);
        if (config_.sharpening != 1.0) scores = MulScalar(scores, config_.sharpening);
      } else {
        scores = score_->Scores(top, st.keys);
      }
      Tensor w;
      if (local_p_) {
        w = local_p_->Weights(scores, top, st.lengths);
      } else {
        Tensor mask = st.padding;  // [N, 1, S]
        if (config_.window == Window::kLocalM) {
          const int64_t tq = top.size(1), s = scores.size(2);
          Tensor window = attention::LocalMonotonicMask(first_step + tq, s, config_.window_size)
                              .Narrow(0, first_step, tq);  // [Tq, S]
          mask = LogicalOr(mask, window.Unsqueeze(0));
        }
        w = attention::SoftWeights(scores, mask);
      }
      if (st.previous.defined()) st.previous = w.Squeeze(1);
      if (weights) *weights = w;
      context = attention::WeightedSum(w, st.memory);  // [N, Tq, H]
    }
    const Tensor both = Concat({context, top}, 2);
    return Tanh(st.combine.defined() ? st.combine.Forward(both) : combine_->Forward(both));
  }

  // One decoder step from input embeddings [N, E]; returns h~ [N, H] and updates the state.
  Tensor DecodeStep(RnnState& st, const Tensor& emb, Tensor* weights) {
    Tensor x = config_.input_feeding ? Concat({emb, st.feed}, 1) : emb;  // [N, in]
    Tensor* c = config_.cell == Cell::kLstm ? &st.c : nullptr;
    const Tensor top = st.decoder.defined()
                           ? st.decoder.Step(x, &st.h, c).Unsqueeze(1)
                           : decoder_.Run(x.Unsqueeze(1), Tensor(), &st.h, c);  // [N, 1, H]
    Tensor w;
    Tensor ht = Attend(st, top, st.step, weights ? &w : nullptr).Squeeze(1);  // [N, H]
    if (weights && w.defined()) *weights = w.Squeeze(1);
    if (config_.input_feeding) st.feed = ht;
    ++st.step;
    return ht;
  }

  bool attention_ = false, speech_ = false;
  std::shared_ptr<nn::Embedding> src_embed_, tgt_embed_;
  Recurrent encoder_, decoder_;
  std::vector<Recurrent> pyramid_;
  std::shared_ptr<nn::Linear> bridge_, combine_, out_;
  std::shared_ptr<ScoreFunction> score_;
  std::shared_ptr<attention::LocalPredictive> local_p_;
  std::shared_ptr<nn::DropoutModule> embed_dropout_, out_dropout_;
  Tensor tf_state_;
};

}  // namespace

std::shared_ptr<Seq2Seq> MakeRnnSeq2Seq(const ModelConfig& config, Generator& gen) {
  return std::make_shared<RnnSeq2Seq>(config, gen);
}

}  // namespace attend::models
