// nmt::LoadModel, what `attend translate` and `attend serve` open: a checkpoint's model config is
// as untrusted as its tensors, so the model it describes is bounded by the file and checked
// against it before it is built.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/checkpoint.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/nn.h"
#include "support/errors.h"
#include "support/checkpoints.h"
#include "support/files.h"

namespace attend {
namespace {

using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A two-layer model of `arch` over `vocab` subwords, every width `dim` (feed-forward 2 dim, heads
// of 8).
models::ModelConfig SmallConfig(const char* arch, int64_t vocab, int64_t dim) {
  models::ModelConfig c;
  c.arch = models::ParseEnum<models::Arch>(arch, "arch");
  c.src_vocab = c.tgt_vocab = vocab;
  c.embed_dim = c.hidden_dim = c.attention_dim = c.d_model = dim;
  c.ff_dim = 2 * dim;
  c.heads = dim / 8;
  c.layers = c.encoder_layers = c.decoder_layers = 2;
  return c;
}

// LoadModel caps the building of a checkpoint's model by kModelBuildFactor times the file's
// tensor bytes: every architecture must stay under it with a file of model tensors alone.
TEST(LoadModel, ModelBuildRequestsAreBoundedByTheTensors) {
  std::vector<models::ModelConfig> configs;
  for (const char* arch : {"rnn", "rnn-attention", "transformer"})
    configs.push_back(SmallConfig(arch, 300, 32));
  models::ModelConfig lstm = configs[1];
  lstm.cell = models::Cell::kLstm;
  lstm.score = models::Score::kLocation;
  lstm.window = models::Window::kLocalP;
  configs.push_back(lstm);
  models::ModelConfig post = configs[2];
  post.pre_norm = post.share_embeddings = false;
  post.max_positions = 4096;
  configs.push_back(post);
  for (const models::ModelConfig& c : configs) {
    Generator gen(1);
    std::shared_ptr<models::Seq2Seq> model;
    uint64_t requested = 0;
    {
      AllocationLimitGuard count(~uint64_t{0}, "count");
      model = models::MakeModel(c, gen);
      requested = count.requested();
    }
    uint64_t bytes = 0;
    for (const auto& [name, t] : model->StateDict())
      bytes += static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype());
    EXPECT_LE(requested, models::kModelBuildFactor * bytes) << c.ToJson();
    EXPECT_GT(requested, bytes) << c.ToJson();  // the guard saw the model being built
  }
  // Guards nest; the innermost counts, and its limit is checked before allocating.
  AllocationLimitGuard outer(1 << 20, "outer");
  {
    AllocationLimitGuard inner(100, "inner limit");
    EXPECT_THAT(ThrownMessage([] { Tensor::Empty({1000}); }),
                AllOf(HasSubstr("inner limit"), HasSubstr("4000 bytes")));
    EXPECT_EQ(inner.requested(), 0u);
  }
  Tensor::Empty({1000});
  EXPECT_EQ(outer.requested(), 4000u);
}

// LoadModel builds the checkpoint's model without drawing its initial weights (SkipRandomInit):
// for every token-source architecture the loaded model holds the saved tensors bit for bit and
// translates exactly as the model that was saved (so nothing outside the checkpoint depended
// on the skipped draws).
TEST(LoadModel, BuildsWithoutDrawsAndTranslatesAsTheSavedModel) {
  TempDir dir;
  std::vector<std::string> sentences;
  for (int i = 0; i < 60; ++i)
    sentences.push_back("a b " + std::to_string(i % 9) + " c d " + std::to_string(i % 13));
  nmt::VocabularyOptions vo;
  vo.size = 40;
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(sentences, vo);
  std::vector<models::ModelConfig> configs;
  for (const char* arch : {"rnn", "rnn-attention", "transformer", "pervasive"})
    configs.push_back(SmallConfig(arch, vocab.size(), 16));
  models::ModelConfig lstm = configs[1];
  lstm.cell = models::Cell::kLstm;
  lstm.score = models::Score::kLocationAware;
  configs.push_back(lstm);
  models::ModelConfig qkv = configs[1];
  qkv.score = models::Score::kQkv;
  qkv.window = models::Window::kLocalP;
  configs.push_back(qkv);
  models::ModelConfig post = configs[2];
  post.pre_norm = post.share_embeddings = false;
  configs.push_back(post);
  std::vector<std::vector<int64_t>> sources;
  for (int i = 0; i < 5; ++i) sources.push_back(vocab.Encode(sentences[7 * i]));
  nmt::SearchOptions o;
  o.beam = 3;
  o.max_len_extra = 4;
  for (size_t k = 0; k < configs.size(); ++k) {
    const models::ModelConfig& c = configs[k];
    Generator gen(100 + k);
    const std::shared_ptr<models::Seq2Seq> saved = models::MakeModel(c, gen);
    const std::string path = dir / ("m" + std::to_string(k) + ".ckpt");
    testing::SaveTranslationCheckpoint(path, *saved, vocab, c.ToJson());
    const nmt::LoadedModel loaded = nmt::LoadModel(path);
    const nn::NamedTensors want = saved->StateDict(), got = loaded.model->StateDict();
    ASSERT_EQ(got.size(), want.size()) << c.ToJson();
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].first, want[i].first);
      EXPECT_EQ(got[i].second.dtype(), want[i].second.dtype()) << want[i].first;
      EXPECT_EQ(got[i].second.To(DType::kF64).ToVector<double>(),
                want[i].second.To(DType::kF64).ToVector<double>())
          << want[i].first << " " << c.ToJson();
    }
    saved->Eval();
    const auto a = nmt::Translate(*saved, sources, o);
    const auto b = nmt::Translate(*loaded.model, sources, o);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(b[i][0].tokens, a[i][0].tokens) << c.ToJson();
      EXPECT_EQ(b[i][0].score, a[i][0].score) << c.ToJson();
    }
  }
}

// Issue 11: the config of a checkpoint is as untrusted as its tensors. A small file claiming
// embed_dim=120000 made `attend translate` allocate the claimed model (4 GiB for a larger
// vocabulary) before comparing it with the file; a config nested 10^6 deep crashed in dump()
// (2 * 10^5 here: already past the stack).
TEST(LoadModel, ModelConfigIsCheckedAgainstTheFile) {
  TempDir dir;
  std::vector<std::string> sentences;
  for (int i = 0; i < 50; ++i)
    sentences.push_back("the cat " + std::to_string(i % 7) + " sat on the mat number " +
                        std::to_string(i % 11));
  nmt::VocabularyOptions vo;
  vo.size = 40;
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(sentences, vo);
  models::ModelConfig cfg;
  cfg.arch = models::Arch::kRnnAttention;
  cfg.src_vocab = cfg.tgt_vocab = vocab.size();
  cfg.embed_dim = cfg.hidden_dim = cfg.attention_dim = 8;
  Generator gen(3);
  const std::shared_ptr<models::Seq2Seq> model = models::MakeModel(cfg, gen);
  auto write = [&](const std::string& name, const std::string& model_json) {
    const std::string path = dir / name;
    testing::SaveTranslationCheckpoint(path, *model, vocab, model_json);
    return path;
  };

  const nmt::LoadedModel good = nmt::LoadModel(write("good.ckpt", cfg.ToJson()));
  EXPECT_EQ(good.model->config().ToJson(), cfg.ToJson());
  EXPECT_EQ(good.vocab.size(), vocab.size());

  // A larger model than the file's tensors: refused before most of it is allocated.
  models::ModelConfig claimed = cfg;
  claimed.embed_dim = 120000;
  const std::string big = write("big.ckpt", claimed.ToJson());
  const uint64_t base = GetAllocatorStats().bytes_in_use;
  ResetPeakBytes();
  EXPECT_THAT(ThrownMessage([&] { nmt::LoadModel(big); }),
              AllOf(HasSubstr(big), HasSubstr("larger model"), HasSubstr("120000")));
  // The claimed model needs > 55 MB here (two 16 MB embeddings, GRUs over 120000 inputs); the
  // cap for this small file is ~16 MiB, and the allocation that would pass it is not made.
  EXPECT_LT(GetAllocatorStats().peak_bytes_in_use - base, uint64_t{24} << 20);
  // Sizes past sane limits, and a config that matches the sizes but not the names.
  models::ModelConfig huge = cfg;
  huge.hidden_dim = int64_t{1} << 40;
  const std::string huge_path = write("huge.ckpt", huge.ToJson());
  EXPECT_THAT(ThrownMessage([&] { nmt::LoadModel(huge_path); }),
              AllOf(HasSubstr(huge_path), HasSubstr("hidden_dim 1099511627776 exceeds")));
  models::ModelConfig other = cfg;
  other.score = models::Score::kDot;
  const std::string other_path = write("other.ckpt", other.ToJson());
  EXPECT_THAT(ThrownMessage([&] { nmt::LoadModel(other_path); }),
              AllOf(HasSubstr(other_path), HasSubstr("score")));

  // Nesting and long values: short messages naming the file, no crash.
  const int depth = 200000;
  const std::string deep = write("deep.ckpt", std::string(depth, '[') + std::string(depth, ']'));
  std::string msg = ThrownMessage([&] { nmt::LoadModel(deep); });
  EXPECT_THAT(msg, AllOf(HasSubstr(deep), HasSubstr("nested deeper than 64")));
  EXPECT_LT(msg.size(), 400u);
  const std::string long_arch =
      write("long.ckpt", R"({"arch":[")" + std::string(1 << 16, 'x') + R"("]})");
  msg = ThrownMessage([&] { nmt::LoadModel(long_arch); });
  EXPECT_THAT(msg, AllOf(HasSubstr(long_arch), HasSubstr("key 'arch' has the wrong type")));
  EXPECT_LT(msg.size(), 400u);
}

}  // namespace
}  // namespace attend
