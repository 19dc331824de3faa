// Tests of the Transformer translation model: end to end against PyTorch's own layers on the same
// weights (logits, attention, label-smoothed loss, every parameter's gradient, with and without
// transparent attention, and with guided alignment on one head;
// tests/reference/transformer_reference.py), cached incremental decoding against the full
// forward (with padding, cache growth and beam-style Select), transparent attention's
// properties and checkpoints, one head's weights with gradient, dropout modes, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "attend/attend.h"
#include "attend/checkpoint.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "support/models.h"
#include "support/files.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend::models {
namespace {
using attend::testing::LoadTorchWeights;

using attend::testing::ExpectClose;
using attend::testing::RandomBatch;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::HasSubstr;

ModelConfig TinyConfig(bool pre_norm, bool share, int64_t src_vocab = 29, int64_t tgt_vocab = 29,
                       bool transparent = false) {
  ModelConfig c;
  c.arch = models::Arch::kTransformer;
  c.src_vocab = src_vocab;
  c.tgt_vocab = share ? src_vocab : tgt_vocab;
  c.d_model = 32;
  c.heads = 4;
  c.ff_dim = 48;
  c.layers = 2;
  c.pre_norm = pre_norm;
  c.share_embeddings = share;
  c.max_positions = 64;
  c.dropout = 0.1;
  c.transparent = transparent;
  return c;
}

// ---------------------------------------------------------------------------------------------
// End to end against PyTorch.
// ---------------------------------------------------------------------------------------------

const reference::LoadedCases& LoadTransformerCases() {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "transformer_reference.bin", "tests/reference/transformer_reference.py");
  return loaded;
}

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  ModelConfig cfg;
  cfg.arch = models::Arch::kTransformer;
  cfg.src_vocab = k.Int("src_vocab");
  cfg.tgt_vocab = k.Int("tgt_vocab");
  cfg.d_model = k.Int("d_model");
  cfg.heads = k.Int("heads");
  cfg.ff_dim = k.Int("ff");
  cfg.layers = k.Int("layers");
  cfg.max_positions = k.Int("max_positions");
  cfg.pre_norm = k.Bool("pre_norm");
  cfg.share_embeddings = k.Bool("share");
  cfg.transparent = k.Bool("transparent");
  cfg.decoder_depth = k.Int("decoder_depth", 0);
  cfg.dropout = 0.0;
  Generator gen(1);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  LoadTorchWeights(c, *model);
  if (::testing::Test::HasFatalFailure()) return;

  Batch batch;
  batch.src = ToTensor(Ref(c, "src"));
  batch.src_lengths = ToTensor(Ref(c, "src_lengths"));
  batch.tgt_in = ToTensor(Ref(c, "tgt_in"));
  batch.tgt_out = ToTensor(Ref(c, "tgt_out"));
  const int64_t b = batch.tgt_in.size(0), t = batch.tgt_in.size(1);
  // Without weights asked for, every attention runs fused; with them, the last decoder layer's
  // cross-attention takes the composed path. Both meet torch; gradients go through the former.
  Tensor attention, logits_with_weights;
  {
    NoGradGuard no_grad;
    logits_with_weights = model->Forward(batch, &attention);
  }
  // Guided alignment: the loss gains align_weight * GuidedAlignmentLoss of one head's weights,
  // read with their graph from the training forward.
  const bool guided = k.Has("guided");
  Tensor head_weights;
  Tensor logits = guided ? model->ForwardWithHead(batch, k.Int("align_layer"), k.Int("align_head"),
                                                  &head_weights)
                         : model->Forward(batch);  // [B, T, V]
  Tensor loss = CrossEntropy(logits.View({b * t, -1}), batch.tgt_out.View({b * t}),
                             SpecialIds::kPad, k.Double("label_smoothing"));
  if (guided) {
    const Tensor targets = ToTensor(Ref(c, "align_targets"));
    int64_t linked = 0;
    for (float v : Sum(targets, {2}).ToVector<float>()) linked += v > 0;
    Tensor align = nmt::GuidedAlignmentLoss(head_weights, targets, linked);
    // Weights and the loss are O(1) normalised values (n = 1).
    ExpectMatches(c, "head weights", head_weights, Ref(c, "head_weights"), 1.0);
    ExpectMatches(c, "alignment loss", align, Ref(c, "align_loss"), 1.0);
    loss = Add(loss, MulScalar(align, k.Double("align_weight")));
  }
  loss.Backward();

  // Tolerances (reference_compare.h: |got - want| <= atol * n + rtol * |want|). A logit ends in
  // a d_model-long dot product; attention weights and the loss are O(1) normalised values (n = 1).
  // The loss is a mean over the real target tokens, so each gradient is a sum over the B*T
  // positions of terms scaled by 1/tokens: atol shrinks by that count. (Observed on these
  // cases: logits within 7e-7, attention 6e-8, loss 7e-7, gradients 9e-8 of torch.)
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), static_cast<double>(cfg.d_model));
  ExpectMatches(c, "logits (weights path)", logits_with_weights, Ref(c, "logits"),
                static_cast<double>(cfg.d_model));
  ExpectMatches(c, "attention", attention, Ref(c, "attention"), 1.0);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), 1.0);
  int64_t tokens = 0;
  for (int64_t id : batch.tgt_out.ToVector<int64_t>()) tokens += id != SpecialIds::kPad;
  reference::Tolerance grad_tol;
  grad_tol.f32_atol /= static_cast<double>(tokens);
  for (auto& [name, p] : model->NamedParameters())
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), static_cast<double>(b * t),
                  grad_tol);
}

TEST(TransformerTorchReference, LogitsLossAndGradientsMatch) {
  const reference::LoadedCases& loaded = LoadTransformerCases();
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<std::string> seen;
  int transparent = 0, guided = 0, depths = 0;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    OpKey k(c.op);
    seen.insert(std::string(k.Bool("pre_norm") ? "pre" : "post") +
                (k.Bool("share") ? "+shared" : "+separate"));
    transparent += k.Bool("transparent");
    guided += k.Has("guided");
    depths += k.Int("decoder_depth", 0) > 0;
  }
  // Every norm placement with and without shared embeddings was compared, transparent attention
  // with both norms (and under a deep encoder), guided alignment on three heads, decoders
  // shallower and deeper than the encoder.
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(transparent, 4);
  EXPECT_EQ(guided, 3);
  EXPECT_EQ(depths, 2);
}

// ---------------------------------------------------------------------------------------------
// Incremental decoding equals the full forward.
// ---------------------------------------------------------------------------------------------

// Transparent attention's scores drawn at random (they start at zero: a uniform mix), so that every
// decoder layer reads a different memory.
void RandomTransparentWeights(Seq2Seq& model, uint64_t seed) {
  for (auto& [name, p] : model.NamedParameters())
    if (name == "transparent.logits") {
      Generator gen(seed);
      p.CopyFrom(Tensor::Randn(p.shape(), gen));
    }
}

class TransformerIncremental : public ::testing::TestWithParam<std::tuple<bool, bool, bool>> {};

TEST_P(TransformerIncremental, StepsEqualForwardWithPaddingGrowthAndSelect) {
  const auto [pre_norm, share, transparent] = GetParam();
  ModelConfig cfg = TinyConfig(pre_norm, share, 29, 31, transparent);
  Generator gen(7);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  RandomTransparentWeights(*model, 17);
  model->Eval();
  // Target length 21 outgrows the caches' initial capacity (16): one growth on the way.
  Batch batch = RandomBatch(cfg, {6, 2, 4}, {21, 9, 14}, 11);
  const int64_t b = 3, t = batch.tgt_in.size(1), s = batch.src.size(1);
  NoGradGuard no_grad;
  Tensor full_attn;
  Tensor full = LogSoftmax(model->Forward(batch, &full_attn), -1);  // [B, T, V]
  const std::vector<int64_t> tgt = batch.tgt_in.ToVector<int64_t>();
  auto column = [&](const std::vector<int64_t>& rows, int64_t pos) {
    std::vector<int64_t> ids;
    for (int64_t r : rows) ids.push_back(tgt[r * t + pos]);
    return Tensor::FromVector(ids, {static_cast<int64_t>(ids.size())});
  };
  // The full forward's rows `rows` at position pos: [N, V] and [N, S].
  auto expected = [&](const Tensor& x, const std::vector<int64_t>& rows, int64_t pos) {
    Tensor r = Tensor::FromVector(rows, {static_cast<int64_t>(rows.size())});
    return IndexSelect(x.Select(1, pos), 0, r);
  };

  std::unique_ptr<DecoderState> state = model->Start(batch.src, batch.src_lengths);
  ASSERT_EQ(state->rows(), b);
  std::vector<int64_t> rows = {0, 1, 2};
  for (int64_t pos = 0; pos < t; ++pos) {
    if (pos == 3) {  // every hypothesis kept in place
      model->Select(*state, Tensor::FromVector(std::vector<int64_t>{0, 1, 2}, {3}));
      ASSERT_EQ(state->rows(), 3);
    }
    if (pos == 5) {  // beam search: reorder and duplicate hypotheses
      rows = {2, 0, 0, 1};
      model->Select(*state, Tensor::FromVector(std::vector<int64_t>{2, 0, 0, 1}, {4}));
      ASSERT_EQ(state->rows(), 4);
    }
    if (pos == 12) {  // ... and drop some: keep new rows 1 and 3 (old 0 and 1)
      rows = {rows[1], rows[3]};
      model->Select(*state, Tensor::FromVector(std::vector<int64_t>{1, 3}, {2}));
      ASSERT_EQ(state->rows(), 2);
    }
    // Steps that ask for the weights gather each hypothesis' memory; the others read it in place
    // (GatheredScaledDotProductAttention): both must match the full forward.
    const bool with_weights = pos % 2 == 0;
    Tensor attn;
    Tensor lp = model->Step(*state, column(rows, pos), with_weights ? &attn : nullptr);
    const std::string at = "position " + std::to_string(pos);
    ASSERT_EQ(lp.shape(), Shape({static_cast<int64_t>(rows.size()), cfg.tgt_vocab})) << at;
    EXPECT_FALSE(lp.requires_grad());
    ExpectClose(lp, expected(full, rows, pos), "log-probs " + at);
    if (!with_weights) continue;
    ASSERT_EQ(attn.shape(), Shape({static_cast<int64_t>(rows.size()), s})) << at;
    ExpectClose(attn, expected(full_attn, rows, pos), "cross-attention " + at);
  }
}

INSTANTIATE_TEST_SUITE_P(NormSharingTransparent, TransformerIncremental,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "PreNorm" : "PostNorm") +
                                  (std::get<1>(info.param) ? "Shared" : "Separate") +
                                  (std::get<2>(info.param) ? "Transparent" : "");
                         });

// ---------------------------------------------------------------------------------------------
// Transparent attention.
// ---------------------------------------------------------------------------------------------

// One [layers, layers + 1] matrix of scores, initialised to zeros (the uniform mix); nothing else
// changes, and the other weights are those of the plain model built from the same generator.
TEST(TransformerTransparent, ScoresStartUniformAndTheRestIsThePlainModel) {
  for (bool pre_norm : {true, false}) {
    Generator g1(5), g2(5);
    auto plain = MakeModel(TinyConfig(pre_norm, true), g1);
    auto transparent = MakeModel(TinyConfig(pre_norm, true, 29, 29, true), g2);
    std::map<std::string, Tensor> a, b;
    for (auto& [n, p] : plain->NamedParameters()) a[n] = p;
    for (auto& [n, p] : transparent->NamedParameters()) b[n] = p;
    ASSERT_EQ(b.size(), a.size() + 1);
    ASSERT_TRUE(b.count("transparent.logits"));
    EXPECT_EQ(b["transparent.logits"].shape(), Shape({2, 3}));
    for (float v : b["transparent.logits"].ToVector<float>()) EXPECT_EQ(v, 0.0f);
    for (auto& [n, p] : a) EXPECT_EQ(p.ToVector<float>(), b[n].ToVector<float>()) << n;
  }
}

// With every decoder layer's scores all on the last encoder layer, transparent attention is the
// plain model (softmax puts e^-40 on the others); with them elsewhere it is not.
TEST(TransformerTransparent, AllWeightOnTheLastLayerIsThePlainModel) {
  for (bool pre_norm : {true, false}) {
    Generator g1(8), g2(8);
    auto plain = MakeModel(TinyConfig(pre_norm, false, 29, 31), g1);
    auto transparent = MakeModel(TinyConfig(pre_norm, false, 29, 31, true), g2);
    plain->Eval();
    transparent->Eval();
    Tensor w;
    for (auto& [n, p] : transparent->NamedParameters())
      if (n == "transparent.logits") w = p;
    ASSERT_TRUE(w.defined());
    w.CopyFrom(Tensor::FromVector(std::vector<float>{0, 0, 40, 0, 0, 40}, {2, 3}));
    Batch batch = RandomBatch(TinyConfig(pre_norm, false, 29, 31), {6, 3}, {5, 4}, 3);
    const std::string what = pre_norm ? "pre-norm" : "post-norm";
    ExpectClose(transparent->Forward(batch), plain->Forward(batch), what);
    w.CopyFrom(Tensor::FromVector(std::vector<float>{40, 0, 0, 0, 40, 0}, {2, 3}));
    const std::vector<float> x = transparent->Forward(batch).ToVector<float>(),
                             y = plain->Forward(batch).ToVector<float>();
    double diff = 0;
    for (size_t i = 0; i < x.size(); ++i) diff = std::max(diff, double(std::abs(x[i] - y[i])));
    EXPECT_GT(diff, 1e-2) << what << ": the embeddings' and first layer's mix changed nothing";
  }
}

// The scores are trained: a loss through the decoder reaches every one of them.
TEST(TransformerTransparent, EveryScoreGetsAGradient) {
  Generator gen(12);
  auto model = MakeModel(TinyConfig(true, true, 29, 29, true), gen);
  RandomTransparentWeights(*model, 3);
  Batch batch = RandomBatch(TinyConfig(true, true), {6, 3}, {5, 4}, 3);
  Tensor logits = model->Forward(batch);
  CrossEntropy(logits.View({-1, 29}), batch.tgt_out.View({-1}), SpecialIds::kPad).Backward();
  for (auto& [n, p] : model->NamedParameters())
    if (n == "transparent.logits") {
      ASSERT_TRUE(p.grad().defined());
      for (float g : p.grad().ToVector<float>()) EXPECT_GT(std::abs(g), 1e-7f);
      // Softmax's gradient sums to zero along each row.
      for (float r : Sum(p.grad(), {1}).ToVector<float>()) EXPECT_NEAR(r, 0.0f, 1e-6f);
    }
}

// A checkpoint keeps the scores and the option: loaded into a model built from the saved config,
// it computes the same logits; a plain model refuses it.
TEST(TransformerTransparent, CheckpointRoundTrip) {
  testing::TempDir dir;
  const ModelConfig cfg = TinyConfig(false, true, 29, 29, true);
  Generator gen(21);
  auto model = MakeModel(cfg, gen);
  RandomTransparentWeights(*model, 9);
  model->Eval();
  Batch batch = RandomBatch(cfg, {5, 2}, {4, 6}, 4);
  const Tensor want = model->Forward(batch);
  const std::string path = dir / "t.ckpt";
  io::SaveCheckpoint(path, *model, nullptr, nullptr, cfg.ToJson());
  Generator other(99);
  const ModelConfig loaded_cfg = ModelConfig::FromJson(cfg.ToJson());
  EXPECT_TRUE(loaded_cfg.transparent);
  auto loaded = MakeModel(loaded_cfg, other);
  io::LoadCheckpoint(path, *loaded);
  loaded->Eval();
  EXPECT_EQ(loaded->Forward(batch).ToVector<float>(), want.ToVector<float>());
  ModelConfig plain_cfg = cfg;
  plain_cfg.transparent = false;
  auto plain = MakeModel(plain_cfg, other);
  EXPECT_THAT(ThrownMessage([&] { io::LoadCheckpoint(path, *plain); }),
              HasSubstr("transparent.logits"));
}

// AttentionMaps keeps its sites and shapes with transparent attention, and its last cross map is
// still what Forward and the decoding steps give.
TEST(TransformerTransparent, AttentionMapsAreUnchangedInShape) {
  ModelConfig cfg = TinyConfig(true, true, 29, 29, true);
  Generator gen(4);
  auto model = MakeModel(cfg, gen);
  RandomTransparentWeights(*model, 5);
  model->Eval();
  Batch batch = RandomBatch(cfg, {6, 3}, {5, 2}, 9);
  const std::vector<AttentionMap> maps = model->AttentionMaps(batch);
  ASSERT_EQ(maps.size(), 3u * cfg.layers);
  for (const AttentionMap& m : maps) {
    const int64_t tq = m.side == "encoder" ? 6 : 5, tk = m.kind == "self" ? tq : 6;
    EXPECT_EQ(m.weights.shape(), Shape({2, cfg.heads, tq, tk})) << m.name;
  }
  Tensor averaged;
  model->Forward(batch, &averaged);
  ExpectClose(Mean(maps.back().weights, {1}), averaged, "last cross map vs Forward");
}

// ---------------------------------------------------------------------------------------------
// One head with gradient (guided alignment).
// ---------------------------------------------------------------------------------------------

// ForwardWithHead gives Forward's logits and head h of layer l's cross-attention, the same
// weights AttentionMaps reads, with a graph back to the parameters.
TEST(TransformerHead, ForwardWithHeadIsTheMapsHeadWithGradient) {
  ModelConfig cfg = TinyConfig(true, false, 29, 31);
  cfg.dropout = 0.0;
  Generator gen(6);
  auto model = MakeModel(cfg, gen);
  Batch batch = RandomBatch(cfg, {6, 3}, {5, 4}, 9);
  const std::vector<AttentionMap> maps = model->AttentionMaps(batch);
  const Tensor plain = model->Forward(batch);
  for (int64_t layer = 0; layer < cfg.layers; ++layer)
    for (int64_t head = 0; head < cfg.heads; ++head) {
      Tensor w;
      const Tensor logits = model->ForwardWithHead(batch, layer, head, &w);
      const std::string at = "layer " + std::to_string(layer) + " head " + std::to_string(head);
      ExpectClose(logits, plain, "logits " + at);
      ASSERT_EQ(w.shape(), Shape({2, 5, 6})) << at;
      EXPECT_TRUE(w.requires_grad()) << at;
      ExpectClose(w, maps[cfg.layers + 2 * layer + 1].weights.Select(1, head), at);
    }
  EXPECT_THAT(ThrownMessage([&] {
                Tensor w;
                model->ForwardWithHead(batch, 2, 0, &w);
              }),
              AllOf(HasSubstr("layer 2"), HasSubstr("2 layers x 4 heads")));
  EXPECT_THAT(ThrownMessage([&] {
                Tensor w;
                model->ForwardWithHead(batch, 0, 4, &w);
              }),
              HasSubstr("head 4"));
}

TEST(Transformer, StepWithoutAttentionMatchesStepWithIt) {
  ModelConfig cfg = TinyConfig(true, true);
  Generator gen(3);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  model->Eval();
  Batch batch = RandomBatch(cfg, {5, 3}, {4, 4}, 5);
  auto a = model->Start(batch.src, batch.src_lengths);
  auto w = model->Start(batch.src, batch.src_lengths);
  for (int64_t pos = 0; pos < 4; ++pos) {
    Tensor tokens = batch.tgt_in.Select(1, pos).Contiguous();
    Tensor attn;
    ExpectClose(model->Step(*a, tokens), model->Step(*w, tokens, &attn),
                "position " + std::to_string(pos));
    // The weights over real source positions sum to one; padding gets none.
    std::vector<float> v = attn.ToVector<float>();
    for (int64_t r = 0; r < 2; ++r) {
      const int64_t len = r == 0 ? 5 : 3;
      float sum = 0;
      for (int64_t j = 0; j < 5; ++j) {
        if (j >= len) {
          EXPECT_EQ(v[r * 5 + j], 0.0f) << "row " << r << " pad " << j;
        }
        sum += v[r * 5 + j];
      }
      EXPECT_NEAR(sum, 1.0f, 1e-5f);
    }
  }
}

// AttentionMaps: every layer's self- and cross-attention per head. Each row is a distribution
// over the real keys (padding and, on the decoder's self-attention, later positions get none), the
// last cross map averaged over heads is Forward's attention, and the decoder's weights are those
// the decoding steps compute.
TEST(Transformer, AttentionMapsHoldEveryLayerAndHead) {
  ModelConfig cfg = TinyConfig(false, true);
  Generator gen(4);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  model->Eval();
  const std::vector<int64_t> src_len = {6, 3}, tgt_len = {5, 2};
  Batch batch = RandomBatch(cfg, src_len, tgt_len, 9);
  const std::vector<AttentionMap> maps = model->AttentionMaps(batch);
  ASSERT_EQ(maps.size(), 3u * cfg.layers);
  const int64_t s = 6, t = 5;
  for (const AttentionMap& m : maps) {
    const bool enc = m.side == "encoder", self = m.kind == "self";
    const int64_t tq = enc ? s : t, tk = self ? tq : s;
    ASSERT_EQ(m.weights.shape(), Shape({2, cfg.heads, tq, tk})) << m.name;
    const std::vector<float> w = m.weights.ToVector<float>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < cfg.heads; ++h)
        for (int64_t i = 0; i < tq; ++i) {
          double sum = 0;
          for (int64_t j = 0; j < tk; ++j) {
            const float v = w[((b * cfg.heads + h) * tq + i) * tk + j];
            const bool pad = self && !enc ? j > i : j >= src_len[b];
            if (pad) {
              EXPECT_EQ(v, 0.0f) << m.name << " b" << b << " h" << h << " " << i << "," << j;
            }
            sum += v;
          }
          EXPECT_NEAR(sum, 1.0, 1e-5) << m.name;
        }
  }
  EXPECT_EQ(maps[0].name, "encoder.0.self");
  EXPECT_EQ(maps.back().name, "decoder.1.cross");
  Tensor averaged;
  model->Forward(batch, &averaged);
  ExpectClose(Mean(maps.back().weights, {1}), averaged, "last cross map vs Forward");
  // Decoding steps: the last layer's cross-attention of step p is row p of the map.
  auto state = model->Start(batch.src, batch.src_lengths);
  const Tensor last = Mean(maps.back().weights, {1});  // [B, T, S]
  for (int64_t p = 0; p < t; ++p) {
    Tensor step;
    model->Step(*state, batch.tgt_in.Select(1, p).Contiguous(), &step);
    ExpectClose(step, last.Select(1, p).Contiguous(), "step " + std::to_string(p));
  }
}

TEST(Transformer, PaddingTokensNeverReachTheOutput) {
  for (bool pre_norm : {true, false}) {
    ModelConfig cfg = TinyConfig(pre_norm, false, 29, 31);
    Generator gen(5);
    std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
    model->Eval();
    Batch batch = RandomBatch(cfg, {7, 3, 5}, {6, 6, 6}, 21);
    Tensor base = model->Forward(batch);
    // Different ids in the padded source positions: the masks must hide them entirely.
    Batch other = batch;
    other.src = batch.src.Clone();
    int64_t* p = other.src.data<int64_t>();
    const std::vector<int64_t> len = {7, 3, 5};
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = len[i]; j < 7; ++j) p[i * 7 + j] = 4 + (i + j) % 20;
    ExpectClose(model->Forward(other), base, pre_norm ? "pre-norm" : "post-norm");
  }
}

TEST(Transformer, DropoutOnlyInTraining) {
  ModelConfig cfg = TinyConfig(true, true);
  cfg.dropout = 0.3;
  Generator gen(9);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  Batch batch = RandomBatch(cfg, {4, 3}, {5, 3}, 2);
  Tensor a = model->Forward(batch), b = model->Forward(batch);
  EXPECT_NE(a.ToVector<float>(), b.ToVector<float>()) << "training: fresh dropout masks";
  model->Eval();
  EXPECT_EQ(model->Forward(batch).ToVector<float>(), model->Forward(batch).ToVector<float>());
}

TEST(Transformer, ParameterNamesFollowTheConfiguration) {
  Generator gen(1);
  auto names = [&](bool pre_norm, bool share) {
    std::set<std::string> n;
    for (auto& [name, p] : MakeModel(TinyConfig(pre_norm, share, 29, 31), gen)->NamedParameters())
      n.insert(name);
    return n;
  };
  std::set<std::string> shared = names(true, true), separate = names(false, false);
  EXPECT_TRUE(shared.count("embed.weight"));
  EXPECT_FALSE(shared.count("output.weight"));  // the embedding matrix is the projection
  EXPECT_TRUE(shared.count("encoder.norm.weight") && shared.count("decoder.norm.bias"));
  EXPECT_TRUE(separate.count("src_embed.weight") && separate.count("tgt_embed.weight") &&
              separate.count("output.bias"));
  EXPECT_FALSE(separate.count("encoder.norm.weight"));  // post-norm: no final LayerNorm
  EXPECT_TRUE(separate.count("decoder.layers.1.multihead_attn.in_proj_weight"));
}

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

TEST(TransformerErrors, SharedEmbeddingsNeedOneVocabulary) {
  ModelConfig cfg = TinyConfig(true, false, 29, 31);
  cfg.share_embeddings = true;
  Generator gen(1);
  EXPECT_THAT(ThrownMessage([&] { MakeModel(cfg, gen); }),
              AllOf(HasSubstr("share_embeddings"), HasSubstr("29"), HasSubstr("31")));
}

TEST(TransformerErrors, SourceLongerThanMaxPositions) {
  ModelConfig cfg = TinyConfig(true, true);
  cfg.max_positions = 8;
  Generator gen(1);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  Batch batch = RandomBatch(cfg, {9, 2}, {3, 3}, 1);
  EXPECT_THAT(ThrownMessage([&] { model->Forward(batch); }),
              AllOf(HasSubstr("source length 9"), HasSubstr("max_positions 8")));
  EXPECT_THAT(ThrownMessage([&] { model->Start(batch.src, batch.src_lengths); }),
              HasSubstr("max_positions 8"));
  Batch long_target = RandomBatch(cfg, {3, 2}, {9, 3}, 1);
  EXPECT_THAT(ThrownMessage([&] { model->Forward(long_target); }),
              AllOf(HasSubstr("target length 9"), HasSubstr("max_positions 8")));
  // Decoding cannot run past the last position either.
  NoGradGuard no_grad;
  Batch ok = RandomBatch(cfg, {3, 2}, {3, 3}, 1);
  auto state = model->Start(ok.src, ok.src_lengths);
  Tensor bos = Tensor::Full({2}, SpecialIds::kBos, DType::kI64);
  for (int i = 0; i < 8; ++i) model->Step(*state, bos);
  EXPECT_THAT(ThrownMessage([&] { model->Step(*state, bos); }),
              AllOf(HasSubstr("position 8"), HasSubstr("max_positions 8")));
}

TEST(TransformerErrors, TokenIdsOutOfRange) {
  ModelConfig cfg = TinyConfig(false, false, 29, 31);
  Generator gen(1);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  Batch batch = RandomBatch(cfg, {4, 2}, {3, 3}, 1);
  Batch bad_src = batch;
  bad_src.src = batch.src.Clone();
  bad_src.src.data<int64_t>()[1] = 29;
  EXPECT_THAT(ThrownMessage([&] { model->Forward(bad_src); }),
              AllOf(HasSubstr("source token id 29"), HasSubstr("[0, 29)")));
  Batch bad_tgt = batch;
  bad_tgt.tgt_in = batch.tgt_in.Clone();
  bad_tgt.tgt_in.data<int64_t>()[2] = -1;
  EXPECT_THAT(ThrownMessage([&] { model->Forward(bad_tgt); }),
              AllOf(HasSubstr("target token id -1"), HasSubstr("[0, 31)")));
  EXPECT_THAT(ThrownMessage([&] { model->Start(bad_src.src, bad_src.src_lengths); }),
              HasSubstr("source token id 29"));
  NoGradGuard no_grad;
  auto state = model->Start(batch.src, batch.src_lengths);
  EXPECT_THAT(ThrownMessage([&] {
                model->Step(*state, Tensor::FromVector(std::vector<int64_t>{2, 31}, {2}));
              }),
              HasSubstr("target token id 31"));
  EXPECT_THAT(ThrownMessage([&] {
                model->Step(*state, Tensor::FromVector(std::vector<int64_t>{2, 2, 2}, {3}));
              }),
              HasSubstr("i64 [2]"));
  EXPECT_THAT(ThrownMessage([&] {
                model->Select(*state, Tensor::FromVector(std::vector<int64_t>{0, 2}, {2}));
              }),
              HasSubstr("rows[1] = 2"));
  Batch bad_len = batch;
  bad_len.src_lengths = Tensor::FromVector(std::vector<int64_t>{4, 5}, {2});
  EXPECT_THAT(ThrownMessage([&] { model->Forward(bad_len); }), HasSubstr("src_lengths[1] = 5"));
}

}  // namespace
}  // namespace attend::models
