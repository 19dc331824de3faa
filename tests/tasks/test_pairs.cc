// Sentence pairs (attend/tasks/pairs.h): the paraphrase corpus from catalogs that msgfmt writes
// here, ABCNN and MwAN against PyTorch and finite differences, learning, and the program.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "attend/tasks/pairs.h"
#include "support/command.h"
#include "support/files.h"
#include "support/gradcheck.h"
#include "support/models.h"
#include "support/reference_compare.h"

namespace attend::tasks {
namespace {

using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::TaskCommand;
using attend::testing::TempDir;
using attend::testing::WriteFile;
using gradcheck::GradCheck;
using gradcheck::ThrownMessage;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// ---- a catalog fixture ----

std::string PoString(const std::string& s) { return "\"" + s + "\""; }

// Writes <dir>/<lang>/LC_MESSAGES/app.mo for three languages with msgfmt. Group g has four strings:
// "open record gG" and "view record gG" share one translation in every language (in "fr" not
// when g % 10 == 0: two languages agree there), "close record gG" and "delete record gG" have
// translations of their own. Every two strings of a group overlap by half their words.
void WriteCatalogs(const std::string& dir, int groups) {
  for (const std::string lang : {"de", "fr", "es"}) {
    std::string po = "msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n\n";
    auto entry = [&](const std::string& id, const std::string& str) {
      po += "msgid " + PoString(id) + "\nmsgstr " + PoString(str) + "\n\n";
    };
    for (int g = 0; g < groups; ++g) {
      const std::string n = std::to_string(g);
      entry("_Open record g" + n, lang + " zeigen " + n);
      entry("View record g" + n,
            lang == "fr" && g % 10 == 0 ? "fr voir " + n : lang + " zeigen " + n);
      entry("Close record g" + n, lang + " schliessen " + n);
      entry("Delete record g" + n + "\xE2\x80\xA6", lang + " loeschen " + n);
    }
    const std::string lc = dir + "/" + lang + "/LC_MESSAGES";
    WriteFile(lc + "/app.po", po);
    const std::string cmd = "msgfmt -o " + lc + "/app.mo " + lc + "/app.po";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::filesystem::remove(lc + "/app.po");
  }
}

PairsCorpusOptions FixtureOptions(const std::string& dir) {
  PairsCorpusOptions o;
  o.locale_dir = dir;
  o.dev_per_mille = 250;
  o.test_per_mille = 250;
  return o;
}

std::set<std::string> Strings(const std::vector<SentencePair>& pairs) {
  std::set<std::string> s;
  auto join = [](const std::vector<std::string>& w) {
    std::string out;
    for (const std::string& x : w) out += x + " ";
    return out;
  };
  for (const SentencePair& p : pairs) {
    s.insert(join(p.a));
    s.insert(join(p.b));
  }
  return s;
}

TEST(PairsCorpus, WordsDropMarkersAndPunctuation) {
  EXPECT_EQ(PairWords("_Save As\xE2\x80\xA6"), (std::vector<std::string>{"save", "as"}));
  EXPECT_EQ(PairWords("Can't &open %s: gr\xC3\xBC\xC3\x9F"),
            (std::vector<std::string>{"can", "t", "open", "s", "gr\xC3\xBC\xC3\x9F"}));
  EXPECT_TRUE(PairWords("--").empty());
}

TEST(PairsCorpus, ParaphrasesNeedAgreeingLanguagesSplitsAreDisjointAndBalanced) {
  TempDir dir;
  WriteCatalogs(dir.path().string(), 150);
  PairsCorpusOptions o = FixtureOptions(dir.path().string());
  const PairsCorpus c = BuildPairsCorpus(o);
  EXPECT_EQ(c.catalogs_read, 3);
  EXPECT_EQ(c.languages, 3);
  // 150 open/view pairs, of which the 15 with g % 10 == 0 have only two agreeing languages.
  EXPECT_EQ(c.paraphrases_found, 135);
  // Overlapping by half: the six pairs of a group but open/view (any vote rules a pair out as a
  // negative), and the same verb in two groups ("open record g1" / "open record g2").
  EXPECT_EQ(c.negative_candidates, 150 * 5 + 4 * (150 * 149 / 2));
  EXPECT_EQ(c.largest_component, 2);
  o.min_languages = 2;
  EXPECT_EQ(BuildPairsCorpus(o).paraphrases_found, 150);

  const std::set<std::string> s0 = Strings(c.splits[0]), s1 = Strings(c.splits[1]),
                              s2 = Strings(c.splits[2]);
  for (const std::string& s : s1) EXPECT_EQ(s0.count(s), 0u) << s;
  for (const std::string& s : s2) EXPECT_EQ(s0.count(s) + s1.count(s), 0u) << s;
  for (int s = 0; s < 3; ++s) {
    int64_t pos = 0;
    for (const SentencePair& p : c.splits[s]) {
      pos += p.label;
      EXPECT_EQ(p.catalog, "app");
      if (p.label) {  // always an open/view pair of one group
        EXPECT_EQ(p.a.back(), p.b.back());
        EXPECT_NE(p.a.front(), p.b.front());
      }
    }
    EXPECT_GT(pos, 0) << "split " << s;
    EXPECT_EQ(2 * pos, static_cast<int64_t>(c.splits[s].size())) << "split " << s;
  }
}

TEST(PairsCorpus, DeterministicBySeed) {
  TempDir dir;
  WriteCatalogs(dir.path().string(), 150);
  PairsCorpusOptions o = FixtureOptions(dir.path().string());
  const PairsCorpus a = BuildPairsCorpus(o), b = BuildPairsCorpus(o);
  o.seed = 2;
  const PairsCorpus other = BuildPairsCorpus(o);
  for (int s = 0; s < 3; ++s) {
    ASSERT_EQ(a.splits[s].size(), b.splits[s].size());
    for (size_t i = 0; i < a.splits[s].size(); ++i) {
      EXPECT_EQ(a.splits[s][i].a, b.splits[s][i].a);
      EXPECT_EQ(a.splits[s][i].b, b.splits[s][i].b);
      EXPECT_EQ(a.splits[s][i].label, b.splits[s][i].label);
    }
    // Another seed draws other negatives in another order; the paraphrases stay in their split.
    auto positives = [](const std::vector<SentencePair>& pairs) {
      std::vector<SentencePair> kept;
      for (const SentencePair& p : pairs)
        if (p.label) kept.push_back(p);
      return Strings(kept);
    };
    EXPECT_EQ(positives(a.splits[s]), positives(other.splits[s])) << "split " << s;
  }
  bool differ = false;
  for (size_t i = 0; i < a.splits[0].size() && i < other.splits[0].size(); ++i)
    differ = differ || a.splits[0][i].a != other.splits[0][i].a;
  EXPECT_TRUE(differ);
}

TEST(PairsCorpus, ErrorsNameTheDirectoryAndTheFile) {
  EXPECT_THAT(ThrownMessage([] {
                PairsCorpusOptions o;
                o.locale_dir = "/nonexistent/locale";
                BuildPairsCorpus(o);
              }),
              HasSubstr("/nonexistent/locale: no such directory"));
  TempDir empty;
  EXPECT_THAT(ThrownMessage([&] { BuildPairsCorpus(FixtureOptions(empty.path().string())); }),
              HasSubstr("no catalogs in"));
  TempDir dir;
  WriteCatalogs(dir.path().string(), 150);
  WriteFile(dir / "it/LC_MESSAGES/broken.mo", "not a catalog at all, just text");
  EXPECT_THAT(ThrownMessage([&] { BuildPairsCorpus(FixtureOptions(dir.path().string())); }),
              HasSubstr("broken.mo"));
  TempDir small;
  WriteCatalogs(small.path().string(), 1);
  EXPECT_THAT(ThrownMessage([&] { BuildPairsCorpus(FixtureOptions(small.path().string())); }),
              HasSubstr("split is empty"));
}

// ---- the layers: finite differences ----

TEST(PairsGradCheck, WindowPoolAndAttentionFeatureMaps) {
  const Tensor h = gradcheck::RandomUniform({2, 6, 3}, 1), a = gradcheck::RandomUniform({2, 6}, 2);
  EXPECT_TRUE(GradCheck(
      [](const std::vector<Tensor>& x) { return AbcnnModel::WindowPool(x[0], x[1], 3, 4); },
      {h, a}));
  const Tensor x = gradcheck::RandomUniform({2, 4, 3}, 3),
               y = gradcheck::RandomUniform({2, 5, 3}, 4), w = gradcheck::RandomUniform({5, 2}, 5);
  EXPECT_TRUE(GradCheck(
      [](const std::vector<Tensor>& in) {
        return AbcnnModel::AttentionFeatureMaps(attention::MatchScore(in[0], in[1]), in[2]);
      },
      {x, y, w}));
  // w-ap without attention is the mean of each window of `width` columns.
  Tensor ones = Tensor::Full({1, 6}, 1.0 / 3.0, DType::kF64);
  Tensor cols = Tensor::FromVector(std::vector<double>{1, 2, 3, 4, 5, 6}, {1, 6, 1});
  const std::vector<double> pooled = AbcnnModel::WindowPool(cols, ones, 3, 4).ToVector<double>();
  ASSERT_EQ(pooled.size(), 4u);
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(pooled[j], j + 2.0, 1e-15);
  EXPECT_THAT(ThrownMessage([&] { AbcnnModel::WindowPool(cols, ones, 2, 4); }),
              HasSubstr("ABCNN w-ap"));
}

PairsModelConfig SmallConfig(const std::string& model) {
  PairsModelConfig c;
  c.model = model;
  c.vocab = 9;
  c.max_len = 5;
  c.embed_dim = 3;
  c.hidden = 3;
  c.attn_dim = 4;
  c.classifier = 4;
  return c;
}

PairBatch SmallBatch() {
  PairBatch b;
  b.a =
      Tensor::FromVector(std::vector<int64_t>{3, 4, 5, 0, 0, 2, 6, 7, 8, 1, 6, 0, 0, 0, 0}, {3, 5});
  b.b =
      Tensor::FromVector(std::vector<int64_t>{5, 4, 0, 0, 0, 8, 7, 2, 0, 0, 3, 3, 2, 4, 6}, {3, 5});
  b.a_len = Tensor::FromVector(std::vector<int64_t>{3, 5, 1}, {3});
  b.b_len = Tensor::FromVector(std::vector<int64_t>{2, 3, 5}, {3});
  b.label = Tensor::FromVector(std::vector<int64_t>{1, 0, 1}, {3});
  return b;
}

// The whole model's loss against central differences of its parameters (f64), a spread of
// elements of every parameter; the embedding's padding row is left out (it gets no gradient on
// purpose, as torch's padding_idx).
void ExpectModelGradients(PairModel& m, const PairBatch& batch, int64_t embed_dim) {
  auto loss = [&] { return CrossEntropy(m.Forward(batch), batch.label); };
  m.ZeroGrad();
  loss().Backward();
  // Named, not a structured binding: clang's OpenMP mode cannot capture one in a lambda.
  for (auto& named : m.NamedParameters()) {
    const std::string& name = named.first;
    Tensor& p = named.second;
    const std::vector<double> v = p.ToVector<double>();
    const std::vector<double> g =
        p.grad().defined() ? p.grad().ToVector<double>() : std::vector<double>(v.size(), 0.0);
    const size_t first = name == "embed.weight" ? static_cast<size_t>(embed_dim) : 0;
    for (size_t i = first; i < v.size(); i += std::max<size_t>(1, v.size() / 7)) {
      auto at = [&](double d) {
        std::vector<double> w = v;
        w[i] += d;
        p.CopyFrom(Tensor::FromVector(w, p.shape()));
        NoGradGuard no_grad;
        return loss().item();
      };
      const double eps = 1e-6, num = (at(eps) - at(-eps)) / (2 * eps);
      p.CopyFrom(Tensor::FromVector(v, p.shape()));
      EXPECT_NEAR(g[i], num, 1e-7 + 1e-5 * std::abs(num)) << name << "[" << i << "]";
    }
  }
}

TEST(PairsGradCheck, EveryModelAgainstFiniteDifferences) {
  for (const std::string model : {"siamese", "abcnn1", "abcnn2", "abcnn3", "siamese-gru", "mwan"}) {
    SCOPED_TRACE(model);
    Generator gen(7);
    PairsModelConfig c = SmallConfig(model);
    std::shared_ptr<PairModel> m = MakePairModel(c, gen, DType::kF64);
    ExpectModelGradients(*m, SmallBatch(), c.embed_dim);
  }
}

TEST(PairsModels, AttentionShapesAndBadInput) {
  Generator gen(1);
  for (const std::string model : {"abcnn1", "abcnn2", "mwan"}) {
    SCOPED_TRACE(model);
    std::shared_ptr<PairModel> m = MakePairModel(SmallConfig(model), gen);
    Tensor att;
    Tensor logits = m->Forward(SmallBatch(), &att);
    EXPECT_EQ(logits.shape().vec(), (std::vector<int64_t>{3, 2}));
    const int64_t n = model == "abcnn2" ? 7 : 5;  // ABCNN-2: L + w - 1 convolution windows
    EXPECT_EQ(att.shape().vec(), (std::vector<int64_t>{3, n, n}));
    // Padding gets no attention: the first pair has 3 and 2 words.
    const std::vector<float> w = att.ToVector<float>();
    const int64_t ra = model == "mwan" ? 2 : model == "abcnn2" ? 5 : 3;
    const int64_t cb = model == "mwan" ? 3 : model == "abcnn2" ? 4 : 2;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i >= ra || j >= cb) {
          EXPECT_EQ(w[i * n + j], 0.0f) << i << "," << j;
        }
    if (model == "mwan") {  // each word of B spreads one unit of weight over A
      for (int64_t i = 0; i < ra; ++i) {
        double row = 0;
        for (int64_t j = 0; j < n; ++j) row += w[i * n + j];
        EXPECT_NEAR(row, 1.0, 1e-5);
      }
    }
  }
  std::shared_ptr<PairModel> m = MakePairModel(SmallConfig("siamese"), gen);
  Tensor att;
  m->Forward(SmallBatch(), &att);
  EXPECT_FALSE(att.defined());
  PairBatch bad = SmallBatch();
  bad.a = bad.a.Narrow(1, 0, 4);
  EXPECT_THAT(ThrownMessage([&] { m->Forward(bad); }), HasSubstr("must both be [B, 5]"));
  PairsModelConfig c = SmallConfig("mwan");
  c.ways = {"dot", "cosine"};
  EXPECT_THAT(ThrownMessage([&] { MakePairModel(c, gen); }),
              HasSubstr("unknown attention function 'cosine'"));
  c.model = "lstm";
  EXPECT_THAT(ThrownMessage([&] { MakePairModel(c, gen); }), HasSubstr("unknown model 'lstm'"));
}

// ---- the layers: PyTorch ----

void ReplayCase(const reference::RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  reference::OpKey k(c.op);
  PairsModelConfig cfg;
  cfg.model = k.Str("model");
  cfg.vocab = k.Int("vocab");
  cfg.max_len = k.Int("max_len");
  cfg.embed_dim = k.Int("embed_dim");
  cfg.hidden = k.Int("hidden");
  cfg.width = k.Int("width");
  cfg.attn_dim = k.Int("attn_dim");
  cfg.classifier = k.Int("classifier");
  cfg.ways.clear();
  std::string ways = k.Str("ways");
  for (size_t at = 0; at <= ways.size();) {
    const size_t plus = std::min(ways.find('+', at), ways.size());
    cfg.ways.push_back(ways.substr(at, plus - at));
    at = plus + 1;
  }
  Generator gen(1);
  std::shared_ptr<PairModel> model = MakePairModel(cfg, gen, DType::kF64);
  attend::testing::LoadTorchWeights(c, *model);
  if (::testing::Test::HasFatalFailure()) return;
  PairBatch batch;
  batch.a = reference::ToTensor(reference::Ref(c, "a"));
  batch.b = reference::ToTensor(reference::Ref(c, "b"));
  batch.a_len = reference::ToTensor(reference::Ref(c, "a_len"));
  batch.b_len = reference::ToTensor(reference::Ref(c, "b_len"));
  batch.label = reference::ToTensor(reference::Ref(c, "label"));
  Tensor attention;
  Tensor logits = model->Forward(batch, &attention);
  Tensor loss = CrossEntropy(logits, batch.label);
  loss.Backward();
  // f64 on both sides: a logit ends chains of sums no longer than the widest layer (4 * hidden
  // features into the classifier, 2 * embed_dim * width into a convolution), the gradients
  // sums over the batch's positions; n = 64 covers both with room.
  const double n = 64;
  reference::ExpectMatches(c, "logits", logits, reference::Ref(c, "logits"), n);
  reference::ExpectMatches(c, "loss", loss, reference::Ref(c, "loss"), n);
  if (c.Find("attention")) {
    ASSERT_TRUE(attention.defined());
    reference::ExpectMatches(c, "attention", attention, reference::Ref(c, "attention"), n);
  } else {
    EXPECT_FALSE(attention.defined());
  }
  for (auto& [name, p] : model->NamedParameters())
    reference::ExpectMatches(c, "grad " + name, p.grad(), reference::Ref(c, "grad:" + name), n);
}

TEST(PairsTorchReference, LogitsAttentionLossAndGradientsMatch) {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("pairs_reference.bin", "tests/reference/pairs_reference.py");
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<std::string> models;
  for (const reference::RefCase& c : loaded.cases) {
    ReplayCase(c);
    models.insert(reference::OpKey(c.op).Str("model"));
  }
  EXPECT_EQ(models, (std::set<std::string>{"siamese", "abcnn1", "abcnn2", "abcnn3", "siamese-gru",
                                           "mwan"}));
}

// ---- learning and the program ----

TEST(PairsTask, LearnsTheFixture) {
  TempDir cats, out;
  WriteCatalogs(cats.path().string(), 150);
  const PairsCorpusOptions o = FixtureOptions(cats.path().string());
  for (const std::string model : {"abcnn3", "mwan"}) {
    SCOPED_TRACE(model);
    PairsModelConfig c;
    c.model = model;
    c.embed_dim = 16;
    c.hidden = 16;
    c.attn_dim = 16;
    c.classifier = 16;
    PairsTask task(BuildPairsCorpus(o), c, o);
    train::TaskTrainOptions t;
    t.out_dir = (out / model);
    t.batch_size = 16;
    t.lr = 0.01;
    t.warmup = 10;
    t.max_steps = 60;
    t.valid_every = 60;
    t.log_every = 5;
    t.progress = false;
    const train::TaskTrainSummary s = train::TrainTask(task, t, false);
    ASSERT_FALSE(s.curve.empty());
    EXPECT_GT(s.curve.front().second, 0.5);  // chance is ln 2 = 0.69
    EXPECT_LT(s.curve.back().second, 0.15);
    // Paraphrase or not is a matter of the verbs here, which dev shares with train.
    EXPECT_GE(s.best_score, 90.0);
  }
}

TEST(PairsProgram, TrainsPrintsTheTestLineAndDrawsTheAttention) {
  TempDir cats, out;
  WriteCatalogs(cats.path().string(), 150);
  const std::string args = "--locale-dir " + cats.path().string() + " --out " + (out / "run") +
                           " --dev-per-mille 250 --test-per-mille 250 --model mwan --hidden 8"
                           " --embed-dim 8 --attn-dim 8 --classifier 8 --max-steps 30"
                           " --valid-every 15 --threads 1 --no-progress";
  const attend::testing::CommandResult r = RunCommand(TaskCommand("pairs", args));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, MatchesRegex("(.|\n)*pairs test accuracy [0-9.]+ F1 [0-9.]+ \\(model "
                                     "mwan\\)\n"));
  EXPECT_THAT(r.output, HasSubstr("pairs corpus: 3 catalogs"));
  const std::string png = ReadFile(out / "run/attention.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
}

TEST(PairsProgram, BadInputIsAClearError) {
  const attend::testing::CommandResult r =
      RunCommand(TaskCommand("pairs", "--locale-dir /nonexistent/locale --max-steps 1"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("attend-pairs: error: pairs corpus: --locale-dir "
                                  "/nonexistent/locale: no such directory"));
}

}  // namespace
}  // namespace attend::tasks
