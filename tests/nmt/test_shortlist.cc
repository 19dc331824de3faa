// The lexical shortlist: IBM model 1 finds known translations and never lowers its likelihood,
// Targets() is exactly the union it promises, the text file round-trips and every malformed
// line is refused with its number, and a shortlist refuses another vocabulary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/shortlist.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend {
namespace {

using attend::testing::ThrownMessage;
using ::testing::HasSubstr;
using Ids = std::vector<std::vector<int64_t>>;

constexpr const char* kDigest = "0a1b2c3d";

struct Corpus {
  Ids sources, targets;
  std::map<int64_t, int64_t> translation;  // source word -> its target word
};

// Sentences of source words 4..4+words-1, each translated word for word by a fixed random
// bijection onto target ids, the target words shuffled, plus a random noise token now and then.
Corpus DictionaryCorpus(uint32_t seed, int pairs, int64_t words, int64_t vocab_size) {
  std::mt19937 rng(seed);
  std::vector<int64_t> target_ids;
  for (int64_t t = 4; t < vocab_size; ++t) target_ids.push_back(t);
  std::shuffle(target_ids.begin(), target_ids.end(), rng);
  Corpus c;
  for (int64_t w = 0; w < words; ++w) c.translation[4 + w] = target_ids[w];
  std::uniform_int_distribution<int64_t> word(4, 4 + words - 1), length(1, 7),
      any(4, vocab_size - 1);
  std::bernoulli_distribution noise(0.15);
  for (int p = 0; p < pairs; ++p) {
    std::vector<int64_t> s(length(rng)), t;
    for (int64_t& id : s) id = word(rng);
    for (int64_t id : s) t.push_back(c.translation[id]);
    std::shuffle(t.begin(), t.end(), rng);
    if (noise(rng)) t.insert(t.begin() + static_cast<int64_t>(rng() % (t.size() + 1)), any(rng));
    c.sources.push_back(s);
    c.targets.push_back(t);
  }
  return c;
}

// Unstructured pairs over the whole vocabulary (unk included), empty sides now and then.
Corpus RandomCorpus(uint32_t seed, int pairs, int64_t vocab_size) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> id(1, vocab_size - 1), length(0, 9);
  Corpus c;
  for (int p = 0; p < pairs; ++p) {
    std::vector<int64_t> s(length(rng)), t(length(rng));
    for (int64_t& x : s) x = id(rng);
    for (int64_t& x : t) x = id(rng);
    c.sources.push_back(s);
    c.targets.push_back(t);
  }
  return c;
}

nmt::ShortlistOptions Options(int64_t frequent, int64_t per_source, int64_t iterations) {
  nmt::ShortlistOptions o;
  o.frequent = frequent;
  o.per_source = per_source;
  o.iterations = iterations;
  return o;
}

TEST(Shortlist, TinyCorpusGivesTheKnownTranslationsFirst) {
  // a b -> x y, a c -> x z, b c -> y z: each source word's own translation co-occurs with it twice.
  const int64_t a = 4, b = 5, c = 6, x = 7, y = 8, z = 9;
  const Ids sources = {{a, b}, {a, c}, {b, c}}, targets = {{x, y}, {x, z}, {y, z}};
  for (int64_t iterations : {1, 5, 20}) {
    SCOPED_TRACE(iterations);
    const auto sl = nmt::Shortlist::Build(sources, targets, 10, kDigest, Options(0, 3, iterations));
    EXPECT_EQ(sl.candidates(a).front(), x);
    EXPECT_EQ(sl.candidates(b).front(), y);
    EXPECT_EQ(sl.candidates(c).front(), z);
    EXPECT_EQ(sl.candidates(a).size(), 3u);  // x, y, z all co-occur with a
    EXPECT_TRUE(sl.candidates(x).empty());   // never a source
    EXPECT_TRUE(sl.frequent().empty());
    EXPECT_EQ(sl.sources(), (std::vector<int64_t>{a, b, c}));
  }
}

TEST(Shortlist, RecoversAWordForWordDictionary) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE(seed);
    const Corpus corpus = DictionaryCorpus(seed, 400, 30, 60);
    const auto sl =
        nmt::Shortlist::Build(corpus.sources, corpus.targets, 60, kDigest, Options(5, 4, 5));
    std::map<int64_t, int> seen;
    for (const auto& s : corpus.sources)
      for (int64_t id : s) ++seen[id];
    int checked = 0;
    for (const auto& [source, target] : corpus.translation) {
      if (seen[source] < 5) continue;
      ASSERT_FALSE(sl.candidates(source).empty()) << source;
      EXPECT_EQ(sl.candidates(source).front(), target) << "source " << source;
      ++checked;
    }
    EXPECT_GE(checked, 25);
  }
}

TEST(Shortlist, LikelihoodNeverDecreases) {
  std::vector<Corpus> corpora;
  for (uint32_t seed : {11u, 12u, 13u}) corpora.push_back(RandomCorpus(seed, 300, 40));
  corpora.push_back(DictionaryCorpus(14, 300, 25, 50));
  for (const Corpus& corpus : corpora) {
    std::vector<double> ll;
    nmt::Shortlist::Build(corpus.sources, corpus.targets, 60, kDigest, Options(3, 5, 12), &ll);
    ASSERT_EQ(ll.size(), 13u);
    for (size_t k = 0; k + 1 < ll.size(); ++k) {
      EXPECT_TRUE(std::isfinite(ll[k]));
      EXPECT_GE(ll[k + 1], ll[k] - 1e-9 * std::abs(ll[k])) << "iteration " << k + 1;
    }
    EXPECT_GT(ll.back(), ll.front());
  }
  // The values depend on the corpus alone: a second build gives them again, bit for bit.
  std::vector<double> again, first;
  const Corpus& c = corpora.back();
  nmt::Shortlist::Build(c.sources, c.targets, 60, kDigest, Options(3, 5, 4), &first);
  nmt::Shortlist::Build(c.sources, c.targets, 60, kDigest, Options(3, 5, 4), &again);
  EXPECT_EQ(first, again);
}

TEST(Shortlist, ListsHoldCoOccurringTargetsAndTheMostFrequent) {
  const int64_t v = 40;
  const Corpus corpus = RandomCorpus(21, 200, v);
  const auto sl =
      nmt::Shortlist::Build(corpus.sources, corpus.targets, v, kDigest, Options(6, 4, 3));
  std::map<int64_t, std::set<int64_t>> co;
  std::map<int64_t, int64_t> count;
  for (size_t p = 0; p < corpus.sources.size(); ++p) {
    for (int64_t t : corpus.targets[p]) ++count[t];
    for (int64_t s : corpus.sources[p])
      for (int64_t t : corpus.targets[p])
        if (t >= 4) co[s].insert(t);
  }
  // Frequent: the 6 most frequent target ids above 3, ties to the lower id.
  std::vector<std::pair<int64_t, int64_t>> by_count;
  for (const auto& [t, n] : count)
    if (t >= 4) by_count.emplace_back(-n, t);
  std::sort(by_count.begin(), by_count.end());
  std::vector<int64_t> expected;
  for (size_t i = 0; i < 6; ++i) expected.push_back(by_count[i].second);
  EXPECT_EQ(sl.frequent(), expected);
  // Every source id with a co-occurring target has a list of min(4, co-occurring) of them.
  std::vector<int64_t> with;
  for (const auto& [s, targets] : co) {
    with.push_back(s);
    const auto& list = sl.candidates(s);
    EXPECT_EQ(list.size(), std::min<size_t>(4, targets.size())) << s;
    EXPECT_EQ(std::set<int64_t>(list.begin(), list.end()).size(), list.size()) << s;
    for (int64_t t : list) EXPECT_TRUE(targets.count(t)) << s << " -> " << t;
  }
  EXPECT_EQ(sl.sources(), with);
  EXPECT_THAT(ThrownMessage([&] { sl.candidates(v); }), HasSubstr("outside the vocabulary"));
}

TEST(Shortlist, TargetsIsTheSortedUnionOfTheSpecialFrequentAndListedIds) {
  const int64_t v = 50;
  const Corpus corpus = RandomCorpus(31, 150, v);
  const auto sl =
      nmt::Shortlist::Build(corpus.sources, corpus.targets, v, kDigest, Options(5, 3, 4));
  std::mt19937 rng(32);
  for (int trial = 0; trial < 60; ++trial) {
    Ids batch(rng() % 5);
    for (auto& s : batch) {
      s.resize(rng() % 8);
      for (int64_t& id : s) id = static_cast<int64_t>(rng() % v);
    }
    const std::vector<int64_t> got = sl.Targets(batch);
    std::set<int64_t> union_ids = {0, 1, 2, 3};
    union_ids.insert(sl.frequent().begin(), sl.frequent().end());
    for (const auto& s : batch)
      for (int64_t id : s) union_ids.insert(sl.candidates(id).begin(), sl.candidates(id).end());
    EXPECT_EQ(got, std::vector<int64_t>(union_ids.begin(), union_ids.end()));
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
    EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
    for (int64_t id : {0, 1, 2, 3}) EXPECT_TRUE(std::binary_search(got.begin(), got.end(), id));
  }
  EXPECT_EQ(sl.Targets({}).size(), 4 + sl.frequent().size());
  EXPECT_THAT(ThrownMessage([&] {
                sl.Targets({{4, 5}, {6, v}});
              }),
              HasSubstr("sentence 1, position 1: source id 50 is outside the vocabulary"));
}

TEST(Shortlist, MeasureCoverageCountsEachBatchsUnion) {
  const int64_t v = 50;
  const Corpus corpus = RandomCorpus(41, 150, v);
  const auto sl =
      nmt::Shortlist::Build(corpus.sources, corpus.targets, v, kDigest, Options(5, 3, 2));
  const Ids dev(corpus.sources.begin(), corpus.sources.begin() + 7);
  const Ids refs(corpus.targets.begin(), corpus.targets.begin() + 7);
  const auto c = nmt::MeasureCoverage(sl, dev, refs, 3);  // batches of 3, 3, 1
  double size = 0;
  int64_t tokens = 0, inside = 0;
  for (size_t start = 0; start < 7; start += 3) {
    const Ids batch(dev.begin() + start, dev.begin() + std::min<size_t>(7, start + 3));
    const auto t = sl.Targets(batch);
    size += static_cast<double>(t.size());
    for (size_t i = start; i < std::min<size_t>(7, start + 3); ++i)
      for (int64_t id : refs[i]) {
        ++tokens;
        inside += std::binary_search(t.begin(), t.end(), id);
      }
  }
  EXPECT_EQ(c.sentences, 7);
  EXPECT_EQ(c.batches, 3);
  EXPECT_DOUBLE_EQ(c.mean_targets, size / 3);
  EXPECT_DOUBLE_EQ(c.mean_share, size / 3 / v);
  EXPECT_DOUBLE_EQ(c.reference_recall, static_cast<double>(inside) / tokens);
  EXPECT_EQ(nmt::MeasureCoverage(sl, dev, {}, 3).reference_recall, -1.0);
  EXPECT_THAT(ThrownMessage([&] { nmt::MeasureCoverage(sl, dev, {{4}}, 3); }),
              HasSubstr("7 sources but 1 references"));
}

TEST(Shortlist, TextRoundTrips) {
  const Corpus corpus = DictionaryCorpus(51, 200, 20, 40);
  const auto sl =
      nmt::Shortlist::Build(corpus.sources, corpus.targets, 40, kDigest, Options(4, 3, 5));
  const std::string text = sl.ToText();
  EXPECT_EQ(text.rfind("attend-shortlist 1 vocab_size=40 digest=0a1b2c3d frequent=4 per_source=3 "
                       "iterations=5\nfrequent\t",
                       0),
            0u)
      << text;
  const auto parsed = nmt::Shortlist::Parse(text, "mem");
  EXPECT_TRUE(parsed == sl);
  EXPECT_EQ(parsed.ToText(), text);
  EXPECT_EQ(parsed.options().per_source, 3);

  testing::TempDir dir;
  sl.Save(dir / "sl.txt");
  EXPECT_EQ(testing::ReadFile(dir / "sl.txt"), text);
  EXPECT_TRUE(nmt::Shortlist::Load(dir / "sl.txt") == sl);
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Load(dir / "missing.txt"); }),
              HasSubstr("missing.txt: cannot open the file"));

  // Lines in another order, without the last newline, read as the same shortlist.
  std::string reordered =
      "attend-shortlist 1 vocab_size=10 digest=ff frequent=2 per_source=2 "
      "iterations=1\nfrequent\t\n9\t4 5\n5\t6";
  const auto r = nmt::Shortlist::Parse(reordered, "mem");
  EXPECT_EQ(r.sources(), (std::vector<int64_t>{5, 9}));
  EXPECT_EQ(r.candidates(9), (std::vector<int64_t>{4, 5}));
  EXPECT_TRUE(r.frequent().empty());
  EXPECT_TRUE(nmt::Shortlist::Parse(r.ToText(), "again") == r);
}

// The fuzz target's seeds (fuzz/make_seeds.sh) are shortlists; written.txt as ToText writes it.
TEST(Shortlist, FuzzSeedsRead) {
  const std::string dir = std::string(ATTEND_SOURCE_DIR) + "/fuzz/corpus/shortlist/";
  const auto written = nmt::Shortlist::Load(dir + "written.txt");
  EXPECT_EQ(written.ToText(), testing::ReadFile(dir + "written.txt"));
  EXPECT_EQ(written.candidates(5), (std::vector<int64_t>{9, 4}));
  const auto any = nmt::Shortlist::Load(dir + "any-order.txt");
  EXPECT_EQ(any.sources(), (std::vector<int64_t>{12, 7999}));
}

TEST(Shortlist, ParseRefusesMalformedLinesNamingThem) {
  const std::string header =
      "attend-shortlist 1 vocab_size=10 digest=0a1b2c3d frequent=2 per_source=3 iterations=5\n";
  const std::string good = header + "frequent\t4 5\n4\t7 8\n6\t9\n";
  ASSERT_NO_THROW(nmt::Shortlist::Parse(good, "t.sl"));
  struct Case {
    std::string text;
    int line;
    std::string message;
  };
  const std::string h = "attend-shortlist 1 vocab_size=10 digest=0a1b2c3d frequent=2 per_source=3";
  const std::vector<Case> cases = {
      {"", 1, "empty, no header line"},
      {"attend-shortlis 1 vocab_size=10\nfrequent\t\n", 1, "not a shortlist"},
      {"attend-shortlist 2 vocab_size=10\n", 1, "version 2 is not supported"},
      {"attend-shortlist x vocab_size=10\n", 1, "the version 'x' is not a number"},
      {"attend-shortlist\n", 1, "the header has no version"},
      {h + "\nfrequent\t\n", 1, "the header ends after 6 fields; expected 'iterations=...'"},
      {h + " iterations=5 extra\nfrequent\t\n", 1,
       "trailing characters after the header: ' extra'"},
      {h + " iterations=5 \nfrequent\t\n", 1, "trailing characters after the header: ' '"},
      {"attend-shortlist 1 vocab=10 digest=0a frequent=2 per_source=3 iterations=5\n", 1,
       "expected 'vocab_size=...' as field 3 of the header, found 'vocab=10'"},
      {"attend-shortlist 1 vocab_size=10 digest=0A frequent=2 per_source=3 iterations=5\n", 1,
       "the digest '0A' is not 1 to 64 lowercase hex digits"},
      {"attend-shortlist 1 vocab_size=4 digest=0a frequent=2 per_source=3 iterations=5\n", 1,
       "vocab_size 4 is not in 5.."},
      {"attend-shortlist 1 vocab_size=10 digest=0a frequent=-2 per_source=3 iterations=5\n", 1,
       "frequent '-2' is not a number"},
      {"attend-shortlist 1 vocab_size=10 digest=0a frequent=2 per_source=3 iterations=0\n", 1,
       "iterations must be >= 1"},
      {header, 2, "missing the 'frequent<TAB>ids' line"},
      {header + "frequnt\t4\n", 2, "expected 'frequent<TAB>ids', found 'frequnt\t4'"},
      {header + "frequent 4 5\n", 2, "expected 'frequent<TAB>ids'"},
      {header + "frequent\t4 5 6\n", 2, "3 target ids, more than the header's frequent=2"},
      {header + "frequent\t4 4\n", 2, "target id 4 is listed twice"},
      {header + "frequent\t4\n4\t7 10\n", 3, "target id 10 is outside the vocabulary (10 ids)"},
      {header + "frequent\t4\n4\t7 3\n", 3, "target id 3 is one of the special ids 0..3"},
      {header + "frequent\t4\n10\t7\n", 3, "source id 10 is outside the vocabulary"},
      {header + "frequent\t4\n-4\t7\n", 3, "source id '-4' is not a number"},
      {header + "frequent\t4\n4\t7 8\n6\t9\n4\t5\n", 5,
       "a second line for source id 4 (the first is line 3)"},
      {header + "frequent\t4\n4\t7 x8\n", 3, "target id 'x8' is not a number"},
      {header + "frequent\t4\n4\t7 8 \n", 3, "expected target ids separated by single spaces"},
      {header + "frequent\t4\n4\t7  8\n", 3, "expected target ids separated by single spaces"},
      {header + "frequent\t4\n4\t 7\n", 3, "expected target ids separated by single spaces"},
      {header + "frequent\t4\n4\t7\t8\n", 3, "target id '7\t8' is not a number"},
      {header + "frequent\t4\n4\t7\r\n", 3, "is not a number"},
      {header + "frequent\t4\n4\t7 8 9 5\n", 3,
       "4 target ids, more than the header's per_source=3"},
      {header + "frequent\t4\n4\t7 7\n", 3, "target id 7 is listed twice"},
      {header + "frequent\t4\n4\t\n", 3, "source id 4 has no target ids"},
      {header + "frequent\t4\n4 7 8\n", 3, "expected '<source id><TAB><target ids>'"},
      {header + "frequent\t4\n\n4\t7\n", 3, "an empty line"},
      {header + "frequent\t4\n4\t7\n\n", 4, "an empty line"},
      {header + "frequent\t4\n4\t99999999999999999999\n", 3, "is not a number (or too large)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string message = ThrownMessage([&] { nmt::Shortlist::Parse(c.text, "t.sl"); });
    EXPECT_THAT(message, HasSubstr("shortlist t.sl:" + std::to_string(c.line) + ": "));
    EXPECT_THAT(message, HasSubstr(c.message));
  }
}

TEST(Shortlist, RefusesAnotherVocabulary) {
  const Corpus corpus = RandomCorpus(61, 50, 30);
  const auto sl =
      nmt::Shortlist::Build(corpus.sources, corpus.targets, 30, kDigest, Options(2, 2, 2));
  EXPECT_NO_THROW(sl.CheckVocabulary(30, kDigest));
  EXPECT_THAT(ThrownMessage([&] { sl.CheckVocabulary(30, "0a1b2c3e"); }),
              HasSubstr("shortlist was built for another vocabulary (30 pieces, digest 0a1b2c3d), "
                        "not this one (30 pieces, digest 0a1b2c3e)"));
  EXPECT_THAT(ThrownMessage([&] { sl.CheckVocabulary(31, kDigest); }),
              HasSubstr("another vocabulary"));
  const auto read = nmt::Shortlist::Parse(sl.ToText(), "runs/x/sl.txt");
  EXPECT_THAT(ThrownMessage([&] { read.CheckVocabulary(30, "ffffffff"); }),
              HasSubstr("shortlist runs/x/sl.txt was built for another vocabulary"));
}

TEST(Shortlist, VocabularyDigestIsCrc32InHex) {
  EXPECT_EQ(nmt::VocabularyDigest(""), "00000000");
  EXPECT_EQ(nmt::VocabularyDigest("123456789"), "cbf43926");  // CRC-32's check value
  EXPECT_NE(nmt::VocabularyDigest("vocab a"), nmt::VocabularyDigest("vocab b"));
}

TEST(Shortlist, BuildRefusesBadInput) {
  const Ids s = {{4, 5}}, t = {{6}};
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Build(s, {}, 10, kDigest, {}); }),
              HasSubstr("1 sources but 0 targets"));
  EXPECT_THAT(ThrownMessage([&] {
                nmt::Shortlist::Build({{4, 10}}, t, 10, kDigest, {});
              }),
              HasSubstr("source 0, position 1: id 10 is outside the vocabulary (10 ids)"));
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Build(s, {{-1}}, 10, kDigest, {}); }),
              HasSubstr("target 0, position 0: id -1 is outside the vocabulary"));
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Build(s, t, 4, kDigest, {}); }),
              HasSubstr("vocab_size 4 is not in 5.."));
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Build(s, t, 10, "", {}); }),
              HasSubstr("not 1 to 64 lowercase hex digits"));
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Build(s, t, 10, kDigest, Options(-1, 1, 1)); }),
              HasSubstr("frequent must be >= 0"));
  EXPECT_THAT(ThrownMessage([&] { nmt::Shortlist::Build(s, t, 10, kDigest, Options(1, 1, 0)); }),
              HasSubstr("iterations must be >= 1"));
  // Empty pairs and no pairs at all are fine: nothing to list.
  const auto empty = nmt::Shortlist::Build({{}, {}}, {{}, {}}, 10, kDigest, {});
  EXPECT_TRUE(empty.sources().empty());
  EXPECT_EQ(empty.Targets({{4, 5}}), (std::vector<int64_t>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace attend
