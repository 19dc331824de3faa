// The RNN encoder-decoders: a bidirectional GRU/LSTM encoder and a GRU/LSTM decoder that reads
// either one fixed context vector (arch "rnn", the baseline of Sutskever/Cho) or an attended
// context at every step (arch "rnn-attention": Luong et al. 2015's global / local-m / local-p
// attention with a selectable score, input feeding and teacher forcing at a chosen ratio).
#include <cmath>
#include <memory>
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
    if (c.cell == Cell::kGru) {
      encoder_.gru = RegisterModule("encoder", std::make_shared<nn::GRU>(e, h / 2, gen, enc));
      decoder_.gru = RegisterModule("decoder", std::make_shared<nn::GRU>(dec_in, h, gen, dec));
    } else {
      encoder_.lstm = RegisterModule("encoder", std::make_shared<nn::LSTM>(e, h / 2, gen, enc));
      decoder_.lstm = RegisterModule("decoder", std::make_shared<nn::LSTM>(dec_in, h, gen, dec));
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
    CheckTokens(batch.src, config_.src_vocab, "source");
    CheckTokens(batch.tgt_in, config_.tgt_vocab, "target");
    const int64_t b = batch.tgt_in.size(0), t_len = batch.tgt_in.size(1);
    RnnState st = Encode(batch.src, batch.src_lengths);
    Tensor emb = embed_dropout_->Forward(tgt_embed_->Forward(batch.tgt_in));  // [B, T, E]
    const bool sample = training() && config_.teacher_forcing < 1.0;
    if (!config_.input_feeding && !sample) {
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
    CheckTokens(src, config_.src_vocab, "source");
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
    ATTEND_CHECK(
        src.dim() == 2 && lengths.defined() && lengths.dim() == 1 && lengths.size(0) == src.size(0),
        "rnn model: source ", src.str(), " and lengths ",
        lengths.defined() ? lengths.str() : "undefined", " must be [B, S] and [B]");
    const int64_t b = src.size(0), s = src.size(1), h = config_.hidden_dim;
    if (config_.score == Score::kLocation && attention_)
      ATTEND_CHECK(s <= config_.max_source_len, "rnn model: source length ", s,
                   " exceeds the location score's max_source_len ", config_.max_source_len);
    RnnState st;
    Tensor emb = embed_dropout_->Forward(src_embed_->Forward(src));  // [B, S, E]
    Tensor hn, cn;
    st.memory =
        encoder_.Run(emb, lengths, &hn, config_.cell == Cell::kLstm ? &cn : nullptr);  // [B, S, H]
    st.lengths = lengths;
    // The last layer's two directions' final states, side by side: [B, H].
    const int64_t l = config_.encoder_layers;
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
      st.padding = Ge(pos, lengths.View({b, 1, 1}));  // [B, 1, S]
    } else {
      st.fixed_context = summary;
    }
    return st;
  }

  // The attentional states h~ = tanh(W_c [c_t; h_t]) for decoder outputs top [N, Tq, H] at
  // target positions first_step.., and (optionally) the weights [N, Tq, S].
  Tensor Attend(const RnnState& st, const Tensor& top, int64_t first_step, Tensor* weights) {
    Tensor context;
    if (!attention_) {
      context = st.fixed_context.Unsqueeze(1).Expand(top.shape());
    } else {
      Tensor scores = score_->Scores(top, st.keys);  // [N, Tq, S]
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

  bool attention_ = false;
  std::shared_ptr<nn::Embedding> src_embed_, tgt_embed_;
  Recurrent encoder_, decoder_;
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
