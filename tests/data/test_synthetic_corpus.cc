// The synthetic language pair (`attend corpus synthetic`): byte-identical rebuilds for a seed and
// other sentences for another; alignment links in range, each joining a source word to one of its
// lexicon translations, with only particles unaligned on the target side and only "the" and "a"
// on the source side; well-formed trees with one XX per source word; the promised reorderings
// (adjective after noun, verb-final) in a good share of sentences; no sentence repeated across
// or within splits; a disjoint lexicon of a few hundred words per side; errors for bad options.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/metrics.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::data {
namespace {

namespace fs = std::filesystem;
using attend::testing::AttendCommand;
using attend::testing::Lines;
using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::ShellQuote;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using ::testing::HasSubstr;

const char* kSplits[] = {"train", "dev", "test"};
const char* kFiles[] = {"src", "tgt", "align", "tree"};

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

struct Split {
  std::vector<std::string> src, tgt, align, tree;
};

Split ReadSplit(const std::string& dir, const std::string& name) {
  Split s;
  s.src = Lines(ReadFile(dir + "/" + name + ".src"));
  s.tgt = Lines(ReadFile(dir + "/" + name + ".tgt"));
  s.align = Lines(ReadFile(dir + "/" + name + ".align"));
  s.tree = Lines(ReadFile(dir + "/" + name + ".tree"));
  return s;
}

// The lexicon by source word, and the particles.
struct LexiconView {
  std::map<std::string, const SyntheticEntry*> by_src;
  std::set<std::string> particles;
  std::string ClassOf(const std::string& src) const {
    auto it = by_src.find(src);
    return it == by_src.end() ? "" : it->second->cls;
  }
};

LexiconView ViewLexicon() {
  LexiconView v;
  for (const SyntheticEntry& e : SyntheticLexicon()) {
    if (e.cls == "particle") {
      v.particles.insert(e.tgt.at(0));
    } else {
      v.by_src[e.src] = &e;
    }
  }
  return v;
}

class SyntheticCorpus : public ::testing::Test {
 protected:
  // One corpus for the suite (TempDir is per test).
  static void SetUpTestSuite() {
    dir_ = new std::string(
        (fs::temp_directory_path() / ("attend_synthetic_" + std::to_string(::getpid()))).string());
    SyntheticCorpusOptions o;
    o.out_dir = *dir_;
    o.seed = 11;
    o.train = 3000;
    o.dev = 200;
    o.test = 300;
    stats_ = new SyntheticCorpusStats(BuildSyntheticCorpus(o));
    for (int s = 0; s < 3; ++s) splits_[s] = ReadSplit(*dir_, kSplits[s]);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete stats_;
    delete dir_;
  }
  static std::string* dir_;
  static SyntheticCorpusStats* stats_;
  static Split splits_[3];
};
std::string* SyntheticCorpus::dir_ = nullptr;
SyntheticCorpusStats* SyntheticCorpus::stats_ = nullptr;
Split SyntheticCorpus::splits_[3];

TEST_F(SyntheticCorpus, FilesAndCounts) {
  const int64_t wanted[3] = {3000, 200, 300};
  for (int s = 0; s < 3; ++s) {
    const Split& sp = splits_[s];
    EXPECT_EQ(static_cast<int64_t>(sp.src.size()), wanted[s]) << kSplits[s];
    EXPECT_EQ(sp.tgt.size(), sp.src.size());
    EXPECT_EQ(sp.align.size(), sp.src.size());
    EXPECT_EQ(sp.tree.size(), sp.src.size());
    EXPECT_EQ(stats_->sentences[s], wanted[s]);
    int64_t src_words = 0, tgt_words = 0, links = 0;
    for (size_t i = 0; i < sp.src.size(); ++i) {
      src_words += static_cast<int64_t>(Words(sp.src[i]).size());
      tgt_words += static_cast<int64_t>(Words(sp.tgt[i]).size());
      links += static_cast<int64_t>(metrics::ParsePharaoh(sp.align[i], "align").size());
      // Single spaces, no ends.
      EXPECT_EQ(sp.src[i].find("  "), std::string::npos);
      EXPECT_NE(sp.src[i].front(), ' ');
      EXPECT_NE(sp.tgt[i].back(), ' ');
    }
    EXPECT_EQ(stats_->src_words[s], src_words);
    EXPECT_EQ(stats_->tgt_words[s], tgt_words);
    EXPECT_EQ(stats_->links[s], links);
  }
  for (const char* f : {"lexicon.tsv", "README.txt", "stats.json"}) {
    EXPECT_FALSE(ReadFile(*dir_ + "/" + f).empty()) << f;
  }
  EXPECT_THAT(ReadFile(*dir_ + "/README.txt"), HasSubstr("verbs end their clause"));
  EXPECT_THAT(ReadFile(*dir_ + "/stats.json"), HasSubstr("\"corpus\": \"synthetic\""));
}

TEST_F(SyntheticCorpus, AlignmentsAreTheTrueLinks) {
  const LexiconView lex = ViewLexicon();
  for (const Split& sp : splits_) {
    for (size_t i = 0; i < sp.src.size(); ++i) {
      const std::vector<std::string> src = Words(sp.src[i]), tgt = Words(sp.tgt[i]);
      const metrics::AlignmentLinks links = metrics::ParsePharaoh(sp.align[i], "align");
      std::vector<int> src_links(src.size(), 0), tgt_links(tgt.size(), 0);
      for (const auto& [s, t] : links) {
        ASSERT_GE(s, 0);
        ASSERT_LT(s, static_cast<int64_t>(src.size())) << sp.src[i] << " | " << sp.align[i];
        ASSERT_GE(t, 0);
        ASSERT_LT(t, static_cast<int64_t>(tgt.size())) << sp.tgt[i] << " | " << sp.align[i];
        ++src_links[s];
        ++tgt_links[t];
        // The target word is one of the source word's translations.
        const auto it = lex.by_src.find(src[s]);
        ASSERT_NE(it, lex.by_src.end()) << src[s];
        const std::vector<std::string>& tr = it->second->tgt;
        EXPECT_NE(std::find(tr.begin(), tr.end(), tgt[t]), tr.end()) << src[s] << " -> " << tgt[t];
      }
      // Sorted as written: source first, then target.
      EXPECT_TRUE(std::is_sorted(links.begin(), links.end())) << sp.align[i];
      for (size_t t = 0; t < tgt.size(); ++t) {
        EXPECT_LE(tgt_links[t], 1);  // no many-to-one
        if (tgt_links[t] == 0) {
          EXPECT_TRUE(lex.particles.count(tgt[t])) << tgt[t];
        }
        if (lex.particles.count(tgt[t])) {
          EXPECT_EQ(tgt_links[t], 0);
        }
      }
      for (size_t s = 0; s < src.size(); ++s) {
        const auto it = lex.by_src.find(src[s]);
        ASSERT_NE(it, lex.by_src.end()) << src[s];
        // Every source word links to all its translations; "the" and "a" to none.
        EXPECT_EQ(src_links[s], static_cast<int>(it->second->tgt.size())) << src[s];
      }
    }
  }
}

TEST_F(SyntheticCorpus, TreesAreWellFormedWithOneLeafPerWord) {
  const std::set<std::string> labels = {"(S", "(NP", "(VP", "(PP", "(SBAR", ")", "XX"};
  for (const Split& sp : splits_) {
    for (size_t i = 0; i < sp.src.size(); ++i) {
      int64_t leaves = 0;
      for (const std::string& tok : Words(sp.tree[i])) {
        EXPECT_TRUE(labels.count(tok)) << tok;
        leaves += tok == "XX";
      }
      const size_t n = Words(sp.src[i]).size();
      EXPECT_EQ(leaves, static_cast<int64_t>(n)) << sp.tree[i];
      EXPECT_GE(n, 3u);
      EXPECT_LE(n, 30u);
      EXPECT_EQ(sp.tree[i].rfind("(S ", 0), 0u) << sp.tree[i];
    }
    // Against itself: every tree reads as a well-formed reference, F1 1, all exact.
    const metrics::BracketScore b = metrics::BracketF1(sp.tree, sp.tree);
    EXPECT_EQ(b.f1, 1.0);
    EXPECT_EQ(b.exact, static_cast<int64_t>(sp.tree.size()));
    EXPECT_EQ(b.ill_formed, 0);
  }
}

// The [first, last) word spans of a tree's VPs.
std::vector<std::pair<int64_t, int64_t>> VerbPhraseSpans(const std::string& tree) {
  std::vector<std::pair<int64_t, int64_t>> spans;
  std::vector<std::pair<bool, int64_t>> open;  // (is VP, first word)
  int64_t words = 0;
  for (const std::string& tok : Words(tree)) {
    if (tok[0] == '(') {
      open.emplace_back(tok == "(VP", words);
    } else if (tok == ")") {
      if (open.back().first) spans.emplace_back(open.back().second, words);
      open.pop_back();
    } else {
      ++words;
    }
  }
  return spans;
}

TEST_F(SyntheticCorpus, ReorderingHappens) {
  const LexiconView lex = ViewLexicon();
  int64_t sentences = 0, swapped = 0, verb_moved = 0, relatives = 0, compounds = 0, longest = 0;
  std::set<size_t> lengths;
  for (const Split& sp : splits_) {
    for (size_t i = 0; i < sp.src.size(); ++i) {
      ++sentences;
      const std::vector<std::string> src = Words(sp.src[i]), tgt = Words(sp.tgt[i]);
      const std::string pair = sp.src[i] + " | " + sp.tgt[i];
      lengths.insert(src.size());
      longest = std::max(longest, static_cast<int64_t>(src.size()));
      std::map<int64_t, std::vector<int64_t>> to_tgt;
      for (const auto& [s, t] : metrics::ParsePharaoh(sp.align[i], "align")) to_tgt[s].push_back(t);
      bool swap = false, moved = false, compound = false;
      for (size_t s = 0; s + 1 < src.size(); ++s) {
        const std::string c = lex.ClassOf(src[s]), next = lex.ClassOf(src[s + 1]);
        // An adjective right before its noun lands after it; two adjectives trade places.
        if (c == "adj" && (next == "noun" || next == "adj")) {
          EXPECT_GT(to_tgt[s].front(), to_tgt[s + 1].back()) << pair;
          swap = true;
        }
        relatives += c == "rel";
      }
      for (const auto& [s, ts] : to_tgt) compound |= ts.size() == 2;
      // Each verb comes after every word of its verb phrase (object, PP, relative clauses in
      // them) in the target.
      for (const auto& [first, last] : VerbPhraseSpans(sp.tree[i])) {
        const std::string c = lex.ClassOf(src[first]);
        ASSERT_TRUE(c == "vt" || c == "vi") << pair;
        for (int64_t s = first + 1; s < last; ++s) {
          for (int64_t t : to_tgt[s]) EXPECT_LT(t, to_tgt[first].front()) << pair;
        }
        moved |= last - first > 1;
      }
      swapped += swap;
      verb_moved += moved;
      compounds += compound;
      // The main verb ends the target sentence.
      const int64_t last = static_cast<int64_t>(tgt.size()) - 1;
      bool verb_last = false;
      for (const auto& [s, ts] : to_tgt) {
        const std::string c = lex.ClassOf(src[s]);
        for (int64_t t : ts) verb_last |= t == last && (c == "vt" || c == "vi");
      }
      EXPECT_TRUE(verb_last) << pair;
    }
  }
  // Shares of 3,500 sentences: an adjective in ~70% (0.45 per noun phrase, ~2.5 noun phrases a
  // sentence), a verb moved in ~65%, relative clauses and compound nouns in a good share too.
  EXPECT_GT(swapped, sentences / 2);
  EXPECT_GT(verb_moved, sentences / 2);
  EXPECT_GT(relatives, sentences / 10);
  EXPECT_GT(compounds, sentences / 20);
  // The stats agree with the files.
  EXPECT_EQ(stats_->with_adjective, swapped);
  EXPECT_EQ(stats_->with_verb_moved, verb_moved);
  EXPECT_EQ(stats_->with_compound, compounds);
  // Lengths spread over the range, up to the limit.
  EXPECT_TRUE(lengths.count(3));
  EXPECT_GE(longest, 25);
  EXPECT_GE(lengths.size(), 20u);
}

TEST_F(SyntheticCorpus, NoSentenceRepeats) {
  std::set<std::string> train(splits_[0].src.begin(), splits_[0].src.end());
  EXPECT_EQ(train.size(), splits_[0].src.size());
  std::set<std::string> held;
  for (int s = 1; s < 3; ++s) {
    for (const std::string& line : splits_[s].src) {
      EXPECT_FALSE(train.count(line)) << kSplits[s] << ": " << line;
      EXPECT_TRUE(held.insert(line).second) << kSplits[s] << ": " << line;
    }
  }
}

TEST(SyntheticLexicon, DisjointPronounceableVocabularies) {
  std::set<std::string> src, tgt;
  for (const SyntheticEntry& e : SyntheticLexicon()) {
    if (!e.src.empty()) {
      EXPECT_TRUE(src.insert(e.src).second) << e.src;
    }
    for (const std::string& t : e.tgt) EXPECT_TRUE(tgt.insert(t).second) << t;
  }
  for (const std::set<std::string>* side : {&src, &tgt}) {
    for (const std::string& w : *side) {
      EXPECT_FALSE(w.empty());
      for (char c : w) EXPECT_TRUE(c >= 'a' && c <= 'z') << w;
    }
  }
  for (const std::string& w : src) EXPECT_FALSE(tgt.count(w)) << w << " is on both sides";
  EXPECT_GE(src.size(), 250u);
  EXPECT_LE(src.size(), 400u);
  EXPECT_GE(tgt.size(), 250u);
  EXPECT_LE(tgt.size(), 450u);
}

std::map<std::string, std::string> ReadAll(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const char* s : kSplits)
    for (const char* f : kFiles) {
      const std::string name = std::string(s) + "." + f;
      out[name] = ReadFile(dir + "/" + name);
    }
  for (const char* f : {"lexicon.tsv", "README.txt", "stats.json"}) {
    out[f] = ReadFile(dir + "/" + f);
  }
  return out;
}

TEST(SyntheticCorpusBuild, DeterministicBySeed) {
  TempDir dir;
  const std::string a = dir / "a", b = dir / "b", c = dir / "c", d = dir / "d";
  SyntheticCorpusOptions o;
  o.train = 300;
  o.dev = 30;
  o.test = 40;
  o.seed = 5;
  o.out_dir = a;
  BuildSyntheticCorpus(o);
  o.out_dir = b;
  BuildSyntheticCorpus(o);
  o.seed = 6;
  o.out_dir = c;
  BuildSyntheticCorpus(o);
  const auto fa = ReadAll(a), fb = ReadAll(b), fc = ReadAll(c);
  EXPECT_EQ(fa, fb);
  for (const auto& [name, bytes] : fa) {
    EXPECT_FALSE(bytes.empty()) << name;
    if (name == "lexicon.tsv") {
      EXPECT_EQ(bytes, fc.at(name));  // the language does not depend on the seed
    } else if (name != "README.txt" && name != "stats.json") {
      EXPECT_NE(bytes, fc.at(name)) << name;
    }
  }
  // Test is drawn first: a smaller --test is a prefix, whatever --train is.
  o.seed = 5;
  o.train = 50;
  o.test = 10;
  o.out_dir = d;
  BuildSyntheticCorpus(o);
  const std::vector<std::string> small = Lines(ReadFile(d + "/test.src"));
  const std::vector<std::string> large = Lines(fa.at("test.src"));
  ASSERT_EQ(small.size(), 10u);
  EXPECT_TRUE(std::equal(small.begin(), small.end(), large.begin()));
}

TEST(SyntheticCorpusBuild, ShortAndFlatSentences) {
  TempDir dir;
  SyntheticCorpusOptions o;
  o.out_dir = dir.path().string();
  o.train = 200;
  o.dev = 0;
  o.test = 0;
  o.max_words = 6;
  o.max_depth = 0;
  const SyntheticCorpusStats st = BuildSyntheticCorpus(o);
  EXPECT_EQ(st.sentences[0], 200);
  EXPECT_LE(st.longest, 6);
  EXPECT_EQ(st.with_relative, 0);
  EXPECT_TRUE(ReadFile(dir / "dev.src").empty());
  for (const std::string& tree : Lines(ReadFile(dir / "train.tree"))) {
    EXPECT_EQ(tree.find("(PP"), std::string::npos) << tree;
    EXPECT_EQ(tree.find("(SBAR"), std::string::npos) << tree;
  }
}

TEST(SyntheticCorpusBuild, BadOptions) {
  TempDir dir;
  auto build = [&dir](auto change) {
    SyntheticCorpusOptions o;
    o.out_dir = dir.path().string();
    o.train = 10;
    o.dev = 1;
    o.test = 1;
    change(o);
    return ThrownMessage([&o] { BuildSyntheticCorpus(o); });
  };
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) { o.out_dir.clear(); }),
              HasSubstr("give an output directory"));
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) { o.train = 0; }),
              HasSubstr("--train must be in [1, 10000000], got 0"));
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) { o.dev = -1; }),
              HasSubstr("--dev must be in [0, 10000000], got -1"));
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) { o.test = 20'000'000; }),
              HasSubstr("--test must be in"));
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) { o.max_words = 2; }),
              HasSubstr("--max-words must be in [3, 200]"));
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) { o.max_depth = 7; }),
              HasSubstr("--max-depth must be in [0, 6], got 7"));
  // More distinct three-word sentences than the grammar has (6 determiners x 140 nouns x 30
  // intransitive verbs).
  EXPECT_THAT(build([](SyntheticCorpusOptions& o) {
                o.train = 30000;
                o.max_words = 3;
                o.max_depth = 0;
              }),
              HasSubstr("distinct train sentences of at most 3 words"));
  // Nothing was written by the failed builds.
  EXPECT_TRUE(ReadFile(dir / "train.src").empty());
  // A file where the directory should be.
  attend::testing::WriteFile(dir / "file", "x");
  EXPECT_THAT(build([&dir](SyntheticCorpusOptions& o) { o.out_dir = dir / "file"; }),
              HasSubstr("cannot create -o"));
}

TEST(SyntheticCorpusCli, BuildsAndPrintsCounts) {
  TempDir dir;
  const std::string out = dir / "corpus";
  auto r = RunCommand(AttendCommand("corpus synthetic -o " + ShellQuote(out) +
                                    " --train 120 --dev 10 --test 20 --seed 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("attend corpus synthetic: train 120, dev 10, test 20 sentence "
                                  "pairs (seed 3)"));
  EXPECT_THAT(r.output, HasSubstr("adjective after its noun"));
  EXPECT_EQ(Lines(ReadFile(out + "/dev.tgt")).size(), 10u);
  r = RunCommand(AttendCommand("corpus synthetic -o " + ShellQuote(out) + " --train 0"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("--train must be in [1, 10000000], got 0"));
  r = RunCommand(AttendCommand("corpus synthetic --train 10"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--out"));
}

}  // namespace
}  // namespace attend::data
