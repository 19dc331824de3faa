// The RNN encoder-decoders end to end against PyTorch (tests/reference/seq2seq_reference.py): the
// same weights give the same logits, attention weights, label-smoothed loss and gradients, for
// every score, window and wiring, with and without the encoder's self-attention, with teacher
// forcing below 1 (the torch model flips attend's own coins), and with the Advanced LSTM cell in
// every recurrent place.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "attend/attend.h"
#include "attend/models.h"
#include "support/models.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend::models {
namespace {
using attend::testing::LoadTorchWeights;

using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;

const reference::LoadedCases& LoadSeq2SeqCases() {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "seq2seq_reference.bin", "tests/reference/seq2seq_reference.py");
  return loaded;
}

ModelConfig ConfigOf(const OpKey& k) {
  ModelConfig cfg;
  cfg.arch = models::ParseEnum<models::Arch>(k.Str("arch"), "arch");
  cfg.cell = models::ParseEnum<models::Cell>(k.Str("cell"), "cell");
  cfg.score = models::ParseEnum<models::Score>(k.Str("score"), "score");
  cfg.window = models::ParseEnum<models::Window>(k.Str("window"), "window");
  cfg.input_feeding = k.Bool("input_feeding");
  cfg.src_vocab = k.Int("src_vocab");
  cfg.tgt_vocab = k.Int("tgt_vocab");
  cfg.embed_dim = k.Int("embed");
  cfg.hidden_dim = k.Int("hidden");
  cfg.attention_dim = k.Int("attention_dim");
  cfg.window_size = k.Int("window_size");
  cfg.max_source_len = k.Int("max_source_len");
  cfg.encoder_layers = k.Int("encoder_layers");
  cfg.decoder_layers = k.Int("decoder_layers");
  cfg.dropout = 0.0;
  cfg.teacher_forcing = 1.0;
  if (k.Has("wiring")) {
    cfg.wiring = models::ParseEnum<models::Wiring>(k.Str("wiring"), "wiring");
    cfg.encoder_self_attention = models::ParseEnum<models::SelfAttend>(
        k.Str("encoder_self_attention"), "encoder_self_attention");
  }
  if (k.Has("teacher_forcing")) cfg.teacher_forcing = k.Double("teacher_forcing");
  if (k.Has("history")) cfg.history = k.Int("history");
  if (k.Has("feature_dim")) {  // speech: Listen, Attend and Spell
    cfg.feature_dim = k.Int("feature_dim");
    cfg.pyramid_levels = k.Int("pyramid_levels");
    cfg.frame_stacking = k.Int("frame_stacking");
    cfg.location_filters = k.Int("location_filters");
    cfg.location_width = k.Int("location_width");
    cfg.sharpening = k.Double("sharpening");
  }
  return cfg;
}

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  const ModelConfig cfg = ConfigOf(k);
  Generator gen(3);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  LoadTorchWeights(c, *model);
  if (::testing::Test::HasFatalFailure()) return;
  model->Train();  // as torch's side: dropout is 0, and the coins (if any) are attend's
  // Teacher forcing below 1: the coins' stream starts where torch's did, and attend's
  // Generator::UniformD gives the very coins torch's copy of it flipped.
  const reference::RefTensor* coins_ref = c.Find("coins");
  Tensor tf_buffer;
  std::vector<bool> coins;
  if (coins_ref != nullptr) {
    for (auto& [name, t] : model->NamedBuffers())
      if (name == "tf_rng_state") tf_buffer = t;
    ASSERT_TRUE(tf_buffer.defined()) << "no buffer tf_rng_state";
    tf_buffer.CopyFrom(ToTensor(Ref(c, "tf_state")));
    coins = ToTensor(*coins_ref).ToVector<bool>();
    const auto state = tf_buffer.ToVector<int64_t>();
    ASSERT_FALSE(coins.empty());
    for (size_t i = 0; i < coins.size(); ++i)
      EXPECT_EQ(Generator::UniformD(static_cast<uint64_t>(state[0]),
                                    static_cast<uint64_t>(state[1]) + i) < cfg.teacher_forcing,
                coins[i])
          << "coin " << i;
  }

  Batch batch;
  batch.src = ToTensor(Ref(c, "src"));
  batch.src_lengths = ToTensor(Ref(c, "src_lengths"));
  batch.tgt_in = ToTensor(Ref(c, "tgt_in"));
  batch.tgt_out = ToTensor(Ref(c, "tgt_out"));
  const int64_t b = batch.tgt_in.size(0), t = batch.tgt_in.size(1), s = batch.src.size(1);
  const bool attention = cfg.arch == models::Arch::kRnnAttention;
  Tensor weights;
  const int64_t counter = tf_buffer.defined() ? tf_buffer.ToVector<int64_t>()[1] : 0;
  Tensor logits = model->Forward(batch, attention ? &weights : nullptr);  // [B, T, V]
  ASSERT_EQ(logits.shape(), Shape({b, t, cfg.tgt_vocab}));
  if (tf_buffer.defined()) {
    // Exactly the coins torch flipped were drawn: one per sentence and step but the last.
    EXPECT_EQ(tf_buffer.ToVector<int64_t>()[1] - counter, static_cast<int64_t>(coins.size()));
    EXPECT_EQ(static_cast<int64_t>(coins.size()), b * (t - 1));
  }
  Tensor loss = CrossEntropy(logits.View({b * t, -1}), batch.tgt_out.View({b * t}),
                             SpecialIds::kPad, k.Double("label_smoothing"));
  loss.Backward();

  // Tolerance scale n (reference_compare.h): the longest sum one step computes (the decoder's
  // input and recurrent features: E + 2H with input feeding, E + Dc + H under bahdanau, Dc the
  // context's width; its output layer sums H + Dc + E; the scores and contexts sum over at most
  // that many terms at these sizes). Rounding does not grow with the number of steps: the gates
  // and tanh contract it (measured: the worst element sits 30x inside this bound, and a 0.05%
  // change of local-p's sigma fails). The loss and every gradient also sum over the B*T
  // positions.
  const int64_t dc = cfg.score == models::Score::kQkv ? cfg.attention_dim : cfg.hidden_dim;
  const int64_t longest = cfg.embed_dim + cfg.hidden_dim + std::max(cfg.hidden_dim, dc);
  ASSERT_LE(std::max(s, cfg.attention_dim), longest);
  const double depth = static_cast<double>(longest);
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), depth);
  if (attention) ExpectMatches(c, "attention", weights, Ref(c, "attention"), depth);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), depth);
  const double grad_n = depth * static_cast<double>(b * t);
  for (auto& [name, p] : model->NamedParameters()) {
    ASSERT_TRUE(p.grad().defined()) << "case " << c.name << ": no gradient for " << name;
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), grad_n);
  }
}

TEST(Seq2SeqTorchReference, LogitsAttentionLossAndGradientsMatch) {
  const reference::LoadedCases& loaded = LoadSeq2SeqCases();
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<std::string> archs, cells, scores, windows, feeding, speech_scores, wirings, self,
      forcing, bahdanau_scores, advanced;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    OpKey k(c.op);
    if (k.Has("wiring")) {
      const std::string w = k.Str("wiring"), sa = k.Str("encoder_self_attention");
      if (k.Str("arch") == "rnn-attention") wirings.insert(w + "/" + k.Str("cell"));
      self.insert(sa + "/" + (k.Str("arch") == "rnn" ? "rnn" : w));
      if (k.Has("teacher_forcing") && k.Double("teacher_forcing") < 1.0) forcing.insert(w);
      if (w == "bahdanau") bahdanau_scores.insert(k.Str("score") + "/" + k.Str("window"));
    }
    if (k.Str("cell") == "advanced-lstm") {
      // What the Advanced LSTM's cases cover: each history, arch, wiring, stacked encoder and
      // decoder layers, teacher forcing below 1, speech.
      advanced.insert("k=" + k.Str("history"));
      advanced.insert(k.Str("arch") == "rnn" ? "rnn" : k.Has("wiring") ? k.Str("wiring") : "luong");
      if (k.Int("encoder_layers") > 1) advanced.insert("encoder_layers>1");
      if (k.Int("decoder_layers") > 1) advanced.insert("decoder_layers>1");
      if (k.Has("teacher_forcing") && k.Double("teacher_forcing") < 1.0) advanced.insert("tf<1");
      if (k.Has("feature_dim")) advanced.insert("speech");
      if (k.Str("arch") == "rnn-attention" && !k.Bool("input_feeding") &&
          (!k.Has("wiring") || k.Str("wiring") == "luong"))
        advanced.insert("luong without feeding");
    }
    archs.insert(k.Str("arch"));
    cells.insert(k.Str("cell"));
    feeding.insert(k.Str("input_feeding"));
    if (k.Has("feature_dim")) speech_scores.insert(k.Str("arch") + "/" + k.Str("score"));
    if (k.Str("arch") == "rnn-attention") {
      scores.insert(k.Str("score"));
      windows.insert(k.Str("window"));
    }
  }
  // Every variant the issue names was compared.
  EXPECT_EQ(archs, (std::set<std::string>{"rnn", "rnn-attention"}));
  EXPECT_EQ(cells, (std::set<std::string>{"gru", "lstm", "advanced-lstm"}));
  EXPECT_EQ(advanced, (std::set<std::string>{"k=1", "k=2", "k=3", "rnn", "luong", "bahdanau",
                                             "tutorial", "encoder_layers>1", "decoder_layers>1",
                                             "tf<1", "speech", "luong without feeding"}));
  EXPECT_EQ(feeding.size(), 2u);
  EXPECT_EQ(scores, (std::set<std::string>{"additive", "dot", "general", "concat", "location",
                                           "location-aware", "qkv"}));
  // Every wiring with both cells, both self-attentions under every wiring and the baseline,
  // teacher forcing below 1 under every wiring, bahdanau with every score and window.
  EXPECT_EQ(wirings,
            (std::set<std::string>{"luong/gru", "luong/lstm", "luong/advanced-lstm", "bahdanau/gru",
                                   "bahdanau/lstm", "bahdanau/advanced-lstm", "tutorial/gru",
                                   "tutorial/lstm", "tutorial/advanced-lstm"}));
  for (const char* sa : {"dot", "qkv"})
    for (const char* w : {"luong", "bahdanau", "tutorial", "rnn"})
      EXPECT_EQ(self.count(std::string(sa) + "/" + w), 1u) << sa << " under " << w;
  EXPECT_EQ(forcing, (std::set<std::string>{"luong", "bahdanau", "tutorial"}));
  for (const char* sc : {"additive/global", "dot/local-m", "general/local-p", "location/global",
                         "concat/global", "qkv/global", "location-aware/global"})
    EXPECT_EQ(bahdanau_scores.count(sc), 1u) << sc;
  // Speech: the listener without attention, with the content and the location-aware score.
  EXPECT_EQ(speech_scores, (std::set<std::string>{"rnn/additive", "rnn-attention/additive",
                                                  "rnn-attention/location-aware"}));
  EXPECT_EQ(windows, (std::set<std::string>{"global", "local-m", "local-p"}));
}

}  // namespace
}  // namespace attend::models
