// Tests of the pervasive-attention model (src/models/pervasive.cc): end to end against the PyTorch
// mirror on the same weights (logits, implicit alignment, label-smoothed loss, every parameter's
// gradient; tests/reference/pervasive_reference.py), incremental decoding against teacher forcing
// (with padding and beam-style Select, for every filter height), the two properties the grid
// must keep (source padding changes no real output; no output reads a later target input), the
// alignment's rows, dropout modes, the checkpoint round trip through nmt::LoadModel, and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "support/models.h"
#include "support/checkpoints.h"
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
using ::testing::AllOf;
using ::testing::HasSubstr;

ModelConfig TinyConfig(int64_t kernel = 3, int64_t src_vocab = 29, int64_t tgt_vocab = 31) {
  ModelConfig c;
  c.arch = Arch::kPervasive;
  c.src_vocab = src_vocab;
  c.tgt_vocab = tgt_vocab;
  c.embed_dim = 12;
  c.dense_layers = 3;
  c.growth = 6;
  c.kernel = kernel;
  c.max_positions = 64;
  c.dropout = 0.1;
  return c;
}

// ---------------------------------------------------------------------------------------------
// End to end against PyTorch.
// ---------------------------------------------------------------------------------------------

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  ModelConfig cfg;
  cfg.arch = Arch::kPervasive;
  cfg.src_vocab = k.Int("src_vocab");
  cfg.tgt_vocab = k.Int("tgt_vocab");
  cfg.embed_dim = k.Int("embed_dim");
  cfg.dense_layers = k.Int("dense_layers");
  cfg.growth = k.Int("growth");
  cfg.kernel = k.Int("kernel");
  cfg.max_positions = k.Int("max_positions");
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
  Tensor attention;
  Tensor logits = model->Forward(batch, &attention);  // [B, T, V]
  Tensor loss = CrossEntropy(logits.View({b * t, -1}), batch.tgt_out.View({b * t}),
                             SpecialIds::kPad, k.Double("label_smoothing"));
  loss.Backward();

  // Tolerances (reference_compare.h: |got - want| <= atol * n + rtol * |want|). A logit ends a
  // chain of sums over the channels (the widest: 2 E + layers * growth); the alignment counts
  // channels exactly (both sides pick the same winners, so it is compared as a value of n = 1);
  // the loss is O(1). Gradients are sums over the B*T*S grid positions of terms scaled by
  // 1/tokens. (Observed on these cases: logits within 3e-7 of torch, alignment exact, gradients
  // within 2e-8.)
  const double channels = static_cast<double>(2 * cfg.embed_dim + cfg.dense_layers * cfg.growth);
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), channels);
  ExpectMatches(c, "attention", attention, Ref(c, "attention"), 1.0);
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), 1.0);
  int64_t tokens = 0;
  for (int64_t id : batch.tgt_out.ToVector<int64_t>()) tokens += id != SpecialIds::kPad;
  reference::Tolerance grad_tol;
  grad_tol.f32_atol /= static_cast<double>(tokens);
  for (auto& [name, p] : model->NamedParameters())
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name),
                  static_cast<double>(b * t * batch.src.size(1)), grad_tol);
}

TEST(PervasiveTorchReference, LogitsAlignmentLossAndGradientsMatch) {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "pervasive_reference.bin", "tests/reference/pervasive_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<int64_t> kernels;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    kernels.insert(OpKey(c.op).Int("kernel"));
  }
  EXPECT_EQ(kernels, (std::set<int64_t>{1, 3, 5}));
}

// ---------------------------------------------------------------------------------------------
// Incremental decoding equals teacher forcing.
// ---------------------------------------------------------------------------------------------

class PervasiveIncremental : public ::testing::TestWithParam<int64_t> {};

TEST_P(PervasiveIncremental, StepsEqualForwardWithPaddingAndSelect) {
  ModelConfig cfg = TinyConfig(GetParam());
  Generator gen(7);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  model->Eval();
  Batch batch = RandomBatch(cfg, {6, 2, 4}, {11, 9, 7}, 11);
  const int64_t t = batch.tgt_in.size(1), s = batch.src.size(1);
  NoGradGuard no_grad;
  Tensor full_attn;
  Tensor full = LogSoftmax(model->Forward(batch, &full_attn), -1);  // [B, T, V]
  const std::vector<int64_t> tgt = batch.tgt_in.ToVector<int64_t>();
  auto column = [&](const std::vector<int64_t>& rows, int64_t pos) {
    std::vector<int64_t> ids;
    for (int64_t r : rows) ids.push_back(tgt[r * t + pos]);
    return Tensor::FromVector(ids, {static_cast<int64_t>(ids.size())});
  };
  auto expected = [&](const Tensor& x, const std::vector<int64_t>& rows, int64_t pos) {
    Tensor r = Tensor::FromVector(rows, {static_cast<int64_t>(rows.size())});
    return IndexSelect(x.Select(1, pos), 0, r);
  };
  std::unique_ptr<DecoderState> state = model->Start(batch.src, batch.src_lengths);
  ASSERT_EQ(state->rows(), 3);
  std::vector<int64_t> rows = {0, 1, 2};
  for (int64_t pos = 0; pos < t; ++pos) {
    if (pos == 2) {  // every hypothesis kept in place
      model->Select(*state, Tensor::FromVector(std::vector<int64_t>{0, 1, 2}, {3}));
    }
    if (pos == 4) {  // beam search: reorder and duplicate hypotheses
      rows = {2, 0, 0, 1};
      model->Select(*state, Tensor::FromVector(std::vector<int64_t>{2, 0, 0, 1}, {4}));
      ASSERT_EQ(state->rows(), 4);
    }
    if (pos == 8) {  // ... and drop some: keep new rows 1 and 3 (old 0 and 1)
      rows = {rows[1], rows[3]};
      model->Select(*state, Tensor::FromVector(std::vector<int64_t>{1, 3}, {2}));
      ASSERT_EQ(state->rows(), 2);
    }
    Tensor attn;
    Tensor lp = model->Step(*state, column(rows, pos), &attn);
    const std::string at = "position " + std::to_string(pos);
    ASSERT_EQ(lp.shape(), Shape({static_cast<int64_t>(rows.size()), cfg.tgt_vocab})) << at;
    ASSERT_EQ(attn.shape(), Shape({static_cast<int64_t>(rows.size()), s})) << at;
    EXPECT_FALSE(lp.requires_grad());
    ExpectClose(lp, expected(full, rows, pos), "log-probs " + at);
    ExpectClose(attn, expected(full_attn, rows, pos), "alignment " + at);
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, PervasiveIncremental, ::testing::Values(1, 3, 5),
                         [](const auto& info) { return "Kernel" + std::to_string(info.param); });

TEST(Pervasive, StepWithoutAttentionMatchesStepWithIt) {
  ModelConfig cfg = TinyConfig();
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
  }
}

// ---------------------------------------------------------------------------------------------
// Properties of the grid.
// ---------------------------------------------------------------------------------------------

// Appending padding columns to the source (a longer batch) or changing the ids there leaves
// every logit and the alignment over the real positions as they were; padding gets no weight.
TEST(Pervasive, SourcePaddingChangesNoRealOutput) {
  for (int64_t kernel : {3, 5}) {
    SCOPED_TRACE("kernel " + std::to_string(kernel));
    ModelConfig cfg = TinyConfig(kernel);
    Generator gen(5);
    std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
    model->Eval();
    // One sentence alone, without padding, then the same sentence in a batch padded to 9.
    Batch alone = RandomBatch(cfg, {4}, {6}, 21);
    Tensor alone_attn;
    const Tensor base = model->Forward(alone, &alone_attn);  // [1, T, V]
    Batch padded = alone;
    std::vector<int64_t> src = alone.src.ToVector<int64_t>();
    for (int64_t j = 0; j < 5; ++j) src.push_back(j % 2 == 0 ? SpecialIds::kPad : 7 + j);
    padded.src = Tensor::FromVector(src, {1, 9});
    Tensor padded_attn;
    const Tensor logits = model->Forward(padded, &padded_attn);
    ExpectClose(logits, base, "logits with padding");
    ExpectClose(padded_attn.Narrow(2, 0, 4), alone_attn, "alignment with padding");
    for (float v : padded_attn.Narrow(2, 4, 5).Contiguous().ToVector<float>())
      EXPECT_EQ(v, 0.0f) << "alignment on padding";
  }
}

// Logits at target position t read target inputs 0..t only: changing the input at p changes
// no logit before p (and does change the one at p).
TEST(Pervasive, NoOutputReadsALaterTargetInput) {
  for (int64_t kernel : {1, 3, 5}) {
    SCOPED_TRACE("kernel " + std::to_string(kernel));
    ModelConfig cfg = TinyConfig(kernel);
    Generator gen(6);
    std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
    model->Eval();
    Batch batch = RandomBatch(cfg, {5, 3}, {7, 7}, 13);
    const int64_t t = 7;
    const Tensor base = model->Forward(batch);
    for (int64_t p = 1; p < t; ++p) {
      Batch other = batch;
      other.tgt_in = batch.tgt_in.Clone();
      int64_t* ids = other.tgt_in.data<int64_t>();
      for (int64_t r = 0; r < 2; ++r) ids[r * t + p] = 4 + (ids[r * t + p] - 4 + 5) % 27;
      const Tensor changed = model->Forward(other);
      EXPECT_EQ(changed.Narrow(1, 0, p).Contiguous().ToVector<float>(),
                base.Narrow(1, 0, p).Contiguous().ToVector<float>())
          << "a logit before position " << p << " moved";
      EXPECT_NE(changed.Narrow(1, p, 1).Contiguous().ToVector<float>(),
                base.Narrow(1, p, 1).Contiguous().ToVector<float>())
          << "the logits at position " << p << " ignore its input";
    }
  }
}

// The implicit alignment: each row is a share of channels (multiples of 1 / C summing to one),
// and AttentionMaps gives it as the one site "attention".
TEST(Pervasive, AlignmentRowsAreSharesOfChannels) {
  ModelConfig cfg = TinyConfig();
  Generator gen(4);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  model->Eval();
  Batch batch = RandomBatch(cfg, {6, 3}, {5, 2}, 9);
  Tensor attn;
  model->Forward(batch, &attn);
  ASSERT_EQ(attn.shape(), Shape({2, 5, 6}));
  const double c = static_cast<double>(2 * cfg.embed_dim + cfg.dense_layers * cfg.growth);
  const std::vector<float> w = attn.ToVector<float>();
  for (size_t row = 0; row < 10; ++row) {
    double sum = 0;
    for (size_t j = 0; j < 6; ++j) {
      const double v = w[row * 6 + j];
      EXPECT_NEAR(v * c, std::round(v * c), 1e-4) << "row " << row << " source " << j;
      sum += v;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << row;
  }
  const std::vector<AttentionMap> maps = model->AttentionMaps(batch);
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].name, "attention");
  ExpectClose(maps[0].weights.Select(1, 0), attn, "AttentionMaps");
}

TEST(Pervasive, DropoutOnlyInTraining) {
  ModelConfig cfg = TinyConfig();
  cfg.dropout = 0.3;
  Generator gen(9);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  Batch batch = RandomBatch(cfg, {4, 3}, {5, 3}, 2);
  Tensor a = model->Forward(batch), b = model->Forward(batch);
  EXPECT_NE(a.ToVector<float>(), b.ToVector<float>()) << "training: fresh dropout masks";
  model->Eval();
  EXPECT_EQ(model->Forward(batch).ToVector<float>(), model->Forward(batch).ToVector<float>());
}

TEST(Pervasive, ParameterNamesAndShapes) {
  ModelConfig cfg = TinyConfig(5);
  Generator gen(1);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& [name, p] : model->NamedParameters()) shapes[name] = p.shape().vec();
  EXPECT_EQ(shapes["src_embed.weight"], (std::vector<int64_t>{29, 12}));
  EXPECT_EQ(shapes["tgt_positions.weight"], (std::vector<int64_t>{64, 12}));
  EXPECT_EQ(shapes["layers.0.bottleneck.weight"], (std::vector<int64_t>{24, 24}));
  // The 5x5 filter's three rows at and above the centre.
  EXPECT_EQ(shapes["layers.2.conv.weight"], (std::vector<int64_t>{6, 24, 3, 5}));
  EXPECT_EQ(shapes["norm.weight"], (std::vector<int64_t>{24 + 3 * 6}));
  EXPECT_EQ(shapes["project.weight"], (std::vector<int64_t>{12, 42}));
  EXPECT_EQ(shapes["output.weight"], (std::vector<int64_t>{31, 12}));
  EXPECT_EQ(shapes.size(), 4u + 8u * 3u + 6u);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.
// ---------------------------------------------------------------------------------------------

// Saved as the trainer saves it and loaded by nmt::LoadModel (the model rebuilt from the
// checkpoint's config under its allocation cap): the same logits, bit for bit, and the same
// decoding.
TEST(Pervasive, CheckpointRoundTrip) {
  const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
  std::vector<std::string> sentences;
  for (int i = 0; i < 30; ++i)
    sentences.push_back(std::string(words[i % 6]) + " " + words[(i * 5 + 1) % 6] + " " +
                        words[(i * 7 + 2) % 6]);
  nmt::VocabularyOptions vo;
  vo.size = 40;
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(sentences, vo);
  ModelConfig cfg = TinyConfig(3, vocab.size(), vocab.size());
  Generator gen(12);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  model->Eval();
  attend::testing::TempDir dir;
  const std::string path = dir / "pervasive.ckpt";
  attend::testing::SaveTranslationCheckpoint(path, *model, vocab, cfg.ToJson());
  const nmt::LoadedModel loaded = nmt::LoadModel(path);
  ASSERT_EQ(loaded.model->config().arch, Arch::kPervasive);
  EXPECT_EQ(loaded.model->config().ToJson(), cfg.ToJson());
  loaded.model->Eval();
  Batch batch = RandomBatch(cfg, {5, 2}, {4, 6}, 3);
  EXPECT_EQ(loaded.model->Forward(batch).ToVector<float>(),
            model->Forward(batch).ToVector<float>());
  auto a = model->Start(batch.src, batch.src_lengths);
  auto b = loaded.model->Start(batch.src, batch.src_lengths);
  Tensor bos = Tensor::Full({2}, SpecialIds::kBos, DType::kI64);
  EXPECT_EQ(model->Step(*a, bos).ToVector<float>(), loaded.model->Step(*b, bos).ToVector<float>());
}

// nmt::LoadModel caps a checkpoint's model build by kModelBuildFactor times its tensor bytes.
TEST(Pervasive, BuildRequestsAreBoundedByTheTensors) {
  ModelConfig cfg = TinyConfig();
  cfg.src_vocab = cfg.tgt_vocab = 300;
  cfg.max_positions = 1024;
  Generator gen(1);
  std::shared_ptr<Seq2Seq> model;
  uint64_t requested = 0;
  {
    AllocationLimitGuard count(~uint64_t{0}, "count");
    model = MakeModel(cfg, gen);
    requested = count.requested();
  }
  uint64_t bytes = 0;
  for (const auto& [name, t] : model->StateDict())
    bytes += static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype());
  EXPECT_LE(requested, kModelBuildFactor * bytes);
  EXPECT_GT(requested, bytes);
}

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

TEST(PervasiveErrors, ConfigIsChecked) {
  ModelConfig cfg = TinyConfig();
  cfg.kernel = 4;
  Generator gen(1);
  EXPECT_THAT(ThrownMessage([&] { MakeModel(cfg, gen); }),
              AllOf(HasSubstr("pervasive"), HasSubstr("odd kernel")));
  cfg = TinyConfig();
  cfg.growth = 0;
  EXPECT_THAT(ThrownMessage([&] { MakeModel(cfg, gen); }), HasSubstr("pervasive"));
}

TEST(PervasiveErrors, LengthsPastMaxPositions) {
  ModelConfig cfg = TinyConfig();
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
  NoGradGuard no_grad;
  Batch ok = RandomBatch(cfg, {3, 2}, {3, 3}, 1);
  auto state = model->Start(ok.src, ok.src_lengths);
  Tensor bos = Tensor::Full({2}, SpecialIds::kBos, DType::kI64);
  for (int i = 0; i < 8; ++i) model->Step(*state, bos);
  EXPECT_THAT(ThrownMessage([&] { model->Step(*state, bos); }),
              AllOf(HasSubstr("position 8"), HasSubstr("max_positions 8")));
}

TEST(PervasiveErrors, TokensRowsAndLengths) {
  ModelConfig cfg = TinyConfig();
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
  Batch bad_len = batch;
  bad_len.src_lengths = Tensor::FromVector(std::vector<int64_t>{4, 5}, {2});
  EXPECT_THAT(ThrownMessage([&] { model->Forward(bad_len); }), HasSubstr("src_lengths[1] = 5"));
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
}

}  // namespace
}  // namespace attend::models
