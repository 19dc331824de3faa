// The RNN encoder-decoders end to end against PyTorch (tests/reference/seq2seq_reference.py): the
// same weights give the same logits, attention weights, label-smoothed loss and gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "attend/attend.h"
#include "attend/models.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend::models {
namespace {

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

// Copies torch's weights (p:<name>) into the tensors of the model's StateDict. Both sides must
// name exactly the same parameters with the same shapes; the model's other entries are buffers
// (random-stream states), which torch does not have.
void LoadWeights(const RefCase& c, Seq2Seq& model) {
  std::set<std::string> in_file, params, buffers;
  for (const auto& t : c.tensors)
    if (t.name.rfind("p:", 0) == 0) in_file.insert(t.name.substr(2));
  for (const auto& [name, p] : model.NamedParameters()) params.insert(name);
  for (const auto& [name, b] : model.NamedBuffers()) buffers.insert(name);
  for (auto& [name, t] : model.StateDict()) {
    if (buffers.count(name)) continue;
    ASSERT_TRUE(params.count(name)) << name << " is neither a parameter nor a buffer";
    const reference::RefTensor* r = c.Find("p:" + name);
    if (r == nullptr) {
      ADD_FAILURE() << "case " << c.name << ": torch has no parameter " << name;
      continue;
    }
    ASSERT_EQ(t.shape().vec(), r->dims) << "case " << c.name << " parameter " << name;
    t.CopyFrom(ToTensor(*r));
  }
  EXPECT_EQ(params, in_file) << "case " << c.name << ": parameter names differ";
}

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  const ModelConfig cfg = ConfigOf(k);
  Generator gen(3);
  std::shared_ptr<Seq2Seq> model = MakeModel(cfg, gen);
  LoadWeights(c, *model);
  if (::testing::Test::HasFatalFailure()) return;
  model->Train();  // as torch's side: dropout 0 and teacher forcing 1 make it deterministic

  Batch batch;
  batch.src = ToTensor(Ref(c, "src"));
  batch.src_lengths = ToTensor(Ref(c, "src_lengths"));
  batch.tgt_in = ToTensor(Ref(c, "tgt_in"));
  batch.tgt_out = ToTensor(Ref(c, "tgt_out"));
  const int64_t b = batch.tgt_in.size(0), t = batch.tgt_in.size(1), s = batch.src.size(1);
  const bool attention = cfg.arch == models::Arch::kRnnAttention;
  Tensor weights;
  Tensor logits = model->Forward(batch, attention ? &weights : nullptr);  // [B, T, V]
  ASSERT_EQ(logits.shape(), Shape({b, t, cfg.tgt_vocab}));
  Tensor loss = CrossEntropy(logits.View({b * t, -1}), batch.tgt_out.View({b * t}),
                             SpecialIds::kPad, k.Double("label_smoothing"));
  loss.Backward();

  // Tolerance scale n (reference_compare.h): the longest sum one step computes (the decoder's
  // input and recurrent features with input feeding, E + 2H; the scores and contexts sum over
  // at most that many terms at these sizes). Rounding does not grow with the number of steps:
  // the gates and tanh contract it (measured: the worst element sits 30x inside this bound,
  // and a 0.05% change of local-p's sigma fails). The loss and every gradient also sum over
  // the B*T positions.
  ASSERT_LE(std::max(s, cfg.attention_dim), cfg.embed_dim + 2 * cfg.hidden_dim);
  const double depth = static_cast<double>(cfg.embed_dim + 2 * cfg.hidden_dim);
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
  std::set<std::string> archs, cells, scores, windows, feeding, speech_scores;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    OpKey k(c.op);
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
  EXPECT_EQ(cells, (std::set<std::string>{"gru", "lstm"}));
  EXPECT_EQ(feeding.size(), 2u);
  EXPECT_EQ(scores, (std::set<std::string>{"additive", "dot", "general", "concat", "location",
                                           "location-aware"}));
  // Speech: the listener without attention, with the content and the location-aware score.
  EXPECT_EQ(speech_scores, (std::set<std::string>{"rnn/additive", "rnn-attention/additive",
                                                  "rnn-attention/location-aware"}));
  EXPECT_EQ(windows, (std::set<std::string>{"global", "local-m", "local-p"}));
}

}  // namespace
}  // namespace attend::models
