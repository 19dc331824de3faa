// The RNN encoder-decoders (with and without attention) and the nmt layer: incremental decoding
// equals teacher forcing, beam search, batching, alignments, training with exact resume.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "attend/attention.h"
#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "attend/optim.h"

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
