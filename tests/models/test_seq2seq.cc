// The RNN encoder-decoders (with and without attention; GRU, LSTM and Advanced LSTM cells) and the
// nmt layer: incremental decoding equals teacher forcing, beam search, batching, alignments,
// training with exact resume.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "attend/optim.h"
#include "support/checkpoints.h"
#include "support/files.h"

namespace attend {
namespace {

using models::ModelConfig;
using models::SpecialIds;

ModelConfig Tiny(const std::string& arch, const std::string& score = "additive",
                 const std::string& window = "global", bool feeding = true,
                 const std::string& cell = "gru") {
  ModelConfig c;
  c.arch = models::ParseEnum<models::Arch>(arch, "arch");
  c.src_vocab = 13;
  c.tgt_vocab = 11;
  c.embed_dim = 6;
  c.hidden_dim = 8;
  c.attention_dim = 5;
  c.score = models::ParseEnum<models::Score>(score, "score");
  c.window = models::ParseEnum<models::Window>(window, "window");
  c.window_size = 2;
  c.max_source_len = 12;
  c.input_feeding = feeding;
  c.cell = models::ParseEnum<models::Cell>(cell, "cell");
  c.dropout = 0.0;
  return c;
}

std::vector<nmt::Example> Examples() {
  std::vector<nmt::Example> ex(3);
  ex[0].src = {4, 5, 6, 7, 8};
  ex[0].tgt = {4, 5, 9};
  ex[1].src = {9, 10};
  ex[1].tgt = {6, 7, 8, 10, 4};
  ex[2].src = {11, 12, 4, 5};
  ex[2].tgt = {9, 8};
  return ex;
}

float MaxAbsDiff(const Tensor& a, const Tensor& b) {
  auto x = a.Contiguous().ToVector<float>(), y = b.Contiguous().ToVector<float>();
  EXPECT_EQ(x.size(), y.size());
  float m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

struct Variant {
  std::string arch, score, window;
  bool feeding;
  std::string cell;
};

void PrintTo(const Variant& v, std::ostream* os) {
  *os << v.arch << " " << v.score << " " << v.window << (v.feeding ? " feed " : " ") << v.cell;
}

class Seq2SeqVariants : public ::testing::TestWithParam<Variant> {};

// Decoding token by token (Start / Step) gives the teacher-forced log-probabilities and weights.
TEST_P(Seq2SeqVariants, StepByStepEqualsTeacherForcing) {
  const Variant v = GetParam();
  Generator gen(3);
  auto model = models::MakeModel(Tiny(v.arch, v.score, v.window, v.feeding, v.cell), gen);
  model->Eval();
  auto ex = Examples();
  models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
  NoGradGuard no_grad;
  Tensor weights;
  Tensor full = LogSoftmax(model->Forward(batch, &weights), 2);  // [B, T, V]
  auto state = model->Start(batch.src, batch.src_lengths);
  const int64_t t_len = batch.tgt_in.size(1);
  for (int64_t t = 0; t < t_len; ++t) {
    Tensor w;
    Tensor step = model->Step(*state, batch.tgt_in.Select(1, t).Contiguous(), &w);  // [B, V]
    EXPECT_LT(MaxAbsDiff(step, full.Select(1, t)), 2e-5) << "step " << t;
    if (v.arch == "rnn-attention") {
      EXPECT_LT(MaxAbsDiff(w, weights.Select(1, t)), 2e-6) << "step " << t;
    }
  }
  if (v.arch == "rnn-attention") {
    // Weights are distributions that put nothing on padding.
    auto w = weights.Contiguous().ToVector<float>();
    const int64_t s = weights.size(2);
    auto lens = batch.src_lengths.ToVector<int64_t>();
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t t = 0; t < t_len; ++t) {
        double sum = 0;
        for (int64_t j = 0; j < s; ++j) {
          const float x = w[(b * t_len + t) * s + j];
          if (j >= lens[b]) {
            EXPECT_EQ(x, 0.0f);
          }
          sum += x;
        }
        if (v.window == "global") {
          EXPECT_NEAR(sum, 1.0, 1e-5);
        }
      }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, Seq2SeqVariants,
    ::testing::Values(Variant{"rnn", "additive", "global", true, "gru"},
                      Variant{"rnn", "additive", "global", false, "lstm"},
                      Variant{"rnn-attention", "additive", "global", true, "gru"},
                      Variant{"rnn-attention", "additive", "global", false, "gru"},
                      Variant{"rnn-attention", "dot", "global", true, "lstm"},
                      Variant{"rnn-attention", "general", "global", false, "lstm"},
                      Variant{"rnn-attention", "concat", "global", true, "gru"},
                      Variant{"rnn-attention", "location", "global", true, "gru"},
                      Variant{"rnn-attention", "additive", "local-m", true, "gru"},
                      Variant{"rnn-attention", "dot", "local-m", false, "gru"},
                      Variant{"rnn-attention", "general", "local-p", true, "gru"}));

// ---- the wirings (luong, bahdanau, tutorial), the qkv score and the encoder self-attention ----

struct Wired {
  std::string wiring, cell, self, score, window;
  bool feeding;
  int64_t history = 3;  // advanced-lstm: the previous steps each step weighs
};

// What ctest's test names show for a parameter (instead of its bytes).
void PrintTo(const Wired& w, std::ostream* os) {
  *os << w.wiring << " " << w.cell << " self " << w.self << " " << w.score << " " << w.window
      << (w.feeding ? " feed" : "");
  if (w.cell == "advanced-lstm") *os << " K " << w.history;
}

std::string WiredName(const ::testing::TestParamInfo<Wired>& info) {
  const Wired& w = info.param;
  std::string name = w.wiring + "_" + w.cell + "_self_" + w.self + "_" + w.score + "_" + w.window +
                     (w.feeding ? "_feed" : "") +
                     (w.cell == "advanced-lstm" ? "_k" + std::to_string(w.history) : "");
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

ModelConfig WiredConfig(const Wired& w) {
  ModelConfig c = Tiny("rnn-attention", w.score, w.window, w.feeding, w.cell);
  c.wiring = models::ParseEnum<models::Wiring>(w.wiring, "wiring");
  c.encoder_self_attention = models::ParseEnum<models::SelfAttend>(w.self, "self-attention");
  c.history = w.history;
  return c;
}

// Every wiring x {gru, lstm} x {no, dot, qkv self-attention}; the scores and windows vary along
// (the tutorial takes neither: its own layer weighs the positions).
std::vector<Wired> AllWirings() {
  std::vector<Wired> out;
  const char* luong_scores[] = {"qkv", "additive", "general"};
  const char* bahdanau_scores[] = {"additive", "qkv",      "location-aware",
                                   "dot",      "location", "concat"};
  const char* windows[] = {"global", "local-m", "local-p"};
  int i = 0;
  for (const char* self : {"none", "dot", "qkv"})
    for (const char* cell : {"gru", "lstm"}) {
      out.push_back({"luong", cell, self, luong_scores[i % 3], windows[i % 3], i % 2 == 0});
      const std::string b = bahdanau_scores[i % 6];
      out.push_back({"bahdanau", cell, self, b,
                     b == "location-aware" ? "global" : windows[(i + 1) % 3], true});
      out.push_back({"tutorial", cell, self, "additive", "global", true});
      ++i;
    }
  // The Advanced LSTM under every wiring and self-attention, with K = 1, 2, 3 along: luong without
  // input feeding decodes the whole target in one call (the decoder's past kept inside it) where
  // stepping carries it in the state.
  for (const Wired& w : {
           Wired{"luong", "advanced-lstm", "none", "additive", "global", false, 2},
           Wired{"luong", "advanced-lstm", "dot", "qkv", "local-m", true, 3},
           Wired{"luong", "advanced-lstm", "qkv", "general", "local-p", false, 1},
           Wired{"bahdanau", "advanced-lstm", "none", "location-aware", "global", true, 3},
           Wired{"bahdanau", "advanced-lstm", "dot", "additive", "local-p", true, 1},
           Wired{"bahdanau", "advanced-lstm", "qkv", "dot", "local-m", true, 2},
           Wired{"tutorial", "advanced-lstm", "none", "additive", "global", true, 1},
           Wired{"tutorial", "advanced-lstm", "dot", "additive", "global", true, 2},
           Wired{"tutorial", "advanced-lstm", "qkv", "additive", "global", true, 3},
       })
    out.push_back(w);
  return out;
}

class Seq2SeqWirings : public ::testing::TestWithParam<Wired> {};

// Decoding token by token (Start / Step, on packed layers) gives the teacher-forced
// log-probabilities and weights (Forward, on the modules); the weights are distributions over the
// real source positions; AttentionMaps holds the decoder's weights and, with self-attention, the
// encoder's as "encoder.0.self" (rows over the real positions).
TEST_P(Seq2SeqWirings, StepByStepEqualsTeacherForcingAndMapsHoldEverySite) {
  const Wired v = GetParam();
  Generator gen(3);
  auto model = models::MakeModel(WiredConfig(v), gen);
  model->Eval();
  auto ex = Examples();
  models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
  NoGradGuard no_grad;
  Tensor weights;
  Tensor full = LogSoftmax(model->Forward(batch, &weights), 2);  // [B, T, V]
  auto state = model->Start(batch.src, batch.src_lengths);
  const int64_t t_len = batch.tgt_in.size(1), s = batch.src.size(1);
  ASSERT_EQ(weights.shape(), Shape({3, t_len, s}));
  for (int64_t t = 0; t < t_len; ++t) {
    Tensor w;
    Tensor step = model->Step(*state, batch.tgt_in.Select(1, t).Contiguous(), &w);  // [B, V]
    EXPECT_LT(MaxAbsDiff(step, full.Select(1, t)), 2e-5) << "step " << t;
    EXPECT_LT(MaxAbsDiff(w, weights.Select(1, t)), 2e-6) << "step " << t;
  }
  const auto lens = batch.src_lengths.ToVector<int64_t>();
  // rows [rows, S] of weights: zero on padding, summing to 1 where the window is global.
  auto check_rows = [&](const Tensor& rows, int64_t b, const std::string& what, bool sums) {
    const auto w = rows.Contiguous().ToVector<float>();
    for (int64_t r = 0; r < rows.size(0); ++r) {
      double sum = 0;
      for (int64_t j = 0; j < s; ++j) {
        const float x = w[r * s + j];
        if (j >= lens[b]) {
          EXPECT_EQ(x, 0.0f) << what << " row " << r << " key " << j;
        }
        EXPECT_GE(x, 0.0f);
        sum += x;
      }
      if (sums) {
        EXPECT_NEAR(sum, 1.0, 1e-5) << what << " row " << r;
      }
    }
  };
  for (int64_t b = 0; b < 3; ++b)
    check_rows(weights.Select(0, b), b, "decoder", v.window == "global");
  const std::vector<models::AttentionMap> maps = model->AttentionMaps(batch);
  ASSERT_EQ(maps.size(), v.self == "none" ? 1u : 2u);
  const models::AttentionMap& cross = maps.back();
  EXPECT_EQ(cross.name, "attention");
  EXPECT_LT(MaxAbsDiff(cross.weights.Squeeze(1), weights), 1e-7);
  if (v.self != "none") {
    const models::AttentionMap& enc = maps.front();
    EXPECT_EQ(enc.name, "encoder.0.self");
    EXPECT_EQ(enc.kind, "self");
    EXPECT_EQ(enc.side, "encoder");
    ASSERT_EQ(enc.weights.shape(), Shape({3, 1, s, s}));
    for (int64_t b = 0; b < 3; ++b)
      check_rows(enc.weights.Select(0, b).Select(0, 0), b, "encoder self", true);
  }
}

// Beam search's Select keeps, reorders and duplicates every wiring's state (the projected values
// of the qkv score included): rows fed the same tokens give the same distributions; and a whole
// beam search runs, its n-best sorted.
TEST_P(Seq2SeqWirings, SelectReordersAndDuplicatesAndBeamSearchRuns) {
  const Wired v = GetParam();
  Generator gen(5);
  auto model = models::MakeModel(WiredConfig(v), gen);
  model->Eval();
  auto ex = Examples();
  models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
  {
    NoGradGuard no_grad;
    auto a = model->Start(batch.src, batch.src_lengths);
    auto b = model->Start(batch.src, batch.src_lengths);
    Tensor tok = Tensor::FromVector(std::vector<int64_t>{2, 2, 2}, {3});
    model->Step(*a, tok);
    model->Step(*b, tok);
    model->Select(*b, Tensor::FromVector(std::vector<int64_t>{2, 0, 0}, {3}));
    Tensor wa, wb;
    Tensor ra = model->Step(*a, Tensor::FromVector(std::vector<int64_t>{7, 5, 6}, {3}), &wa);
    Tensor rb = model->Step(*b, Tensor::FromVector(std::vector<int64_t>{6, 7, 7}, {3}), &wb);
    EXPECT_EQ(b->rows(), 3);
    EXPECT_LT(MaxAbsDiff(rb.Select(0, 0), ra.Select(0, 2)), 1e-6);
    EXPECT_LT(MaxAbsDiff(rb.Select(0, 1), ra.Select(0, 0)), 1e-6);
    EXPECT_LT(MaxAbsDiff(rb.Select(0, 2), ra.Select(0, 0)), 1e-6);
    EXPECT_LT(MaxAbsDiff(wb.Select(0, 0), wa.Select(0, 2)), 1e-6);
    EXPECT_LT(MaxAbsDiff(wb.Select(0, 1), wa.Select(0, 0)), 1e-6);
    // The selected state carries on: a reordered the same way, fed the same words, agrees.
    model->Select(*a, Tensor::FromVector(std::vector<int64_t>{2, 0, 0}, {3}));
    const Tensor next = Tensor::FromVector(std::vector<int64_t>{5, 9, 4}, {3});
    EXPECT_LT(MaxAbsDiff(model->Step(*b, next), model->Step(*a, next)), 1e-6);
    model->Select(*b, Tensor::FromVector(std::vector<int64_t>{1}, {1}));
    EXPECT_EQ(b->rows(), 1);
    EXPECT_EQ(model->Step(*b, Tensor::FromVector(std::vector<int64_t>{4}, {1})).size(0), 1);
  }
  std::vector<std::vector<int64_t>> sources;
  for (const auto& e : ex) sources.push_back(e.src);
  nmt::SearchOptions beam;
  beam.beam = 3;
  beam.nbest = 2;
  beam.keep_attention = true;
  auto hyps = nmt::Translate(*model, sources, beam);
  ASSERT_EQ(hyps.size(), sources.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    ASSERT_EQ(hyps[i].size(), 2u);
    EXPECT_GE(hyps[i][0].score, hyps[i][1].score);
    ASSERT_EQ(hyps[i][0].attention.size(), hyps[i][0].tokens.size() + 1);
    for (const auto& row : hyps[i][0].attention) EXPECT_EQ(row.size(), sources[i].size());
  }
}

// Teacher forcing 0.5 under every wiring: training runs, the same seed gives the same loss, and
// the sampled words change the logits (against teacher forcing 1 on the same weights).
TEST_P(Seq2SeqWirings, TeacherForcingBelowOneSamplesDeterministically) {
  const Wired v = GetParam();
  auto run = [&](double ratio) {
    Generator gen(7);
    ModelConfig c = WiredConfig(v);
    c.teacher_forcing = ratio;
    auto model = models::MakeModel(c, gen);
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    Tensor logits = model->Forward(batch);
    Tensor loss = CrossEntropy(logits.View({-1, 11}), batch.tgt_out.View({-1}), SpecialIds::kPad);
    loss.Backward();
    for (const auto& [name, p] : model->NamedParameters()) EXPECT_TRUE(p.grad().defined()) << name;
    return std::make_pair(loss.item(), logits.Detach());
  };
  const auto a = run(0.5), b = run(0.5), forced = run(1.0);
  EXPECT_EQ(a.first, b.first);
  EXPECT_TRUE(std::isfinite(a.first));
  EXPECT_GT(MaxAbsDiff(a.second, forced.second), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Models, Seq2SeqWirings, ::testing::ValuesIn(AllWirings()), WiredName);

// Decoding on packed weights (eval mode) and on the modules (training mode with dropout 0) give
// the same steps under every wiring.
TEST(Seq2Seq, PackedDecodingEqualsTheModulesForEveryWiring) {
  for (const Wired& w : {Wired{"bahdanau", "lstm", "qkv", "qkv", "global", true},
                         Wired{"tutorial", "gru", "dot", "additive", "global", true},
                         Wired{"luong", "lstm", "dot", "qkv", "global", true},
                         Wired{"luong", "advanced-lstm", "none", "additive", "global", true, 3},
                         Wired{"bahdanau", "advanced-lstm", "none", "qkv", "global", true, 2}}) {
    Generator gen(6);
    ModelConfig c = WiredConfig(w);
    c.decoder_layers = 2;
    auto model = models::MakeModel(c, gen);
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    NoGradGuard no_grad;
    auto run = [&](bool train) {
      model->Train(train);
      auto state = model->Start(batch.src, batch.src_lengths);
      std::vector<Tensor> steps;
      for (int64_t t = 0; t < batch.tgt_in.size(1); ++t)
        steps.push_back(model->Step(*state, batch.tgt_in.Select(1, t).Contiguous()));
      return steps;
    };
    const auto packed = run(false), plain = run(true);
    for (size_t t = 0; t < packed.size(); ++t)
      EXPECT_LT(MaxAbsDiff(packed[t], plain[t]), 1e-5) << w.wiring << " step " << t;
  }
}

// Where each wiring scores from: bahdanau from s_{t-1}, so its first weights come from the
// bridged summary alone and do not depend on the first word fed; luong scores the state after
// the word, the tutorial the word itself, so theirs do.
TEST(Seq2Seq, BahdanauScoresFromThePreviousState) {
  for (const std::string wiring : {"bahdanau", "luong", "tutorial"}) {
    Generator gen(8);
    auto model =
        models::MakeModel(WiredConfig({wiring, "gru", "none", "additive", "global", true}), gen);
    model->Eval();
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    NoGradGuard no_grad;
    auto first_weights = [&](int64_t token) {
      auto state = model->Start(batch.src, batch.src_lengths);
      Tensor w;
      model->Step(*state, Tensor::FromVector(std::vector<int64_t>(3, token), {3}), &w);
      return w;
    };
    const float diff = MaxAbsDiff(first_weights(2), first_weights(7));
    if (wiring == "bahdanau") {
      EXPECT_EQ(diff, 0.0f);
    } else {
      EXPECT_GT(diff, 1e-6f) << wiring;
    }
  }
}

// The fixed-context baseline with a self-attention layer: the encoder's map is its one site, and
// the layer changes the outputs (the summary and the fixed context read h').
TEST(Seq2Seq, BaselineWithSelfAttentionReadsTheRefinedStates) {
  auto ex = Examples();
  models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
  Tensor without;
  for (const std::string self : {"none", "qkv"}) {
    Generator gen(9);
    ModelConfig c = Tiny("rnn", "additive", "global", true, "lstm");
    c.encoder_self_attention = models::ParseEnum<models::SelfAttend>(self, "self");
    auto model = models::MakeModel(c, gen);
    model->Eval();
    NoGradGuard no_grad;
    Tensor logits = model->Forward(batch);
    const auto maps = model->AttentionMaps(batch);
    if (self == "none") {
      EXPECT_TRUE(maps.empty());
      without = logits;
      continue;
    }
    ASSERT_EQ(maps.size(), 1u);
    EXPECT_EQ(maps[0].name, "encoder.0.self");
    // The same initial weights for everything but the layer (registered last).
    EXPECT_GT(MaxAbsDiff(logits, without), 1e-4);
  }
}

TEST(Seq2Seq, WiringErrorsNameTheProblem) {
  Generator gen(10);
  ModelConfig c = WiredConfig({"tutorial", "gru", "none", "additive", "global", true});
  c.max_source_len = 4;
  auto model = models::MakeModel(c, gen);
  auto ex = Examples();  // sources of 5, 2 and 4 words
  try {
    model->Forward(nmt::MakeBatch(ex, {0, 1}));
    FAIL() << "a source longer than max_source_len was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("source length 5"), std::string::npos) << m;
    EXPECT_NE(m.find("max_source_len 4"), std::string::npos) << m;
  }
  // A source exactly max_source_len long is fine, in training and decoding.
  EXPECT_NO_THROW(model->Forward(nmt::MakeBatch(ex, {1, 2})));
  EXPECT_THROW(model->Start(nmt::MakeBatch(ex, {0}).src, nmt::MakeBatch(ex, {0}).src_lengths),
               Error);
  ModelConfig windowed = WiredConfig({"tutorial", "gru", "none", "additive", "local-m", true});
  try {
    models::MakeModel(windowed, gen);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--window local-m"), std::string::npos) << e.what();
  }
  ModelConfig scored = WiredConfig({"tutorial", "gru", "none", "dot", "global", true});
  try {
    models::MakeModel(scored, gen);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--score dot"), std::string::npos) << e.what();
  }
  ModelConfig baseline = Tiny("rnn");
  baseline.wiring = models::Wiring::kBahdanau;
  EXPECT_THROW(models::MakeModel(baseline, gen), Error);
}

TEST(Seq2Seq, WiringOptionsRoundTripThroughJson) {
  ModelConfig c = WiredConfig({"bahdanau", "lstm", "qkv", "qkv", "local-p", true});
  ModelConfig d = ModelConfig::FromJson(c.ToJson());
  EXPECT_EQ(d.ToJson(), c.ToJson());
  EXPECT_EQ(d.wiring, models::Wiring::kBahdanau);
  EXPECT_EQ(d.encoder_self_attention, models::SelfAttend::kQkv);
  EXPECT_EQ(d.score, models::Score::kQkv);
}

TEST(Seq2Seq, SelectReordersAndDuplicatesHypotheses) {
  Generator gen(5);
  auto model = models::MakeModel(Tiny("rnn-attention"), gen);
  model->Eval();
  auto ex = Examples();
  models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
  NoGradGuard no_grad;
  auto a = model->Start(batch.src, batch.src_lengths);
  auto b = model->Start(batch.src, batch.src_lengths);
  Tensor tok = Tensor::FromVector(std::vector<int64_t>{2, 2, 2}, {3});
  Tensor la = model->Step(*a, tok);
  model->Step(*b, tok);
  model->Select(*b, Tensor::FromVector(std::vector<int64_t>{2, 0, 0}, {3}));
  // b's rows are a's rows 2, 0, 0: fed the same tokens, they give the same distributions.
  Tensor ra = model->Step(*a, Tensor::FromVector(std::vector<int64_t>{7, 5, 6}, {3}));
  Tensor rb = model->Step(*b, Tensor::FromVector(std::vector<int64_t>{6, 7, 7}, {3}));
  EXPECT_EQ(b->rows(), 3);
  EXPECT_LT(MaxAbsDiff(rb.Select(0, 0), ra.Select(0, 2)), 1e-7);
  EXPECT_LT(MaxAbsDiff(rb.Select(0, 1), ra.Select(0, 0)), 1e-7);
  EXPECT_LT(MaxAbsDiff(rb.Select(0, 2), ra.Select(0, 0)), 1e-7);
  model->Select(*b, Tensor::FromVector(std::vector<int64_t>{1}, {1}));
  EXPECT_EQ(b->rows(), 1);
}

// A beam's step moves hypotheses among the rows of their own sentence, and Select then keeps the
// per-sentence tensors (memory, keys, lengths) where they are. Against a batch that holds each
// sentence twice from the start (so every reorder there changes rows' sentences and gathers
// them), the same hypotheses give the same distributions: after the expansion, after reorders
// within sentences, and after a sentence leaves.
TEST(Seq2Seq, SelectWithinSentencesKeepsWhatEachRowReads) {
  for (const char* arch : {"rnn-attention", "rnn"}) {
    Generator gen(5);
    auto model = models::MakeModel(Tiny(arch), gen);
    model->Eval();
    auto ex = Examples();
    const models::Batch three = nmt::MakeBatch(ex, {0, 1, 2});
    std::vector<nmt::Example> twice = {ex[0], ex[0], ex[1], ex[1], ex[2], ex[2]};
    const models::Batch six = nmt::MakeBatch(twice, {0, 1, 2, 3, 4, 5});
    NoGradGuard no_grad;
    auto a = model->Start(three.src, three.src_lengths);
    auto b = model->Start(six.src, six.src_lengths);
    auto rows = [](std::vector<int64_t> r) {
      const auto n = static_cast<int64_t>(r.size());
      return Tensor::FromVector(std::move(r), {n});
    };
    model->Step(*a, rows({2, 2, 2}));
    model->Step(*b, rows({2, 2, 2, 2, 2, 2}));
    model->Select(*a, rows({0, 0, 1, 1, 2, 2}));  // the expansion to beams
    const std::vector<std::vector<int64_t>> tokens = {
        {5, 7, 6, 4, 9, 5}, {7, 7, 4, 6, 5, 8}, {6, 4, 5, 9, 7, 6}};
    const std::vector<std::vector<int64_t>> reorders = {
        {1, 0, 3, 2, 4, 4}, {0, 0, 2, 3, 5, 4}, {1, 1, 4, 5}};  // the last: sentence 1 leaves
    for (size_t t = 0; t < tokens.size(); ++t) {
      const int64_t n = a->rows();
      std::vector<int64_t> tok(tokens[t].begin(), tokens[t].begin() + n);
      const Tensor la = model->Step(*a, rows(tok));
      const Tensor lb = model->Step(*b, rows(tok));
      EXPECT_LT(MaxAbsDiff(la, lb), 1e-6) << arch << " step " << t;
      model->Select(*a, rows(reorders[t]));
      model->Select(*b, rows(reorders[t]));
      ASSERT_EQ(a->rows(), b->rows());
    }
    const std::vector<int64_t> last = {4, 6, 5, 9};
    EXPECT_LT(MaxAbsDiff(model->Step(*a, rows(last)), model->Step(*b, rows(last))), 1e-6) << arch;
    EXPECT_THROW(model->Select(*a, rows({0, 4})), Error);  // 4 rows held
  }
}

TEST(Seq2Seq, TeacherForcingBelowOneStillTrainsAndIsDeterministic) {
  auto run = [] {
    Generator gen(7);
    ModelConfig c = Tiny("rnn-attention");
    c.teacher_forcing = 0.5;
    auto model = models::MakeModel(c, gen);
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    Tensor logits = model->Forward(batch);
    Tensor loss = CrossEntropy(logits.View({-1, 11}), batch.tgt_out.View({-1}), SpecialIds::kPad);
    loss.Backward();
    return loss.item();
  };
  const double a = run(), b = run();
  EXPECT_EQ(a, b);
  EXPECT_TRUE(std::isfinite(a));
}

// With history 1 the Advanced LSTM's single weight is 1: on an LSTM model's weights (its own
// score's left as drawn) the advanced-lstm model gives the LSTM model's logits, weights and
// decoding steps, under each wiring, with stacked layers; with history 2 it differs.
TEST(Seq2Seq, AdvancedLstmWithHistoryOneIsTheLstmModel) {
  for (const char* wiring : {"luong", "bahdanau", "tutorial"}) {
    SCOPED_TRACE(wiring);
    ModelConfig c = WiredConfig({wiring, "lstm", "none", "additive", "global", true});
    c.encoder_layers = 2;
    c.decoder_layers = 2;
    Generator gen(8);
    auto lstm = models::MakeModel(c, gen);
    std::map<std::string, Tensor> weights;
    for (const auto& [name, p] : lstm->NamedParameters()) weights[name] = p;
    auto advanced_with = [&](int64_t history) {
      ModelConfig a = c;
      a.cell = models::Cell::kAdvancedLstm;
      a.history = history;
      Generator other(9);
      auto model = models::MakeModel(a, other);
      int64_t copied = 0;
      for (auto& [name, p] : model->NamedParameters()) {
        auto it = weights.find(name);
        if (it == weights.end()) {
          EXPECT_NE(name.find(".attn_"), std::string::npos) << name << " is not the LSTM's";
          continue;
        }
        p.CopyFrom(it->second);
        ++copied;
      }
      EXPECT_EQ(copied, static_cast<int64_t>(weights.size()));
      return model;
    };
    auto one = advanced_with(1), two = advanced_with(2);
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    NoGradGuard no_grad;
    for (auto* m : {lstm.get(), one.get(), two.get()}) m->Eval();
    Tensor w_lstm, w_one;
    const Tensor l_lstm = lstm->Forward(batch, &w_lstm), l_one = one->Forward(batch, &w_one);
    EXPECT_LT(MaxAbsDiff(l_one, l_lstm), 1e-5);
    EXPECT_LT(MaxAbsDiff(w_one, w_lstm), 1e-6);
    EXPECT_GT(MaxAbsDiff(two->Forward(batch), l_lstm), 1e-3);
    auto a = lstm->Start(batch.src, batch.src_lengths),
         b = one->Start(batch.src, batch.src_lengths);
    for (int64_t t = 0; t < batch.tgt_in.size(1); ++t) {
      const Tensor tok = batch.tgt_in.Select(1, t).Contiguous();
      EXPECT_LT(MaxAbsDiff(one->Step(*b, tok), lstm->Step(*a, tok)), 1e-5) << "step " << t;
    }
  }
}

// The Advanced LSTM through nmt::Train: 6 steps straight, and 3 steps, stopped, then resumed to 6,
// end in the same checkpoint bit for bit (dropout and teacher forcing 0.5 on: their streams are
// buffers in it). The checkpoint loads back (nmt::LoadModel: the config with its history, every
// weight) into a model that decodes exactly as the trained one.
TEST(Seq2Seq, AdvancedLstmResumesExactlyAndRoundTripsThroughACheckpoint) {
  testing::TempDir dir;
  const std::vector<std::string> words = {"lo", "ka", "mi", "su", "te", "na", "po", "ri", "ve"};
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < 24; ++i) {
    std::string src, tgt;
    for (size_t j = 0; j < 2 + i % 4; ++j) {
      const std::string& w = words[(3 * i + j) % words.size()];
      src += (j ? " " : "") + w;
      tgt = w + (j ? " " : "") + tgt;  // the source reversed
    }
    pairs.emplace_back(src, tgt);
  }
  std::vector<std::string> text;
  for (const auto& [s, t] : pairs) {
    text.push_back(s);
    text.push_back(t);
  }
  nmt::VocabularyOptions vo;
  vo.size = 20;
  vo.model_type = "word";
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(text, vo);
  const auto train = nmt::EncodePairs(vocab, pairs, 50);
  const std::vector<std::pair<std::string, std::string>> dev_text(pairs.begin(), pairs.begin() + 4);
  const auto dev = nmt::EncodePairs(vocab, dev_text, 50);
  ModelConfig c = Tiny("rnn-attention", "additive", "global", true, "advanced-lstm");
  c.src_vocab = c.tgt_vocab = vocab.size();
  c.history = 2;
  c.dropout = 0.3;
  c.teacher_forcing = 0.5;
  auto train_run = [&](const std::string& out, int64_t steps, bool resume) {
    Generator gen(11);
    auto model = models::MakeModel(c, gen);
    nmt::TrainOptions o;
    o.out_dir = dir / out;
    o.max_tokens = 40;
    o.max_steps = steps;
    o.valid_every = 3;
    o.valid_sentences = 2;
    o.warmup = 2;
    o.lr = 0.01;
    o.log_every = 100;
    o.progress = false;
    const nmt::TrainSummary s = nmt::Train(*model, vocab, train, dev, dev_text, o, resume);
    EXPECT_EQ(s.steps, steps);
    return model;
  };
  std::shared_ptr<models::Seq2Seq> trained = train_run("straight", 6, false);
  train_run("resumed", 3, false);
  train_run("resumed", 6, true);
  testing::ExpectSameCheckpoints(dir / "straight/last.ckpt", dir / "resumed/last.ckpt", 6);

  nmt::LoadedModel loaded = nmt::LoadModel(dir / "straight/last.ckpt");
  EXPECT_EQ(loaded.model->config().ToJson(), c.ToJson());
  EXPECT_EQ(loaded.model->config().history, 2);
  const auto want = trained->StateDict(), got = loaded.model->StateDict();
  ASSERT_EQ(got.size(), want.size());
  int64_t cell_attention = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].first, want[i].first);
    if (got[i].second.dtype() == DType::kF32) {
      EXPECT_EQ(got[i].second.ToVector<float>(), want[i].second.ToVector<float>()) << got[i].first;
    }
    if (got[i].first.find("attn_v_l0") != std::string::npos) ++cell_attention;
  }
  // The cell's own attention is saved: encoder (both directions) and decoder.
  EXPECT_EQ(cell_attention, 3);
  std::vector<std::vector<int64_t>> sources;
  for (size_t i = 0; i < 4; ++i) sources.push_back(train[i].src);
  nmt::SearchOptions beam;
  beam.beam = 3;
  trained->Eval();
  const auto a = nmt::Translate(*trained, sources, beam);
  const auto b = nmt::Translate(*loaded.model, sources, beam);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i][0].tokens, b[i][0].tokens) << "sentence " << i;
    EXPECT_EQ(a[i][0].score, b[i][0].score) << "sentence " << i;
  }
}

TEST(Seq2Seq, ErrorsNameTheProblem) {
  Generator gen(1);
  ModelConfig c = Tiny("rnn-attention");
  c.hidden_dim = 7;
  EXPECT_THROW(models::MakeModel(c, gen), Error);
  // Options are enums: a bad name is refused where names are read (a checkpoint's config JSON,
  // `attend train`'s options), and the message names it and the choices.
  try {
    models::ModelConfig::FromJson(R"({"score": "bogus"})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("score 'bogus' is not one of additive | dot"),
              std::string::npos)
        << e.what();
  }
  auto model = models::MakeModel(Tiny("rnn-attention"), gen);
  auto ex = Examples();
  ex[0].src[0] = 99;  // outside the source vocabulary of 13
  models::Batch batch = nmt::MakeBatch(ex, {0, 1});
  try {
    model->Forward(batch);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos);
  }
  EXPECT_THROW(models::ModelConfig::FromJson("{\"arch\": 3}"), Error);
  EXPECT_THROW(models::ModelConfig::FromJson("not json"), Error);
}

TEST(Seq2Seq, ConfigJsonRoundTrip) {
  ModelConfig c = Tiny("rnn-attention", "concat", "local-p", false, "lstm");
  c.teacher_forcing = 0.75;
  ModelConfig d = ModelConfig::FromJson(c.ToJson());
  EXPECT_EQ(d.ToJson(), c.ToJson());
  EXPECT_EQ(d.window, models::Window::kLocalP);
  EXPECT_EQ(d.teacher_forcing, 0.75);
}

TEST(Batching, MakeBatchPadsAndShifts) {
  auto ex = Examples();
  models::Batch b = nmt::MakeBatch(ex, {1, 0});
  EXPECT_EQ(b.src.shape(), Shape({2, 5}));
  EXPECT_EQ(b.tgt_in.shape(), Shape({2, 6}));
  EXPECT_EQ(b.src.ToVector<int64_t>(), (std::vector<int64_t>{9, 10, 0, 0, 0, 4, 5, 6, 7, 8}));
  EXPECT_EQ(b.tgt_in.ToVector<int64_t>(),
            (std::vector<int64_t>{2, 6, 7, 8, 10, 4, 2, 4, 5, 9, 0, 0}));
  EXPECT_EQ(b.tgt_out.ToVector<int64_t>(),
            (std::vector<int64_t>{6, 7, 8, 10, 4, 3, 4, 5, 9, 3, 0, 0}));
  EXPECT_EQ(b.src_lengths.ToVector<int64_t>(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(b.tgt_tokens, 10);
}

TEST(Batching, TokenBudgetCoversEveryExampleOnceAndIsDeterministic) {
  std::vector<nmt::Example> ex(200);
  for (int i = 0; i < 200; ++i) {
    ex[i].src.assign(1 + (i * 7) % 23, 5);
    ex[i].tgt.assign(1 + (i * 3) % 17, 6);
  }
  auto a = nmt::MakeBatches(ex, 64, 1, 0), b = nmt::MakeBatches(ex, 64, 1, 0);
  auto c = nmt::MakeBatches(ex, 64, 1, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int> seen(200, 0);
  for (const auto& batch : a) {
    size_t longest = 0;
    for (int64_t i : batch) {
      ++seen[i];
      longest = std::max({longest, ex[i].src.size(), ex[i].tgt.size() + 1});
    }
    EXPECT_TRUE(batch.size() == 1 || longest * batch.size() <= 64);
  }
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST(Alignment, HardAndSoftFormats) {
  std::vector<std::vector<float>> w = {{0.7f, 0.2f, 0.1f}, {0.1f, 0.1f, 0.8f}, {0.3f, 0.4f, 0.3f}};
  // The last row is eos's: not printed.
  EXPECT_EQ(nmt::HardAlignment(w), "0-0 2-1");
  EXPECT_EQ(nmt::SoftAlignment(w, 1), "0.7 0.2 0.1 | 0.1 0.1 0.8");
}

// A model trained to copy its input: greedy and beam search both find the copy, beam returns
// n-best lists sorted by score, and alignments follow the diagonal.
TEST(Search, LearnsToCopyAndBeamSearchFindsIt) {
  Generator gen(11);
  ModelConfig c = Tiny("rnn-attention");
  c.src_vocab = c.tgt_vocab = 10;
  c.embed_dim = 16;
  c.hidden_dim = 32;
  c.attention_dim = 16;
  auto model = models::MakeModel(c, gen);
  optim::Adam adam(model->Parameters(), optim::AdamOptions{.lr = 1e-2});
  Generator data(5);
  auto random_examples = [&](int n) {
    std::vector<nmt::Example> ex(n);
    for (auto& e : ex) {
      const int len = 3 + static_cast<int>(Generator::Bits(data.seed(), data.Reserve(1)) % 4);
      for (int j = 0; j < len; ++j)
        e.src.push_back(4 +
                        static_cast<int64_t>(Generator::Bits(data.seed(), data.Reserve(1)) % 6));
      e.tgt = e.src;
    }
    return ex;
  };
  std::vector<int64_t> all(32);
  for (int i = 0; i < 32; ++i) all[i] = i;
  for (int step = 0; step < 400; ++step) {
    auto ex = random_examples(32);
    models::Batch b = nmt::MakeBatch(ex, all);
    Tensor loss =
        CrossEntropy(model->Forward(b).View({-1, 10}), b.tgt_out.View({-1}), SpecialIds::kPad);
    loss.Backward();
    adam.Step();
    adam.ZeroGrad();
  }
  auto test = random_examples(20);
  std::vector<std::vector<int64_t>> sources;
  for (auto& e : test) sources.push_back(e.src);
  nmt::SearchOptions greedy;
  greedy.beam = 1;
  greedy.keep_attention = true;
  nmt::SearchOptions beam;
  beam.beam = 4;
  beam.nbest = 3;
  beam.batch_size = 7;  // chunks of different sizes
  auto g = nmt::Translate(*model, sources, greedy);
  auto bm = nmt::Translate(*model, sources, beam);
  EXPECT_TRUE(model->training());  // decoding restores the mode
  int greedy_ok = 0, beam_ok = 0, diagonal = 0, aligned = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    ASSERT_EQ(g[i].size(), 1u);
    ASSERT_EQ(bm[i].size(), 3u);
    for (const auto& h : bm[i])
      for (int64_t tok : h.tokens) EXPECT_TRUE(tok != SpecialIds::kPad && tok != SpecialIds::kBos);
    greedy_ok += g[i][0].tokens == sources[i];
    beam_ok += bm[i][0].tokens == sources[i];
    EXPECT_GE(bm[i][0].score, bm[i][1].score);
    EXPECT_GE(bm[i][1].score, bm[i][2].score);
    EXPECT_GE(bm[i][0].score, g[i][0].score - 1e-6);
    ASSERT_EQ(g[i][0].attention.size(), g[i][0].tokens.size() + 1);
    for (size_t t = 0; t < g[i][0].tokens.size(); ++t) {
      const auto& row = g[i][0].attention[t];
      ASSERT_EQ(row.size(), sources[i].size());
      diagonal += std::max_element(row.begin(), row.end()) - row.begin() == static_cast<long>(t);
      ++aligned;
    }
  }
  EXPECT_GE(greedy_ok, 18);
  EXPECT_GE(beam_ok, 18);
  EXPECT_GE(diagonal, aligned * 8 / 10);
}

TEST(Search, EmptySourceAndBadOptions) {
  Generator gen(2);
  auto model = models::MakeModel(Tiny("rnn-attention"), gen);
  nmt::SearchOptions o;
  auto r = nmt::Translate(*model, {{}, {4, 5}}, o);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0][0].tokens.empty());
  EXPECT_FALSE(r[1].empty());
  o.nbest = 9;
  EXPECT_THROW(nmt::Translate(*model, {{4}}, o), Error);
  o.nbest = 1;
  o.beam = 0;
  EXPECT_THROW(nmt::Translate(*model, {{4}}, o), Error);
}

// Decoding on packed weights (eval mode, Start packs) and on the modules themselves (training
// mode with dropout 0, nothing packed) give the same steps, for GRU and LSTM decoders and the
// Transformer (pre- and post-norm).
TEST(Seq2Seq, PackedDecodingEqualsTheModules) {
  struct Case {
    std::string arch, cell;
    bool pre_norm;
  };
  for (const Case& k : {Case{"rnn-attention", "gru", true}, Case{"rnn-attention", "lstm", true},
                        Case{"rnn", "gru", true}, Case{"transformer", "gru", true},
                        Case{"transformer", "gru", false}}) {
    Generator gen(6);
    ModelConfig c = Tiny(k.arch, "additive", "global", true, k.cell);
    c.src_vocab = c.tgt_vocab = 13;
    c.d_model = 8;
    c.heads = 2;
    c.ff_dim = 16;
    c.layers = 2;
    c.decoder_layers = 2;
    c.pre_norm = k.pre_norm;
    auto model = models::MakeModel(c, gen);
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    NoGradGuard no_grad;
    auto run = [&](bool train) {
      model->Train(train);
      auto state = model->Start(batch.src, batch.src_lengths);
      std::vector<Tensor> steps;
      for (int64_t t = 0; t < batch.tgt_in.size(1); ++t)
        steps.push_back(model->Step(*state, batch.tgt_in.Select(1, t).Contiguous()));
      return steps;
    };
    const auto packed = run(false), plain = run(true);
    for (size_t t = 0; t < packed.size(); ++t)
      EXPECT_LT(MaxAbsDiff(packed[t], plain[t]), 1e-5) << k.arch << " " << k.cell << " step " << t;
  }
}

// The fused kernels and the compositions they replace give the same model outputs.
TEST(Seq2Seq, FusedKernelsSwitchKeepsResults) {
  for (const std::string arch : {"rnn-attention", "transformer"}) {
    Generator gen(4);
    ModelConfig c = Tiny(arch);
    c.src_vocab = c.tgt_vocab = 13;
    c.d_model = 8;
    c.heads = 2;
    c.ff_dim = 16;
    c.layers = 2;
    auto model = models::MakeModel(c, gen);
    model->Eval();
    auto ex = Examples();
    models::Batch batch = nmt::MakeBatch(ex, {0, 1, 2});
    NoGradGuard no_grad;
    ASSERT_TRUE(attention::FusedKernels());
    Tensor fused = model->Forward(batch);
    auto state = model->Start(batch.src, batch.src_lengths);
    Tensor fused_step = model->Step(*state, batch.tgt_in.Select(1, 0).Contiguous());
    attention::SetFusedKernels(false);
    Tensor plain = model->Forward(batch);
    state = model->Start(batch.src, batch.src_lengths);
    Tensor plain_step = model->Step(*state, batch.tgt_in.Select(1, 0).Contiguous());
    attention::SetFusedKernels(true);
    EXPECT_LT(MaxAbsDiff(fused, plain), 1e-5) << arch;
    EXPECT_LT(MaxAbsDiff(fused_step, plain_step), 1e-5) << arch;
  }
}

}  // namespace
}  // namespace attend
