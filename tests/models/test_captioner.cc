// The image captioners (show-attend-tell with soft, hard and no attention; top-down over region
// proposals): incremental decoding equals teacher forcing, the attention's shape and sums, the
// doubly stochastic penalty against a hand computation, REINFORCE's state carried in a buffer,
// the proposals, and the grounding measure.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attend/autograd.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"

namespace attend {
namespace {

using models::ModelConfig;

ModelConfig Tiny(models::Arch arch, models::ImageAttend attend = models::ImageAttend::kSoft) {
  ModelConfig c;
  c.arch = arch;
  c.image_attention = attend;
  c.tgt_vocab = 9;
  c.embed_dim = 6;
  c.hidden_dim = 8;
  c.attention_dim = 5;
  c.image_size = 16;  // a 2 x 2 grid
  c.cnn_channels = 2;
  c.regions = 4;
  c.dropout = 0.0;
  return c;
}

// Two 16 x 16 images: a bright square on black, and noise.
Tensor Images() {
  std::vector<float> v(2 * 16 * 16, 0.0f);
  for (int y = 2; y < 9; ++y)
    for (int x = 3; x < 10; ++x) v[y * 16 + x] = 0.9f;
  uint64_t s = 7;
  for (int i = 0; i < 256; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[256 + i] = static_cast<float>((s >> 40) % 1000) / 1000.0f;
  }
  return Tensor::FromVector(v, {2, 16, 16});
}

models::Batch MakeBatch() {
  models::Batch b;
  b.src = Images();
  b.src_lengths = Tensor::FromVector(std::vector<int64_t>{16, 16}, {2});
  b.tgt_in = Tensor::FromVector(std::vector<int64_t>{2, 4, 5, 6, 2, 7, 8, 0}, {2, 4});
  b.tgt_out = Tensor::FromVector(std::vector<int64_t>{4, 5, 6, 3, 7, 8, 3, 0}, {2, 4});
  b.tgt_lengths = Tensor::FromVector(std::vector<int64_t>{4, 3}, {2});
  return b;
}

float MaxAbsDiff(const Tensor& a, const Tensor& b) {
  auto x = a.Contiguous().ToVector<float>(), y = b.Contiguous().ToVector<float>();
  EXPECT_EQ(x.size(), y.size());
  float m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

struct Case {
  models::Arch arch;
  models::ImageAttend attend;
};

class CaptionerTest : public ::testing::TestWithParam<Case> {};

TEST_P(CaptionerTest, StepsEqualTeacherForcing) {
  Generator gen(3);
  auto model = models::MakeModel(Tiny(GetParam().arch, GetParam().attend), gen);
  model->Eval();
  NoGradGuard no_grad;
  const models::Batch batch = MakeBatch();
  Tensor weights;
  const Tensor logits = model->Forward(batch, &weights);  // [2, 4, 9]
  ASSERT_EQ(logits.shape(), (Shape{2, 4, 9}));
  const int64_t positions = model->AttendedLength(16);
  EXPECT_EQ(positions, GetParam().arch == models::Arch::kTopDown ? 4 : 4);
  auto state = model->Start(batch.src, batch.src_lengths);
  for (int64_t t = 0; t < 4; ++t) {
    Tensor w;
    const Tensor logp = model->Step(*state, batch.tgt_in.Select(1, t), &w);
    EXPECT_LT(MaxAbsDiff(logp, LogSoftmax(logits.Select(1, t), 1)), 1e-5f) << "step " << t;
    if (GetParam().attend == models::ImageAttend::kNone &&
        GetParam().arch == models::Arch::kShowAttendTell) {
      EXPECT_FALSE(w.defined());
      continue;
    }
    ASSERT_EQ(w.shape(), (Shape{2, positions}));
    EXPECT_LT(MaxAbsDiff(w, weights.Select(1, t)), 1e-6f);
    for (float sum : Sum(w, {1}).ToVector<float>()) EXPECT_NEAR(sum, 1.0f, 1e-5f);
  }
  // Select reorders hypotheses: row 1 alone gives row 1's next step.
  auto s2 = model->Start(batch.src, batch.src_lengths);
  model->Select(*s2, Tensor::FromVector(std::vector<int64_t>{1, 1}, {2}));
  const Tensor a = model->Step(*s2, Tensor::FromVector(std::vector<int64_t>{2, 2}, {2}));
  EXPECT_LT(MaxAbsDiff(a.Select(0, 0), LogSoftmax(logits.Select(1, 0), 1).Select(0, 1)), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(
    Archs, CaptionerTest,
    ::testing::Values(Case{models::Arch::kShowAttendTell, models::ImageAttend::kSoft},
                      Case{models::Arch::kShowAttendTell, models::ImageAttend::kHard},
                      Case{models::Arch::kShowAttendTell, models::ImageAttend::kNone},
                      Case{models::Arch::kTopDown, models::ImageAttend::kSoft}));

TEST(Captioner, DoublyStochasticPenaltyMatchesAHandComputation) {
  Generator gen(5);
  ModelConfig c = Tiny(models::Arch::kShowAttendTell);
  c.attention_penalty = 0.7;
  auto model = models::MakeModel(c, gen);
  model->Train();
  const models::Batch batch = MakeBatch();
  Tensor weights;
  const Tensor logits = model->Forward(batch, &weights);
  const Tensor penalty = model->AuxiliaryLoss(batch, logits);
  ASSERT_TRUE(penalty.defined());
  // 0.7 * sum_b sum_i (1 - sum_{t real} alpha_bti)^2 / 7 real target tokens (4 + 3).
  const auto w = weights.Contiguous().ToVector<float>();  // [2, 4, 4]
  double expect = 0;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 4; ++i) {
      double total = 0;
      for (int t = 0; t < (b == 0 ? 4 : 3); ++t) total += w[(b * 4 + t) * 4 + i];
      expect += (1 - total) * (1 - total);
    }
  EXPECT_NEAR(penalty.item(), 0.7 * expect / 7, 1e-5);
  // The gradient reaches the CNN through the weights.
  penalty.Backward();
  double g = 0;
  for (const Tensor& p : model->Parameters())
    if (p.grad().defined()) g += Sum(Mul(p.grad(), p.grad())).item();
  EXPECT_GT(g, 0.0);
}

TEST(Captioner, HardAttentionSamplesOneCellAndKeepsItsStreamInABuffer) {
  Generator gen(5);
  auto model =
      models::MakeModel(Tiny(models::Arch::kShowAttendTell, models::ImageAttend::kHard), gen);
  model->Train();
  const models::Batch batch = MakeBatch();
  auto state_of = [&] {
    for (const auto& [name, t] : model->NamedBuffers())
      if (name == "hard_state") return t.Contiguous().ToVector<int64_t>();
    ADD_FAILURE() << "no hard_state buffer";
    return std::vector<int64_t>();
  };
  const auto before = state_of();
  Tensor weights;
  const Tensor logits = model->Forward(batch, &weights);
  for (float v : weights.Contiguous().ToVector<float>()) EXPECT_TRUE(v == 0.0f || v == 1.0f);
  const Tensor surrogate = model->AuxiliaryLoss(batch, logits);
  ASSERT_TRUE(surrogate.defined());
  EXPECT_TRUE(std::isfinite(surrogate.item()));
  const auto after = state_of();
  EXPECT_EQ(after[1], before[1] + 2 * 4);  // one draw per image and word
  EXPECT_EQ(after[3], 1);                  // the baseline is set
  // The surrogate's gradient reaches the score (REINFORCE), which the one-hot weights do not.
  surrogate.Backward();
  bool score_grad = false;
  for (const auto& [name, p] : model->NamedParameters())
    if (name.rfind("score.", 0) == 0 && p.grad().defined() &&
        Sum(Mul(p.grad(), p.grad())).item() > 0)
      score_grad = true;
  EXPECT_TRUE(score_grad);
}

TEST(Captioner, TopDownProposalsFindTheBrightSquareFirst) {
  Generator gen(1);
  auto model = models::MakeModel(Tiny(models::Arch::kTopDown), gen);
  const auto boxes = model->AttendedBoxes(Images());
  ASSERT_EQ(boxes.size(), 2u);
  ASSERT_EQ(boxes[0].size(), 4u);
  // The square covers x 3..9, y 2..8; the rest are the pyramid's tiles (whole image first).
  EXPECT_EQ(boxes[0][0].x0, 3);
  EXPECT_EQ(boxes[0][0].y0, 2);
  EXPECT_EQ(boxes[0][0].x1, 10);
  EXPECT_EQ(boxes[0][0].y1, 9);
  EXPECT_EQ(boxes[0][1].x0, 0);
  EXPECT_EQ(boxes[0][1].x1, 16);
  EXPECT_EQ(boxes[0][2].x1, 8);  // the first 2 x 2 tile
}

TEST(Captioner, AttentionMassInBox) {
  using Box = models::Seq2Seq::Box;
  const std::vector<Box> cells = {{0, 0, 8, 8}, {8, 0, 16, 8}, {0, 8, 8, 16}, {8, 8, 16, 16}};
  // All weight on cell 0; a box covering its right half holds half the mass.
  EXPECT_NEAR(nmt::AttentionMassInBox({1, 0, 0, 0}, cells, {4, 0, 8, 8}), 0.5, 1e-9);
  EXPECT_NEAR(nmt::AttentionMassInBox({0.25, 0.25, 0.25, 0.25}, cells, {0, 0, 16, 16}), 1.0, 1e-9);
  EXPECT_NEAR(nmt::AttentionMassInBox({0, 0, 0, 1}, cells, {0, 0, 8, 8}), 0.0, 1e-9);
  EXPECT_THROW(nmt::AttentionMassInBox({1, 0}, cells, {0, 0, 1, 1}), Error);
}

TEST(Captioner, BadSourcesAndConfigsAreClearErrors) {
  Generator gen(1);
  auto model = models::MakeModel(Tiny(models::Arch::kShowAttendTell), gen);
  models::Batch b = MakeBatch();
  b.src = Tensor::Zeros({2, 15, 16});
  EXPECT_THROW(model->Forward(b), Error);
  ModelConfig c = Tiny(models::Arch::kShowAttendTell);
  c.image_size = 20;
  EXPECT_THROW(c.Validate(), Error);
  c = Tiny(models::Arch::kTopDown);
  c.image_channels = 2;
  EXPECT_THROW(c.Validate(), Error);
  c = Tiny(models::Arch::kShowAttendTell);
  EXPECT_NO_THROW(ModelConfig::FromJson(c.ToJson()));
  EXPECT_EQ(ModelConfig::FromJson(c.ToJson()).ToJson(), c.ToJson());
}

}  // namespace
}  // namespace attend
