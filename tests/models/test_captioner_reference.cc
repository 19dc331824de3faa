// The image captioners end to end against PyTorch (tests/reference/captioner_reference.py): the
// same weights give the same proposals, logits, attention weights, label-smoothed loss with the
// doubly stochastic penalty, and gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

const reference::LoadedCases& LoadCaptionerCases() {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "captioner_reference.bin", "tests/reference/captioner_reference.py");
  return loaded;
}

ModelConfig ConfigOf(const OpKey& k) {
  ModelConfig cfg;
  cfg.arch = ParseEnum<Arch>(k.Str("arch"), "arch");
  cfg.image_attention = ParseEnum<ImageAttend>(k.Str("image_attention"), "image_attention");
  cfg.image_size = k.Int("image_size");
  cfg.image_channels = k.Int("image_channels");
  cfg.cnn_channels = k.Int("cnn_channels");
  cfg.hidden_dim = k.Int("hidden");
  cfg.embed_dim = k.Int("embed");
  cfg.attention_dim = k.Int("attention_dim");
  cfg.src_vocab = 0;
  cfg.tgt_vocab = k.Int("tgt_vocab");
  cfg.regions = k.Int("regions");
  cfg.attention_penalty = k.Double("attention_penalty");
  cfg.dropout = 0.0;
  return cfg;
}

// The proposals are computed from the pixels alone: they must be torch's exactly.
void ExpectBoxes(const RefCase& c, Seq2Seq& model, const Tensor& src) {
  const std::vector<double> want = Ref(c, "boxes").AsDoubles();
  const std::vector<int64_t>& dims = Ref(c, "boxes").dims;
  ASSERT_EQ(dims.size(), 3u);
  const auto boxes = model.AttendedBoxes(src);
  ASSERT_EQ(static_cast<int64_t>(boxes.size()), dims[0]);
  for (int64_t i = 0; i < dims[0]; ++i) {
    ASSERT_EQ(static_cast<int64_t>(boxes[i].size()), dims[1]) << "image " << i;
    for (int64_t r = 0; r < dims[1]; ++r) {
      const Seq2Seq::Box& b = boxes[i][r];
      const double* w = &want[static_cast<size_t>((i * dims[1] + r) * 4)];
      EXPECT_TRUE(b.x0 == w[0] && b.y0 == w[1] && b.x1 == w[2] && b.y1 == w[3])
          << "case " << c.name << " image " << i << " region " << r << ": attend (" << b.x0 << ", "
          << b.y0 << ", " << b.x1 << ", " << b.y1 << "), torch (" << w[0] << ", " << w[1] << ", "
          << w[2] << ", " << w[3] << ")";
    }
  }
}

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  const ModelConfig cfg = ConfigOf(k);
  Generator gen(3);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  LoadTorchWeights(c, *model);
  if (::testing::Test::HasFatalFailure()) return;
  const bool train = k.Str("mode") == "train";
  // Training mode with dropout 0 is deterministic except for hard attention's sampling, which
  // is compared in eval mode (argmax, as decoding uses it).
  model->Train(train);

  Batch batch;
  batch.src = ToTensor(Ref(c, "src"));
  batch.tgt_in = ToTensor(Ref(c, "tgt_in"));
  batch.tgt_out = ToTensor(Ref(c, "tgt_out"));
  const int64_t b = batch.tgt_in.size(0), t = batch.tgt_in.size(1);
  batch.src_lengths = Tensor::Full({b}, static_cast<double>(batch.src.size(1)), DType::kI64);
  const bool top_down = cfg.arch == Arch::kTopDown;
  const bool attention = top_down || cfg.image_attention != ImageAttend::kNone;
  const int64_t cells = top_down ? cfg.regions : cfg.ImageGrid() * cfg.ImageGrid();
  ASSERT_EQ(model->AttendedLength(batch.src.size(1)), cells);
  if (top_down) ExpectBoxes(c, *model, batch.src);

  Tensor weights;
  Tensor logits = model->Forward(batch, &weights);  // [B, T, V]
  ASSERT_EQ(logits.shape(), Shape({b, t, cfg.tgt_vocab}));
  EXPECT_EQ(weights.defined(), attention);

  // Tolerance scale n (reference_compare.h), as test_seq2seq_reference.cc's: the longest sum
  // one step computes, the last convolution's 9 * 4k inputs or top-down's attention LSTM's
  // H + D + E inputs and H recurrent ones (the LSTM of show-attend-tell reads fewer; the mean, the
  // pooling and the context sum over at most 9 cells here, the score over A). Rounding does not
  // grow with the number of steps (the gates and tanh contract it); the loss and every gradient
  // also sum over the B*T positions. Measured: every element of every case sits within 1e-5 of
  // this atol budget (n scaled by 1e-4 still passes), so the rtol term decides.
  const int64_t d = 8 * cfg.cnn_channels;
  const int64_t depth_terms =
      std::max(9 * 4 * cfg.cnn_channels, cfg.embed_dim + d + 2 * cfg.hidden_dim);
  ASSERT_LE(std::max(cells, cfg.attention_dim), depth_terms);
  const double depth = static_cast<double>(depth_terms);
  ExpectMatches(c, "logits", logits, Ref(c, "logits"), depth);
  if (attention && weights.defined()) {
    ASSERT_EQ(weights.shape(), Shape({b, t, cells}));
    ExpectMatches(c, "attention", weights, Ref(c, "attention"), depth);
  }
  if (!train) {
    EXPECT_FALSE(model->AuxiliaryLoss(batch, logits).defined())
        << "no auxiliary loss outside training";
    return;
  }

  Tensor loss = CrossEntropy(logits.View({b * t, -1}), batch.tgt_out.View({b * t}),
                             SpecialIds::kPad, k.Double("label_smoothing"));
  Tensor extra = model->AuxiliaryLoss(batch, logits);
  const bool penalty = !top_down && cfg.image_attention == ImageAttend::kSoft;
  EXPECT_EQ(extra.defined(), penalty) << "the doubly stochastic penalty is soft attention's only";
  if (extra.defined()) loss = Add(loss, extra);
  loss.Backward();
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), depth);
  const double grad_n = depth * static_cast<double>(b * t);
  for (auto& [name, p] : model->NamedParameters()) {
    // A parameter the loss does not depend on (the score of image_attention none) has no
    // gradient on either side.
    const reference::RefTensor* want = c.Find("grad:" + name);
    ASSERT_EQ(p.grad().defined(), want != nullptr)
        << "case " << c.name << ": " << name << " has a gradient on one side only";
    if (want) ExpectMatches(c, "grad " + name, p.grad(), *want, grad_n);
  }
}

TEST(CaptionerReference, LogitsAttentionLossAndGradientsMatch) {
  const reference::LoadedCases& loaded = LoadCaptionerCases();
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<std::string> variants;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    OpKey k(c.op);
    variants.insert(k.Str("arch") == "top-down" ? "top-down"
                                                : k.Str("image_attention") + "/" + k.Str("mode"));
  }
  // Every variant was compared: soft, none and top-down trained (loss and gradients), hard
  // attention decoded (argmax).
  EXPECT_EQ(variants, (std::set<std::string>{"soft/train", "none/train", "hard/eval", "top-down"}));
}

}  // namespace
}  // namespace attend::models
