// Decoding at deployment speed, on both translation models: the decoder's precisions (f32, bf16,
// int8) against f32, the vocabulary shortlist (Seq2Seq::RestrictOutput) against the full output
// layer, PrepareDecoding against packing per Start, and quantized checkpoints
// (io::QuantizeCheckpoint) against quantizing at load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/optim.h"

namespace attend {
namespace {

using models::ModelConfig;
using models::Seq2Seq;
using nn::Precision;

constexpr int64_t kVocab = 53;

ModelConfig Config(models::Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.src_vocab = kVocab;
  c.tgt_vocab = kVocab;
  if (arch == models::Arch::kTransformer) {
    c.d_model = 32;
    c.heads = 4;
    c.ff_dim = 48;
    c.layers = 2;
    c.max_positions = 64;
  } else {
    c.embed_dim = 16;
    c.hidden_dim = 24;
    c.attention_dim = 24;
  }
  c.dropout = 0.0;
  return c;
}

std::shared_ptr<Seq2Seq> Model(models::Arch arch, uint64_t seed, int64_t width = 0) {
  Generator gen(seed);
  ModelConfig c = Config(arch);
  if (width > 0) c.d_model = c.embed_dim = c.hidden_dim = c.attention_dim = width;
  auto m = models::MakeModel(c, gen);
  m->Eval();
  return m;
}

// Sources of random lengths 1..9 over the non-special ids.
std::vector<std::vector<int64_t>> Sources(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> id(4, kVocab - 1), len(1, 9);
  std::vector<std::vector<int64_t>> s(n);
  for (auto& v : s) {
    v.resize(static_cast<size_t>(len(rng)));
    for (auto& x : v) x = id(rng);
  }
  return s;
}

// One decoding step's log-probabilities for `sources`, after `steps` earlier steps of fixed
// tokens, with the model's current precision and an optional shortlist.
Tensor StepLogProbs(Seq2Seq& model, const std::vector<std::vector<int64_t>>& sources,
                    const std::vector<int64_t>* kept = nullptr, int steps = 2) {
  NoGradGuard no_grad;
  std::vector<nmt::Example> ex(sources.size());
  std::vector<int64_t> order;
  for (size_t i = 0; i < sources.size(); ++i) {
    ex[i].src = sources[i];
    ex[i].tgt = {5};
    order.push_back(static_cast<int64_t>(i));
  }
  const models::Batch b = nmt::MakeBatch(ex, order);
  auto state = model.StartBatch(b);
  if (kept) model.RestrictOutput(*state, *kept);
  const int64_t n = static_cast<int64_t>(sources.size());
  Tensor lp = model.Step(*state, Tensor::Full({n}, models::SpecialIds::kBos, DType::kI64));
  for (int s = 0; s < steps; ++s) lp = model.Step(*state, Tensor::Full({n}, 7 + s, DType::kI64));
  return lp;
}

float MaxAbsDiff(const Tensor& a, const Tensor& b) {
  const auto x = a.ToVector<float>(), y = b.ToVector<float>();
  float d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

class DecodePrecision : public ::testing::TestWithParam<models::Arch> {};

TEST_P(DecodePrecision, LowPrecisionStepsStayCloseToF32) {
  for (uint64_t seed : {1, 2, 3}) {
    auto model = Model(GetParam(), seed);
    const auto sources = Sources(7, static_cast<unsigned>(seed));
    const Tensor f32 = StepLogProbs(*model, sources);
    for (Precision p : {Precision::kBF16, Precision::kInt8}) {
      model->SetDecodePrecision(p);
      EXPECT_EQ(model->decode_precision(), p);
      const Tensor low = StepLogProbs(*model, sources);
      const float d = MaxAbsDiff(low, f32);
      // Rounding moves the log-probabilities of these untrained models by a few 1e-3 at most
      // (bf16: 3 significant digits; int8: 2 and a bit); a broken kernel moves them by ~1.
      EXPECT_LT(d, 0.05f) << nn::PrecisionName(p) << " seed " << seed;
      EXPECT_GT(d, 0.0f) << nn::PrecisionName(p) << ": the precision was not used";
    }
    model->SetDecodePrecision(Precision::kF32);
    EXPECT_EQ(MaxAbsDiff(StepLogProbs(*model, sources), f32), 0.0f);
  }
}

TEST_P(DecodePrecision, PreparedDecodingEqualsPackingPerStart) {
  for (Precision p : {Precision::kF32, Precision::kBF16, Precision::kInt8}) {
    auto model = Model(GetParam(), 11);
    model->SetDecodePrecision(p);
    const auto sources = Sources(9, 5);
    nmt::SearchOptions o;
    o.beam = 3;
    o.batch_size = 4;
    const auto per_start = nmt::Translate(*model, sources, o);
    model->PrepareDecoding();
    const auto prepared = nmt::Translate(*model, sources, o);
    ASSERT_EQ(per_start.size(), prepared.size());
    for (size_t i = 0; i < prepared.size(); ++i) {
      EXPECT_EQ(per_start[i][0].tokens, prepared[i][0].tokens);
      EXPECT_EQ(per_start[i][0].score, prepared[i][0].score) << nn::PrecisionName(p);
    }
  }
}

// The shortlist's kept log-probabilities are the full layer's renormalised over the kept ids:
// column j is lp_kept[j] = lp[ids[j]] - log sum_{i in ids} exp(lp[i]). With every id kept, the
// step is the full step bit for bit.
TEST_P(DecodePrecision, ShortlistRenormalisesTheFullLayerOverTheKeptIds) {
  std::mt19937 rng(3);
  for (Precision p : {Precision::kF32, Precision::kInt8}) {
    auto model = Model(GetParam(), 21);
    model->SetDecodePrecision(p);
    const auto sources = Sources(5, 9);
    const Tensor full = StepLogProbs(*model, sources);
    std::vector<int64_t> all(kVocab);
    for (int64_t i = 0; i < kVocab; ++i) all[i] = i;
    EXPECT_EQ(MaxAbsDiff(StepLogProbs(*model, sources, &all), full), 0.0f);
    for (int trial = 0; trial < 4; ++trial) {
      std::set<int64_t> pick = {models::SpecialIds::kEos};
      std::uniform_int_distribution<int64_t> id(0, kVocab - 1);
      for (int i = 0; i < 5 + 6 * trial; ++i) pick.insert(id(rng));
      const std::vector<int64_t> kept(pick.begin(), pick.end());
      const Tensor cut = StepLogProbs(*model, sources, &kept);
      const auto k = static_cast<int64_t>(kept.size());
      ASSERT_EQ(cut.shape(), Shape({full.size(0), k}));
      for (int64_t r = 0; r < full.size(0); ++r) {
        const float* f = full.data<float>() + r * kVocab;
        const float* c = cut.data<float>() + r * k;
        double z = 0;
        for (int64_t i : kept) z += std::exp(static_cast<double>(f[i]));
        for (int64_t j = 0; j < k; ++j)
          EXPECT_NEAR(c[j], f[kept[j]] - std::log(z), 2e-5) << "row " << r << " id " << kept[j];
      }
    }
  }
}

TEST_P(DecodePrecision, SearchUnderAShortlistEmitsOnlyKeptIds) {
  auto model = Model(GetParam(), 31);
  const auto sources = Sources(10, 17);
  nmt::SearchOptions o;
  o.beam = 4;
  o.nbest = 4;
  o.batch_size = 3;
  const auto plain = nmt::Translate(*model, sources, o);
  // Everything kept: the same search.
  std::vector<std::vector<int64_t>> seen;
  o.output_ids = [&](const std::vector<std::vector<int64_t>>& batch) {
    seen.insert(seen.end(), batch.begin(), batch.end());
    std::vector<int64_t> all(kVocab);
    for (int64_t i = 0; i < kVocab; ++i) all[i] = i;
    return all;
  };
  const auto all_kept = nmt::Translate(*model, sources, o);
  EXPECT_EQ(seen.size(), sources.size());  // every source reached the shortlist once
  for (size_t i = 0; i < plain.size(); ++i)
    for (size_t h = 0; h < plain[i].size(); ++h)
      EXPECT_EQ(plain[i][h].tokens, all_kept[i][h].tokens);
  // Ids kept per batch: eos and the batch's source ids + 1 (a rule the output can be checked by).
  o.output_ids = [](const std::vector<std::vector<int64_t>>& batch) {
    std::set<int64_t> ids = {models::SpecialIds::kEos};
    for (const auto& s : batch)
      for (int64_t t : s) ids.insert(std::min(t + 1, kVocab - 1));
    return std::vector<int64_t>(ids.begin(), ids.end());
  };
  const auto cut = nmt::Translate(*model, sources, o);
  size_t tokens = 0;
  for (size_t i = 0; i < cut.size(); ++i) {
    // Sentence i sits in some batch; its tokens must be among the ids of every source + 1:
    // checked against the union over all sources (a superset of its batch's).
    std::set<int64_t> allowed;
    for (const auto& s : sources)
      for (int64_t t : s) allowed.insert(std::min(t + 1, kVocab - 1));
    for (const auto& h : cut[i])
      for (int64_t t : h.tokens) {
        EXPECT_TRUE(allowed.count(t)) << "token " << t;
        ++tokens;
      }
  }
  EXPECT_GT(tokens, 0u);
  // Bad kept ids are refused with the reason.
  NoGradGuard no_grad;
  auto state =
      model->Start(Tensor::Full({1, 2}, 5, DType::kI64), Tensor::Full({1}, 2, DType::kI64));
  EXPECT_THROW(model->RestrictOutput(*state, {5, 4, models::SpecialIds::kEos}), Error);
  EXPECT_THROW(model->RestrictOutput(*state, {4, 5}), Error);  // no eos
  EXPECT_THROW(model->RestrictOutput(*state, {models::SpecialIds::kEos, kVocab}), Error);
}

INSTANTIATE_TEST_SUITE_P(Models, DecodePrecision,
                         ::testing::Values(models::Arch::kRnnAttention, models::Arch::kTransformer),
                         [](const auto& info) {
                           return info.param == models::Arch::kTransformer ? "transformer"
                                                                           : "rnn_attention";
                         });

// A quantized checkpoint holds int8 matrices (about a quarter of the bytes), reads back into an
// f32 model as q * scale, and decodes in int8 what the original decodes in int8.
TEST(QuantizedCheckpoint, SmallerAndDecodesAsQuantizingAtLoad) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "attend_test_quantized_checkpoint";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (models::Arch arch : {models::Arch::kRnnAttention, models::Arch::kTransformer}) {
    auto model = Model(arch, 41, /*width=*/64);  // matrices of 4,096 values and more
    optim::Adam adam(model->Parameters(), optim::AdamOptions{});
    const std::string f32 = (dir / "f32.ckpt").string(), q8 = (dir / "q8.ckpt").string();
    const std::string config = "{\"model\": " + model->config().ToJson() + "}";
    io::SaveCheckpoint(f32, *model, &adam, nullptr, config);
    const io::QuantizeSummary s = io::QuantizeCheckpoint(f32, q8);
    EXPECT_GT(s.quantized, 0);
    EXPECT_LT(s.quantized, s.tensors);  // biases and norms stay f32
    EXPECT_LT(fs::file_size(q8) * 2, fs::file_size(f32)) << "optimizer state dropped, int8";
    EXPECT_THROW(io::QuantizeCheckpoint(q8, (dir / "again.ckpt").string()), Error);

    auto loaded = Model(arch, 99, 64);  // other weights, replaced by the file's
    io::LoadCheckpoint(q8, *loaded);
    optim::Adam other(loaded->Parameters(), optim::AdamOptions{});
    EXPECT_THROW(io::LoadCheckpoint(q8, *loaded, &other), Error);
    // Every weight is within half a step of its row's scale of the original.
    const auto a = model->StateDict(), b = loaded->StateDict();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      const Tensor& x = a[i].second;
      const Tensor& y = b[i].second;
      if (x.dtype() != DType::kF32) continue;
      const auto xv = x.ToVector<float>(), yv = y.ToVector<float>();
      float amax = 0;
      for (float v : xv) amax = std::max(amax, std::fabs(v));
      for (size_t j = 0; j < xv.size(); ++j)
        ASSERT_LE(std::fabs(xv[j] - yv[j]), amax / 127 * 0.5f + 1e-7f) << a[i].first;
    }
    model->SetDecodePrecision(Precision::kInt8);
    loaded->SetDecodePrecision(Precision::kInt8);
    const auto sources = Sources(6, 2);
    // The decoder's layers see identical int8 values and scales within an ulp; the encoder and
    // embeddings (f32) read the rounded weights, so the log-probabilities move a little.
    EXPECT_LT(MaxAbsDiff(StepLogProbs(*model, sources), StepLogProbs(*loaded, sources)), 0.05f);
  }
  // An i8 tensor without its scale is refused, naming it.
  {
    nn::NamedTensors t = {{"w", Tensor::Zeros({2, 3}, DType::kI8)}};
    io::SaveSafetensors(
        (dir / "bad.ckpt").string(), t,
        {{"attend.format", "checkpoint/1"}, {"config", "{}"}, {io::kQuantizedKey, "int8"}});
    auto m = Model(models::Arch::kRnnAttention, 1);
    try {
      io::LoadCheckpoint((dir / "bad.ckpt").string(), *m);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'w' has no 'w.qscale'"), std::string::npos) << e.what();
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace attend
