// The documents system (attend/tasks/documents.h): the troff reader and the gzip pages it reads
// (broken pages are errors naming the file), the corpus (deterministic, hash-split, what it
// leaves out), the scores, the classifier against its PyTorch mirror and finite differences
// (every model and attention kind), its properties, a tiny training run that learns, and the
// program attend-documents on a fixture directory of pages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/documents.h"
#include "attend/train.h"
#include "support/command.h"
#include "support/files.h"
#include "support/gradcheck.h"
#include "support/models.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend::tasks {
namespace {

using attend::testing::LoadTorchWeights;
using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::TaskCommand;
using attend::testing::TempDir;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
namespace fs = std::filesystem;

using Sentences = std::vector<std::vector<std::string>>;

void WriteGzip(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// ---------------------------------------------------------------------------------------------
// The troff reader.
// ---------------------------------------------------------------------------------------------

TEST(DocumentsTroff, KeepsTheRunningTextAndDropsTheMarkup) {
  const std::string page =
      ".\\\" Copyright line: a comment\n"
      ".TH OPEN 2 2023-03-30 \"Linux man-pages 6.03\"\n"
      ".de XX\n"
      "defined text never shown\n"
      "..\n"
      ".SH NAME\n"
      "open, creat \\- open and possibly create a file\n"
      ".SH SYNOPSIS\n"
      ".nf\n"
      ".B #include <fcntl.h>\n"
      "int open(const char *\\fIpathname\\fP, int \\fIflags\\fP);\n"
      ".fi\n"
      ".SH DESCRIPTION\n"
      "The\n"
      ".BR open ()\n"
      "system call opens the file \\(em see\n"
      ".IR path (7).\n"
      "It returns a descriptor.   \\\" a trailing comment\n"
      "Don\\(aqt worry!\n"
      ".PP\n"
      "A new paragraph\\&.\n"
      ".TS\n"
      "allbox;\n"
      "lb lb.\n"
      "Flag\tMeaning\n"
      ".TE\n";
  const Sentences got = TroffToSentences(page);
  const Sentences want = {
      {"name"},
      {"open", "creat", "open", "and", "possibly", "create", "a", "file"},
      {"synopsis"},
      {"include", "fcntl", "h"},
      {"int", "open", "const", "char", "pathname", "int", "flags"},
      {"description"},
      {"the", "open", "system", "call", "opens", "the", "file", "see", "path", "7"},
      {"it", "returns", "a", "descriptor"},
      {"don", "t", "worry"},
      {"a", "new", "paragraph"},
      {"flag", "meaning"}};
  EXPECT_EQ(got, want);
}

TEST(DocumentsTroff, RedirectsAreRecognised) {
  EXPECT_EQ(TroffRedirect(".so man2/open.2\n"), "man2/open.2");
  EXPECT_EQ(TroffRedirect(".\\\" comment\n\n.so man3/exec.3\n"), "man3/exec.3");
  EXPECT_EQ(TroffRedirect(".TH X 1\n.so man1/y.1\n"), "");
  EXPECT_EQ(TroffRedirect(""), "");
}

TEST(DocumentsTroff, EscapesNeverLeakIntoWords) {
  // Sizes, strings, registers, motions and named characters leave no letters behind.
  const Sentences got = TroffToSentences(
      "\\s-1ALPHA\\s0 \\*(lq beta \\*[rq] \\n(.l gamma \\h'2n'delta "
      "\\[em]epsilon \\f[CW]zeta\\f[] eta\\e\n");
  EXPECT_EQ(got, (Sentences{{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"}}));
}

TEST(DocumentsGzip, ReadsPagesAndNamesTheFileOfABrokenOne) {
  TempDir dir;
  const std::string good = dir / "good.1.gz";
  WriteGzip(good, ".TH GOOD 1\nsome text here.\n");
  EXPECT_EQ(ReadGzipFile(good), ".TH GOOD 1\nsome text here.\n");

  // A truncated file: the first half of a compressed page.
  std::string text;
  for (int i = 0; i < 400; ++i) text += "line " + std::to_string(i * 7919 % 1000) + " of text\n";
  const std::string whole = dir / "whole.1.gz";
  WriteGzip(whole, text);
  const std::string bytes = ReadFile(whole);
  const std::string cut = dir / "cut.1.gz";
  attend::testing::WriteFile(cut, bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(ThrownMessage([&] { ReadGzipFile(cut); }),
              AllOf(HasSubstr(cut), HasSubstr("truncated")));

  const std::string empty = dir / "empty.1.gz";
  attend::testing::WriteFile(empty, "");
  EXPECT_THAT(ThrownMessage([&] { ReadGzipFile(empty); }),
              AllOf(HasSubstr(empty), HasSubstr("empty")));

  const std::string plain = dir / "plain.1.gz";
  attend::testing::WriteFile(plain, ".TH PLAIN 1\nnot compressed\n");
  EXPECT_THAT(ThrownMessage([&] { ReadGzipFile(plain); }),
              AllOf(HasSubstr(plain), HasSubstr("not a gzip file")));

  EXPECT_THAT(ThrownMessage([&] { ReadGzipFile(dir / "absent.1.gz"); }), HasSubstr("absent.1.gz"));
}

// ---------------------------------------------------------------------------------------------
// A fixture directory of pages: each section has words of its own among shared ones.
// ---------------------------------------------------------------------------------------------

const std::map<int, std::vector<std::string>> kSectionWords = {
    {1, {"command", "option", "prints", "output", "usage", "shell"}},
    {2, {"kernel", "syscall", "errno", "descriptor", "signal", "process"}},
    {3, {"library", "function", "pointer", "buffer", "string", "locale"}},
    {5, {"format", "field", "entry", "configuration", "column", "record"}},
    {7, {"overview", "conventions", "standard", "protocol", "introduction", "concept"}},
    {8, {"administrator", "daemon", "root", "mount", "device", "service"}}};
const std::vector<std::string> kShared = {"the", "a", "of", "to", "is", "and", "this", "with"};

std::string FixturePage(int section, int index, std::mt19937_64& rng) {
  const auto& own = kSectionWords.at(section);
  std::ostringstream p;
  p << ".\\\" fixture page\n.TH PAGE" << index << " " << section << "\n.SH NAME\n";
  p << "page" << index << " \\- " << own[index % own.size()] << " " << kShared[index % 8] << "\n";
  p << ".SH DESCRIPTION\n";
  const int sentences = 2 + static_cast<int>(rng() % 4);
  for (int s = 0; s < sentences; ++s) {
    const int words = 3 + static_cast<int>(rng() % 6);
    for (int w = 0; w < words; ++w) {
      const bool mine = rng() % 3 == 0;
      p << (w ? " " : "") << (mine ? own[rng() % own.size()] : kShared[rng() % kShared.size()]);
    }
    p << ".\n";
    if (s == 1) p << ".PP\n";
  }
  return p.str();
}

// `per_section` pages for each classified section, plus a link, a redirect and a man4 page.
void WriteFixtureManDir(const std::string& dir, int per_section, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const auto& [section, words] : kSectionWords) {
    const std::string sub = dir + "/man" + std::to_string(section) + "/";
    for (int i = 0; i < per_section; ++i)
      WriteGzip(sub + "page" + std::to_string(section) + "_" + std::to_string(i) + "." +
                    std::to_string(section) + ".gz",
                FixturePage(section, i, rng));
  }
  fs::create_symlink("page2_0.2.gz", dir + "/man2/alias.2.gz");
  WriteGzip(dir + "/man3/redirect.3.gz", ".so man3/page3_0.3\n");
  WriteGzip(dir + "/man4/null.4.gz", ".TH NULL 4\ndata sink.\n");
}

DocumentsCorpusOptions FixtureOptions(const std::string& dir) {
  DocumentsCorpusOptions o;
  o.man_dir = dir;
  o.max_sentences = 6;
  o.max_words = 8;
  o.vocab_size = 100;
  o.min_count = 1;
  return o;
}

std::string Dump(const DocumentsCorpus& c) {
  std::ostringstream s;
  for (int k = 0; k < 3; ++k)
    for (const Document& d : c.splits[k]) {
      s << k << " " << d.name << " " << d.label;
      for (const auto& sent : d.sentences) {
        s << " |";
        for (const auto& w : sent) s << " " << w;
      }
      s << "\n";
    }
  for (const auto& w : c.vocab) s << w << " ";
  return s.str();
}

TEST(DocumentsCorpus, DeterministicHashSplitDisjointAndCapped) {
  TempDir dir;
  WriteFixtureManDir(dir / "man", 30, 5);
  const DocumentsCorpus a = BuildDocumentsCorpus(FixtureOptions(dir / "man"));
  const DocumentsCorpus b = BuildDocumentsCorpus(FixtureOptions(dir / "man"));
  EXPECT_EQ(Dump(a), Dump(b));
  EXPECT_EQ(a.links, 1);
  EXPECT_EQ(a.redirects, 1);
  EXPECT_EQ(a.other_sections, 1);
  std::set<std::string> seen;
  std::map<int, int64_t> per_label;
  int64_t total = 0;
  for (int k = 0; k < 3; ++k) {
    EXPECT_FALSE(a.splits[k].empty()) << k;
    for (const Document& d : a.splits[k]) {
      EXPECT_TRUE(seen.insert(d.name).second) << d.name << " in two splits";
      EXPECT_EQ(DocumentSplitOfName(d.name), k) << d.name;
      EXPECT_LE(d.sentences.size(), 6u);
      for (const auto& s : d.sentences) {
        EXPECT_FALSE(s.empty());
        EXPECT_LE(s.size(), 8u);
      }
      // The label is the directory's section, and the name keeps it.
      EXPECT_EQ(d.name.back() - '0', kDocumentSections[d.label]) << d.name;
      ++per_label[d.label];
      ++total;
    }
  }
  EXPECT_EQ(total, 6 * 30);
  for (int c = 0; c < 6; ++c) EXPECT_EQ(per_label[c], 30) << c;
  // About 80/10/10 (the hash of 180 names).
  EXPECT_GT(a.splits[0].size(), 120u);
  EXPECT_THAT(a.Summary(), HasSubstr("1 links, 1 .so redirects, 1 pages of other sections"));
  // The vocabulary: <pad>, <unk>, then the training split's words by frequency.
  ASSERT_GE(a.vocab.size(), 3u);
  EXPECT_EQ(a.vocab[0], "<pad>");
  EXPECT_EQ(a.vocab[1], "<unk>");
  DocumentsCorpusOptions small = FixtureOptions(dir / "man");
  small.vocab_size = 5;
  EXPECT_EQ(BuildDocumentsCorpus(small).vocab.size(), 5u);
}

TEST(DocumentsCorpus, SplitIsAFunctionOfTheNameAlone) {
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) {
    const std::string n = "page" + std::to_string(i) + ".3";
    const int k = DocumentSplitOfName(n);
    EXPECT_EQ(k, DocumentSplitOfName(n));
    ++counts[k];
  }
  EXPECT_NEAR(counts[0], 1600, 80);
  EXPECT_NEAR(counts[1], 200, 50);
  EXPECT_NEAR(counts[2], 200, 50);
}

TEST(DocumentsCorpus, ErrorsNameTheFile) {
  TempDir dir;
  WriteFixtureManDir(dir / "man", 12, 3);
  const std::string empty = dir / "man/man1/empty.1.gz";
  attend::testing::WriteFile(empty, "");
  EXPECT_THAT(ThrownMessage([&] { BuildDocumentsCorpus(FixtureOptions(dir / "man")); }),
              AllOf(HasSubstr(empty), HasSubstr("empty")));
  fs::remove(empty);
  const std::string blank = dir / "man/man5/blank.5.gz";
  WriteGzip(blank, ".\\\" only markup\n.TH BLANK 5\n.PP\n");
  EXPECT_THAT(ThrownMessage([&] { BuildDocumentsCorpus(FixtureOptions(dir / "man")); }),
              AllOf(HasSubstr(blank), HasSubstr("no text")));
  fs::remove(blank);
  EXPECT_NO_THROW(BuildDocumentsCorpus(FixtureOptions(dir / "man")));
  EXPECT_THAT(ThrownMessage([&] { BuildDocumentsCorpus(FixtureOptions(dir / "nowhere")); }),
              HasSubstr("nowhere"));
  // A handful of pages cannot fill three splits.
  TempDir tiny;
  WriteGzip(tiny / "man1/only.1.gz", ".TH ONLY 1\nthe only page.\n");
  EXPECT_THAT(ThrownMessage([&] { BuildDocumentsCorpus(FixtureOptions(tiny.path().string())); }),
              HasSubstr("split is empty"));
}

TEST(DocumentsCorpus, PackageListsReadEnglishPagesAndRefuseWhatIsMissing) {
  TempDir info;
  attend::testing::WriteFile(info / "fake.list",
                             "/.\n/usr/share/man/de/man1/absent-de.1.gz\n"
                             "/usr/share/man/man1/attend-test-absent-page.1.gz\n");
  EXPECT_THAT(
      ThrownMessage([&] { ListPackageManPages({"fake"}, info.path().string(), nullptr); }),
      AllOf(HasSubstr("/usr/share/man/man1/attend-test-absent-page.1.gz"), HasSubstr("absent")));
  attend::testing::WriteFile(info / "multi:amd64.list", "/usr/share/man/de/man1/x.1.gz\n");
  EXPECT_TRUE(ListPackageManPages({"multi"}, info.path().string(), nullptr).empty());
  EXPECT_THAT(
      ThrownMessage([&] { ListPackageManPages({"nosuchpkg"}, info.path().string(), nullptr); }),
      AllOf(HasSubstr("nosuchpkg"), HasSubstr("not installed")));
}

TEST(DocumentsScores, AccuracyAndMacroF1) {
  // Class 0: tp 2, fn 1, fp 1 -> F1 2/3; class 1: tp 1, fp 1, fn 0 -> 2/3; class 2: tp 0, fn 1
  // -> 0; class 3 absent from truth and predictions: left out of the mean.
  const DocumentScores s = ScoreDocuments({0, 0, 0, 1, 2}, {0, 0, 1, 1, 0}, 4);
  EXPECT_DOUBLE_EQ(s.accuracy, 60.0);
  EXPECT_NEAR(s.macro_f1, 100.0 * (2.0 / 3 + 2.0 / 3 + 0.0) / 3.0, 1e-12);
  EXPECT_THAT(ThrownMessage([&] { ScoreDocuments({0}, {}, 2); }), HasSubstr("predictions"));
}

// ---------------------------------------------------------------------------------------------
// The classifier against PyTorch.
// ---------------------------------------------------------------------------------------------

void ReplayCase(const RefCase& c) {
  SCOPED_TRACE("case " + c.name + " [" + c.op + "]");
  OpKey k(c.op);
  DocumentModelConfig cfg;
  cfg.model = ParseDocumentModel(k.Str("model"));
  cfg.attention = ParseDocumentAttention(k.Str("attention"));
  cfg.vocab = k.Int("vocab");
  cfg.embed_dim = k.Int("embed_dim");
  cfg.word_hidden = k.Int("word_hidden");
  cfg.sentence_hidden = k.Int("sentence_hidden");
  cfg.attn_dim = k.Int("attn_dim");
  cfg.stacked_layers = static_cast<int>(k.Int("stacked_layers"));
  cfg.classes = k.Int("classes");
  cfg.dtype = k.Str("dtype") == "f64" ? DType::kF64 : DType::kF32;
  Generator gen(1);
  DocumentClassifier model(cfg, gen);
  LoadTorchWeights(c, model);
  if (::testing::Test::HasFatalFailure()) return;
  DocumentBatch batch;
  batch.words = ToTensor(Ref(c, "words"));
  batch.word_lengths = ToTensor(Ref(c, "word_lengths"));
  batch.sentence_counts = ToTensor(Ref(c, "sentence_counts"));
  batch.flat_words = ToTensor(Ref(c, "flat_words"));
  batch.flat_lengths = ToTensor(Ref(c, "flat_lengths"));
  batch.labels = ToTensor(Ref(c, "labels"));
  DocumentClassifier::Output o = model.Forward(batch);
  Tensor loss = CrossEntropy(o.logits, batch.labels);
  loss.Backward();
  // Tolerances (reference_compare.h): a logit ends chains of sums whose widest is the GRU's gate
  // pre-activation (embed + hidden terms) repeated over the longest sequence, then the pools and
  // the classifier; n = that sequence length times the widest layer input bounds the rounding.
  // Weights are softmax outputs over at most L positions; gradients sum over every position.
  const double widest = static_cast<double>(
      std::max({cfg.embed_dim, 2 * cfg.word_hidden, 2 * cfg.sentence_hidden, cfg.attn_dim}));
  const double steps = static_cast<double>(batch.flat_words.size(1));
  ExpectMatches(c, "logits", o.logits, Ref(c, "logits"), widest * steps);
  if (c.Find("word_weights")) {
    ASSERT_TRUE(o.word_weights.defined());
    ExpectMatches(c, "word_weights", o.word_weights, Ref(c, "word_weights"), widest * steps);
  } else {
    EXPECT_FALSE(o.word_weights.defined());
  }
  if (c.Find("sentence_weights")) {
    ASSERT_TRUE(o.sentence_weights.defined());
    ExpectMatches(c, "sentence_weights", o.sentence_weights, Ref(c, "sentence_weights"),
                  widest * steps);
  } else {
    EXPECT_FALSE(o.sentence_weights.defined());
  }
  ExpectMatches(c, "loss", loss, Ref(c, "loss"), widest * steps);
  const double b = static_cast<double>(batch.labels.size(0));
  for (auto& [name, p] : model.NamedParameters()) {
    ASSERT_TRUE(p.grad().defined() || name == "embed.weight") << name;
    ExpectMatches(c, "grad " + name, p.grad(), Ref(c, "grad:" + name), widest * steps * b);
  }
}

TEST(DocumentsTorchReference, LogitsWeightsLossAndGradientsMatch) {
  static const reference::LoadedCases loaded = reference::LoadReferenceCases(
      "documents_reference.bin", "tests/reference/documents_reference.py");
  // A missing or broken file is a failure, never a skip: the oracle is part of the test.
  ASSERT_TRUE(loaded.error.empty()) << loaded.error;
  std::set<std::string> kinds;
  for (const RefCase& c : loaded.cases) {
    ReplayCase(c);
    OpKey k(c.op);
    kinds.insert(k.Str("model") + "/" + k.Str("attention") + "/" + k.Str("dtype"));
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"han/single/f32", "han/stacked/f32", "flat/single/f32",
                                          "flat/stacked/f32", "mean/single/f32", "han/stacked/f64",
                                          "flat/stacked/f64", "mean/single/f64"}));
}

// ---------------------------------------------------------------------------------------------
// Finite differences (f64) through every parameter, for every model and attention kind.
// ---------------------------------------------------------------------------------------------

DocumentBatch SmallBatch() {
  EncodedDocument a, b, c;
  a.label = 0;
  a.sentences = {{3, 4, 2}, {5}, {6, 1, 7, 8}};
  b.label = 2;
  b.sentences = {{2, 2}};
  c.label = 1;
  c.sentences = {{8}, {4, 3, 6, 5, 1}};
  return MakeDocumentBatch({&a, &b, &c});
}

DocumentModelConfig TinyConfig(DocumentModelKind m, DocumentAttentionKind a, DType dt) {
  DocumentModelConfig c;
  c.model = m;
  c.attention = a;
  c.vocab = 9;
  c.embed_dim = 3;
  c.word_hidden = 2;
  c.sentence_hidden = 2;
  c.attn_dim = 3;
  c.stacked_layers = 2;
  c.classes = 3;
  c.dtype = dt;
  return c;
}

// Central differences of sum_k sum(out_k * w_k) for every element of every parameter.
::testing::AssertionResult ParamGradCheck(nn::Module& m,
                                          const std::function<std::vector<Tensor>()>& forward) {
  const double eps = 1e-6, atol = 1e-7, rtol = 1e-5;
  m.ZeroGrad();
  std::vector<Tensor> outs = forward();
  std::vector<std::vector<double>> w;
  std::vector<Tensor> roots, cots;
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (const Tensor& o : outs) {
    std::vector<double> v(static_cast<size_t>(o.numel()));
    for (double& x : v) x = u(rng);
    w.push_back(v);
    roots.push_back(o);
    cots.push_back(Tensor::FromVector(v, o.shape()));
  }
  Backward(roots, cots);
  auto evaluate = [&] {
    NoGradGuard no_grad;
    std::vector<std::vector<double>> vals;
    for (const Tensor& o : forward()) vals.push_back(o.ToVector<double>());
    return vals;
  };
  int64_t bad = 0, checked = 0;
  std::ostringstream msg;
  for (auto& [name, p] : m.NamedParameters()) {
    const std::vector<double> analytic =
        p.grad().defined() ? p.grad().ToVector<double>() : std::vector<double>(p.numel(), 0.0);
    double* d = p.data<double>();
    for (int64_t i = 0; i < p.numel(); ++i) {
      const double x = d[i];
      d[i] = x + eps;
      auto plus = evaluate();
      d[i] = x - eps;
      auto minus = evaluate();
      d[i] = x;
      double num = 0.0;
      for (size_t k = 0; k < plus.size(); ++k)
        for (size_t j = 0; j < plus[k].size(); ++j) num += (plus[k][j] - minus[k][j]) * w[k][j];
      num /= 2 * eps;
      ++checked;
      if (std::fabs(analytic[i] - num) <= atol + rtol * std::fabs(num)) continue;
      if (bad++ < 8)
        msg << "\n  " << name << "[" << i << "]: analytic " << analytic[i] << ", numeric " << num;
    }
  }
  if (bad > 0)
    return ::testing::AssertionFailure() << bad << " of " << checked << " differ" << msg.str();
  return ::testing::AssertionSuccess();
}

TEST(DocumentsGradCheck, EveryModelAndAttentionKind) {
  const DocumentBatch batch = SmallBatch();
  for (auto m : {DocumentModelKind::kHan, DocumentModelKind::kFlat, DocumentModelKind::kMean})
    for (auto a : {DocumentAttentionKind::kSingle, DocumentAttentionKind::kStacked}) {
      if (m == DocumentModelKind::kMean && a == DocumentAttentionKind::kStacked) continue;
      SCOPED_TRACE(ToString(m) + " " + ToString(a));
      Generator gen(5);
      DocumentClassifier model(TinyConfig(m, a, DType::kF64), gen);
      EXPECT_TRUE(ParamGradCheck(model, [&] {
        DocumentClassifier::Output o = model.Forward(batch);
        std::vector<Tensor> outs = {o.logits};
        if (o.word_weights.defined()) outs.push_back(o.word_weights);
        if (o.sentence_weights.defined()) outs.push_back(o.sentence_weights);
        return outs;
      }));
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

TEST(DocumentsModel, WeightsAreDistributionsOverRealWordsAndSentences) {
  const DocumentBatch batch = SmallBatch();
  const std::vector<int64_t> lengths = batch.word_lengths.ToVector<int64_t>(),
                             counts = batch.sentence_counts.ToVector<int64_t>(),
                             flat = batch.flat_lengths.ToVector<int64_t>();
  const int64_t s = batch.words.size(1), w = batch.words.size(2), l = batch.flat_words.size(1);
  for (auto a : {DocumentAttentionKind::kSingle, DocumentAttentionKind::kStacked}) {
    Generator gen(8);
    DocumentClassifier han(TinyConfig(DocumentModelKind::kHan, a, DType::kF64), gen);
    DocumentClassifier flatm(TinyConfig(DocumentModelKind::kFlat, a, DType::kF64), gen);
    NoGradGuard no_grad;
    const std::vector<double> ww = han.Forward(batch).word_weights.ToVector<double>(),
                              sw = han.Forward(batch).sentence_weights.ToVector<double>(),
                              fw = flatm.Forward(batch).word_weights.ToVector<double>();
    for (int64_t i = 0; i < 3; ++i) {
      double ssum = 0.0, fsum = 0.0;
      for (int64_t j = 0; j < s; ++j) {
        ssum += sw[i * s + j];
        if (j >= counts[i]) {
          EXPECT_EQ(sw[i * s + j], 0.0);
        }
        double wsum = 0.0;
        for (int64_t t = 0; t < w; ++t) {
          wsum += ww[(i * s + j) * w + t];
          if (t >= lengths[i * s + j]) {
            EXPECT_EQ(ww[(i * s + j) * w + t], 0.0);
          }
        }
        EXPECT_NEAR(wsum, j < counts[i] ? 1.0 : 0.0, 1e-12);
      }
      for (int64_t t = 0; t < l; ++t) {
        fsum += fw[i * l + t];
        if (t >= flat[i]) {
          EXPECT_EQ(fw[i * l + t], 0.0);
        }
      }
      EXPECT_NEAR(ssum, 1.0, 1e-12);
      EXPECT_NEAR(fsum, 1.0, 1e-12);
    }
  }
}

TEST(DocumentsModel, ADocumentScoresTheSameAloneAndInABatch) {
  const DocumentBatch batch = SmallBatch();
  EncodedDocument b;
  b.label = 2;
  b.sentences = {{2, 2}};
  const DocumentBatch alone = MakeDocumentBatch({&b});
  for (auto m : {DocumentModelKind::kHan, DocumentModelKind::kFlat, DocumentModelKind::kMean})
    for (auto a : {DocumentAttentionKind::kSingle, DocumentAttentionKind::kStacked}) {
      Generator gen(9);
      DocumentClassifier model(TinyConfig(m, a, DType::kF64), gen);
      NoGradGuard no_grad;
      const std::vector<double> in_batch = model.Forward(batch).logits.ToVector<double>(),
                                single = model.Forward(alone).logits.ToVector<double>();
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(in_batch[3 + c], single[c], 1e-12) << ToString(m) << " " << ToString(a);
    }
}

TEST(DocumentsModel, HanWithSingleAttentionIsTheLibrarysHan) {
  // The same weights in attention::HierarchicalAttentionNetwork give the same word and sentence
  // weights: the task's composition adds the classifier and nothing else.
  Generator gen(11);
  DocumentModelConfig cfg =
      TinyConfig(DocumentModelKind::kHan, DocumentAttentionKind::kSingle, DType::kF64);
  DocumentClassifier model(cfg, gen);
  attention::HierarchicalAttentionNetwork han(cfg.vocab, cfg.embed_dim, cfg.word_hidden,
                                              cfg.sentence_hidden, cfg.attn_dim, gen, 0,
                                              DType::kF64);
  std::map<std::string, Tensor> mine;
  for (auto& [name, p] : model.NamedParameters()) mine[name] = p;
  for (auto& [name, p] : han.NamedParameters()) {
    std::string n = name;
    for (auto [from, to] :
         {std::pair<std::string, std::string>{"word_attention.", "word_pool.attention."},
          {"sentence_attention.", "sentence_pool.attention."}})
      if (n.rfind(from, 0) == 0) n = to + n.substr(from.size());
    ASSERT_TRUE(mine.count(n)) << n;
    p.CopyFrom(mine[n]);
  }
  const DocumentBatch batch = SmallBatch();
  NoGradGuard no_grad;
  DocumentClassifier::Output o = model.Forward(batch);
  auto h = han.Forward(batch.words, batch.word_lengths, batch.sentence_counts);
  const std::vector<double> a = o.word_weights.ToVector<double>(),
                            b = h.word_weights.ToVector<double>();
  const std::vector<double> c = o.sentence_weights.ToVector<double>(),
                            d = h.sentence_weights.ToVector<double>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-14) << i;
  for (size_t i = 0; i < c.size(); ++i) EXPECT_NEAR(c[i], d[i], 1e-14) << i;
}

TEST(DocumentsModel, StackedLayersCountAndBadOptionsAreRefused) {
  // Each stacked layer adds its own projections and v; zero layers and unknown kinds are errors
  // that say what was wrong.
  Generator gen(12);
  DocumentModelConfig cfg =
      TinyConfig(DocumentModelKind::kFlat, DocumentAttentionKind::kStacked, DType::kF64);
  cfg.stacked_layers = 1;
  DocumentClassifier one(cfg, gen);
  cfg.stacked_layers = 3;
  DocumentClassifier three(cfg, gen);
  EXPECT_LT(one.NumParameters(), three.NumParameters());
  cfg.stacked_layers = 0;
  EXPECT_THAT(ThrownMessage([&] { DocumentClassifier bad(cfg, gen); }),
              HasSubstr("stacked layers 0"));
  EXPECT_THAT(ThrownMessage([&] { ParseDocumentModel("cnn"); }), HasSubstr("unknown model 'cnn'"));
  EXPECT_THAT(ThrownMessage([&] { ParseDocumentAttention("double"); }),
              HasSubstr("unknown attention 'double'"));
}

// ---------------------------------------------------------------------------------------------
// Training through the one trainer, and the program.
// ---------------------------------------------------------------------------------------------

TEST(DocumentsTask, LearnsTheFixtureSections) {
  TempDir dir;
  WriteFixtureManDir(dir / "man", 30, 7);
  const DocumentsCorpus corpus = BuildDocumentsCorpus(FixtureOptions(dir / "man"));
  DocumentModelConfig cfg;
  cfg.embed_dim = 16;
  cfg.word_hidden = 12;
  cfg.sentence_hidden = 12;
  cfg.attn_dim = 12;
  DocumentsTask task(corpus, cfg, 3);
  train::TaskTrainOptions o;
  o.out_dir = dir / "run";
  o.batch_size = 16;
  o.lr = 1e-2;
  o.warmup = 10;
  o.max_steps = 120;
  o.valid_every = 60;
  o.log_every = 20;
  o.progress = false;
  o.threads = 1;
  const train::TaskTrainSummary s = train::TrainTask(task, o, false);
  ASSERT_GE(s.curve.size(), 2u);
  // ln 6 = 1.79 at the start; the fixture's sections share no words of their own.
  EXPECT_GT(s.curve.front().second, 1.4);
  EXPECT_LT(s.curve.back().second, 0.3);
  EXPECT_GT(s.best_score, 80.0);
}

TEST(DocumentsProgram, TrainsScoresAndDrawsOnAFixtureDirectory) {
  TempDir dir;
  WriteFixtureManDir(dir / "man", 20, 9);
  const std::string out = dir / "run";
  const auto r = RunCommand(TaskCommand(
      "documents", "--man-dir " + (dir / "man") + " --out " + out +
                       " --max-steps 40 --max-minutes 0 --valid-every 20 --batch-size 8 --threads 1"
                       " --no-progress --embed-dim 8 --word-hidden 6 --sentence-hidden 6"
                       " --attn-dim 6 --min-count 1 --draw 2 --attention stacked"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("documents: train "));
  const std::vector<std::string> lines = attend::testing::Lines(r.output);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), MatchesRegex("documents test accuracy [0-9]+\\.[0-9][0-9] macro-F1 "
                                         "[0-9]+\\.[0-9][0-9] \\(model han, attention stacked\\)"));
  const std::string html = ReadFile(out + "/weights.html");
  EXPECT_THAT(html, HasSubstr("true section"));
  EXPECT_THAT(html, HasSubstr("rgba(220,40,30,"));
  EXPECT_TRUE(fs::exists(out + "/best.ckpt"));

  const auto bad = RunCommand(TaskCommand(
      "documents", "--man-dir " + (dir / "man") + " --out " + out + " --model cnn --max-steps 1"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("attend-documents: error: documents: unknown model 'cnn'"));
  const auto missing = RunCommand(TaskCommand(
      "documents", "--man-dir " + (dir / "nowhere") + " --out " + out + " --max-steps 1"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("attend-documents: error: documents: --man-dir"));
}

}  // namespace
}  // namespace attend::tasks
