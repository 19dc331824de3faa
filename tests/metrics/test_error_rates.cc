// Word and character error rates: hand-worked alignments, empty lines and whitespace, Unicode
// characters, the output line and JSON; a property test against an exhaustive search of every
// edit script; corpus counts against an independent Python count (error_rate_reference.py); and
// `attend score --metrics wer,cer` from the command line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "attend/error.h"
#include "attend/metrics.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::metrics {
namespace {

using attend::testing::AttendCommand;
using attend::testing::CommandResult;
using attend::testing::RunCommand;
using attend::testing::ShellQuote;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using ::testing::HasSubstr;

ErrorCounts Wer(const std::string& hyp, const std::string& ref, const ErrorRateOptions& o = {}) {
  return WordErrorRate({hyp}, {ref}, o).counts;
}
ErrorCounts Cer(const std::string& hyp, const std::string& ref, const ErrorRateOptions& o = {}) {
  return CharErrorRate({hyp}, {ref}, o).counts;
}
// S, D, I, H, N.
using T5 = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;
T5 Sdihn(const ErrorCounts& c) {
  return {c.substitutions, c.deletions, c.insertions, c.hits, c.ref_len};
}

// The version field of the error rates' signatures: "attend-<project version>".
std::string AttendVersion() {
  const std::string v = SignatureVersion();  // "2.6.0+attend-0.1.0"
  return v.substr(v.find('+') + 1);
}

TEST(MetricsErrorRate, HandWorkedWords) {
  // ref: the cat sat on the  mat
  // hyp: the cat sat on mat  mat
  // 4 hits, "the" -> "mat" a substitution, "mat" a hit: S=1 D=0 I=0 H=5 N=6 (deleting "the" and
  // inserting a "mat" would cost 2).
  EXPECT_EQ(Sdihn(Wer("the cat sat on mat mat", "the cat sat on the mat")), T5(1, 0, 0, 5, 6));
  // ref: the cat sat / hyp: the sat: "cat" deleted. S=0 D=1 I=0 H=2 N=3.
  EXPECT_EQ(Sdihn(Wer("the sat", "the cat sat")), T5(0, 1, 0, 2, 3));
  // ref: a b / hyp: a x b c: "x" and "c" inserted. S=0 D=0 I=2 H=2 N=2, WER 100.
  EXPECT_EQ(Sdihn(Wer("a x b c", "a b")), T5(0, 0, 2, 2, 2));
  // ref: a b / hyp: b c: two substitutions, or delete "a", hit "b", insert "c"; both cost 2 and
  // the documented tie-break (diagonal first) takes the substitutions.
  EXPECT_EQ(Sdihn(Wer("b c", "a b")), T5(2, 0, 0, 0, 2));
  // ref: b c / hyp: a b: two substitutions, or insert "a", hit "b", delete "c": the
  // substitutions again (the diagonal before a deletion).
  EXPECT_EQ(Sdihn(Wer("a b", "b c")), T5(2, 0, 0, 0, 2));
  // ref: a b c d / hyp: x a b c: insert "x", hits a b c, delete "d" (cost 2) beats four
  // substitutions (cost 4). S=0 D=1 I=1 H=3 N=4.
  EXPECT_EQ(Sdihn(Wer("x a b c", "a b c d")), T5(0, 1, 1, 3, 4));

  // The corpus sums the sentences: S=1+0 D=0+1 I=0+0 N=6+3, WER = 2/9.
  const ErrorRateScore s = WordErrorRate({"the cat sat on mat mat", "the sat"},
                                         {"the cat sat on the mat", "the cat sat"});
  EXPECT_EQ(Sdihn(s.counts), T5(1, 1, 0, 7, 9));
  EXPECT_EQ(s.counts.hyp_len, 8);
  EXPECT_DOUBLE_EQ(s.score, 100.0 * 2 / 9);
  EXPECT_EQ(s.name, "WER");
}

TEST(MetricsErrorRate, EmptyLines) {
  // An empty hypothesis: every reference word deleted. S=0 D=3 I=0 H=0 N=3, WER 100.
  ErrorRateScore s = WordErrorRate({""}, {"one two three"});
  EXPECT_EQ(Sdihn(s.counts), T5(0, 3, 0, 0, 3));
  EXPECT_DOUBLE_EQ(s.score, 100.0);
  // An empty reference line in a corpus: its hypothesis words are insertions.
  // Line 1: 2 hits. Line 2: ref "", hyp "x y": I=2. WER = 2/2 = 100.
  s = WordErrorRate({"a b", "x y"}, {"a b", ""});
  EXPECT_EQ(Sdihn(s.counts), T5(0, 0, 2, 2, 2));
  EXPECT_DOUBLE_EQ(s.score, 100.0);
  // Only empty references (N = 0): 0 without errors, 100 with (attend/metrics.h).
  s = WordErrorRate({"", "  "}, {"", " \t "});
  EXPECT_EQ(Sdihn(s.counts), T5(0, 0, 0, 0, 0));
  EXPECT_EQ(s.score, 0.0);
  s = WordErrorRate({"x", ""}, {"", ""});
  EXPECT_EQ(Sdihn(s.counts), T5(0, 0, 1, 0, 0));
  EXPECT_EQ(s.score, 100.0);
  EXPECT_EQ(CharErrorRate({"ab"}, {""}).score, 100.0);
  EXPECT_EQ(ErrorRate(ErrorCounts{}), 0.0);
}

TEST(MetricsErrorRate, Whitespace) {
  // Words are runs of non-whitespace: tabs, U+3000 (ideographic space), U+00A0 and leading and
  // trailing runs separate or vanish.
  EXPECT_EQ(Sdihn(Wer("the cat sat", "  the\tcat \u3000 sat\u00a0 ")), T5(0, 0, 0, 3, 3));
  // A lone tab splits words too (jiwer's default would keep "cat\tsat" one word).
  EXPECT_EQ(Sdihn(Wer("cat\tsat", "cat sat")), T5(0, 0, 0, 2, 2));
  // Characters: whitespace runs count as one space, the ends are stripped.
  EXPECT_EQ(Sdihn(Cer(" a \t b ", "a b")), T5(0, 0, 0, 3, 3));
  // The space is a character: ref "ab" / hyp "a b": one insertion. S=0 D=0 I=1 H=2 N=2, CER 50.
  EXPECT_EQ(Sdihn(Cer("a b", "ab")), T5(0, 0, 1, 2, 2));
  EXPECT_DOUBLE_EQ(CharErrorRate({"a b"}, {"ab"}).score, 50.0);
  // ref "ab cd" / hyp "abcd": the space deleted. S=0 D=1 I=0 H=4 N=5.
  EXPECT_EQ(Sdihn(Cer("abcd", "ab cd")), T5(0, 1, 0, 4, 5));
}

TEST(MetricsErrorRate, UnicodeCharacters) {
  // ref: n a ï v e _ c a f é (10 code points) / hyp: n a i v e _ c a f e: "ï" -> "i" and
  // "é" -> "e". S=2 D=0 I=0 H=8 N=10, CER 20.
  const ErrorRateScore s = CharErrorRate({"naive cafe"}, {"naïve café"});
  EXPECT_EQ(Sdihn(s.counts), T5(2, 0, 0, 8, 10));
  EXPECT_DOUBLE_EQ(s.score, 20.0);
  EXPECT_EQ(s.name, "CER");
  // Code points, not bytes: identical text in 2-, 3- and 4-byte UTF-8 has no errors and N=4.
  EXPECT_EQ(Sdihn(Cer("é€😀x", "é€😀x")), T5(0, 0, 0, 4, 4));
  // ...and not grapheme clusters: "é" against "e" + U+0301 (combining acute) is one substitution
  // and one insertion. ref c a f é / hyp c a f e ◌́: S=1 D=0 I=1 H=3 N=4.
  EXPECT_EQ(Sdihn(Cer("cafe\u0301", "caf\u00e9")), T5(1, 0, 1, 3, 4));
  // WER on the same pair: "café" -> "cafe", one word substituted.
  EXPECT_EQ(Sdihn(Wer("naive cafe", "naïve café")), T5(2, 0, 0, 0, 2));
}

TEST(MetricsErrorRate, Lowercase) {
  ErrorRateOptions lc;
  lc.lowercase = true;
  EXPECT_EQ(Sdihn(Wer("the cat", "The CAT")), T5(2, 0, 0, 0, 2));
  EXPECT_EQ(Sdihn(Wer("the cat", "The CAT", lc)), T5(0, 0, 0, 2, 2));
  // Python's str.lower() beyond ASCII: "ÉTÉ" and the Greek final sigma ("ΟΔΟΣ" -> "οδος").
  EXPECT_EQ(Sdihn(Cer("été οδος", "ÉTÉ ΟΔΟΣ", lc)), T5(0, 0, 0, 8, 8));
  EXPECT_EQ(WordErrorRate({"a"}, {"A"}, lc).signature.Format(),
            "case:lc|version:" + AttendVersion());
}

TEST(MetricsErrorRate, LineSignatureAndJson) {
  const ErrorRateScore w = WordErrorRate({"the cat sat on mat mat"}, {"the cat sat on the mat"});
  EXPECT_EQ(w.verbose, "S=1 D=0 I=0 H=5 N=6");
  EXPECT_EQ(w.Format(2), "WER = 16.67 S=1 D=0 I=0 H=5 N=6");
  EXPECT_EQ(w.Format(2, true),
            "WER|case:mixed|version:" + AttendVersion() + " = 16.67 S=1 D=0 I=0 H=5 N=6");
  EXPECT_EQ(w.Format(1, true, true),
            "WER|c:mixed|v:" + AttendVersion() + " = 16.7 S=1 D=0 I=0 H=5 N=6");
  EXPECT_EQ(w.Json(2),
            "{\n \"name\": \"WER\",\n \"score\": 16.67,\n \"signature\": \"case:mixed|version:" +
                AttendVersion() +
                "\",\n \"verbose_score\": \"S=1 D=0 I=0 H=5 N=6\",\n \"case\": "
                "\"mixed\",\n \"version\": \"" +
                AttendVersion() +
                "\",\n \"substitutions\": 1,\n \"deletions\": 0,\n \"insertions\": 0,\n "
                "\"hits\": 5,\n \"ref_len\": 6,\n \"hyp_len\": 6\n}");
  // Right-aligned with the other metrics on " = ".
  const ChrfScore c = CorpusChrf({"the cat sat on mat mat"}, {{"the cat sat on the mat"}});
  const std::string out = FormatScores({&c, &w}, 2, false);
  const size_t second = out.find('\n') + 1;
  EXPECT_EQ(out.find(" = "), out.find(" = ", second) - second) << out;
  EXPECT_EQ(out.substr(out.find("WER") - 1, 4), " WER") << out;
}

TEST(MetricsErrorRate, Errors) {
  // Invalid UTF-8 names the metric, the side and the line.
  EXPECT_THAT(ThrownMessage([] {
                WordErrorRate({"ok", "bad \xc3\x28 byte"}, {"ok", "ok"});
              }),
              HasSubstr("WER: hypothesis line 2: invalid UTF-8 at byte 4"));
  EXPECT_THAT(ThrownMessage([] { CharErrorRate({"ok"}, {"\xff"}); }),
              HasSubstr("CER: reference line 1: invalid UTF-8 at byte 0"));
  EXPECT_THAT(ThrownMessage([] { AlignWords("ok", "\xc0\x80"); }),
              HasSubstr("AlignWords: hypothesis: invalid UTF-8"));
  EXPECT_THAT(ThrownMessage([] {
                WordErrorRate({"a", "b"}, {"a"});
              }),
              HasSubstr("WER: the reference has 1 lines but there are 2 hypotheses"));
  EXPECT_THAT(ThrownMessage([] { CharErrorRate({}, {}); }), HasSubstr("CER: no hypotheses given"));
}

std::string Show(const std::vector<AlignedWord>& steps) {
  std::string out;
  for (const AlignedWord& w : steps) {
    const char* op[] = {"=", "S", "D", "I"};
    out += std::string(out.empty() ? "" : " ") + op[static_cast<int>(w.op)] + ":" + w.reference +
           "/" + w.hypothesis;
  }
  return out;
}

TEST(MetricsErrorRate, AlignWords) {
  EXPECT_EQ(Show(AlignWords("the cat sat on the mat", "the cat sat on mat mat")),
            "=:the/the =:cat/cat =:sat/sat =:on/on S:the/mat =:mat/mat");
  EXPECT_EQ(Show(AlignWords("a b c d", "x a b c")), "I:/x =:a/a =:b/b =:c/c D:d/");
  EXPECT_EQ(Show(AlignWords("a b", "b c")), "S:a/b S:b/c");
  EXPECT_EQ(Show(AlignWords("b c", "a b")), "S:b/a S:c/b");
  EXPECT_EQ(Show(AlignWords("one two", "")), "D:one/ D:two/");
  EXPECT_EQ(Show(AlignWords("", " x ")), "I:/x");
  EXPECT_TRUE(AlignWords(" ", "").empty());
  ErrorRateOptions lc;
  lc.lowercase = true;
  EXPECT_EQ(Show(AlignWords("Naïve CAFÉ", "naïve café", lc)), "=:naïve/naïve =:café/café");
}

// ---- Property: the DP's counts are those of an optimal edit script ----

using Triple = std::tuple<int64_t, int64_t, int64_t>;  // S, D, I

// Every edit script of ref[i:] into hyp[j:]: pair the next words (a hit or a substitution),
// delete the next reference word, or insert the next hypothesis word. Collects (S, D, I) of each.
void EnumerateScripts(const std::vector<std::string>& ref, const std::vector<std::string>& hyp,
                      size_t i, size_t j, Triple acc, std::set<Triple>& out) {
  if (i == ref.size() && j == hyp.size()) {
    out.insert(acc);
    return;
  }
  auto [s, d, ins] = acc;
  if (i < ref.size() && j < hyp.size())
    EnumerateScripts(ref, hyp, i + 1, j + 1, {s + (ref[i] != hyp[j]), d, ins}, out);
  if (i < ref.size()) EnumerateScripts(ref, hyp, i + 1, j, {s, d + 1, ins}, out);
  if (j < hyp.size()) EnumerateScripts(ref, hyp, i, j + 1, {s, d, ins + 1}, out);
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

void CheckAgainstExhaustiveSearch(const std::vector<std::string>& ref,
                                  const std::vector<std::string>& hyp) {
  const std::string r = Join(ref), h = Join(hyp);
  SCOPED_TRACE("ref '" + r + "' hyp '" + h + "'");
  std::set<Triple> scripts;
  EnumerateScripts(ref, hyp, 0, 0, {0, 0, 0}, scripts);
  int64_t best = INT64_MAX;
  for (const auto& [s, d, ins] : scripts) best = std::min(best, s + d + ins);

  const ErrorCounts c = Wer(h, r);
  EXPECT_EQ(c.errors(), best);
  // An actual edit script, not only its cost.
  EXPECT_EQ(scripts.count({c.substitutions, c.deletions, c.insertions}), 1u);
  EXPECT_EQ(c.substitutions + c.deletions + c.hits, static_cast<int64_t>(ref.size()));
  EXPECT_EQ(c.substitutions + c.insertions + c.hits, static_cast<int64_t>(hyp.size()));
  EXPECT_EQ(c.ref_len, static_cast<int64_t>(ref.size()));
  EXPECT_EQ(c.hyp_len, static_cast<int64_t>(hyp.size()));
  // The alignment has the same counts and spells out both sentences.
  ErrorCounts a;
  std::vector<std::string> ref_back, hyp_back;
  for (const AlignedWord& w : AlignWords(r, h)) {
    switch (w.op) {
      case EditOp::kHit:
        ++a.hits;
        EXPECT_EQ(w.reference, w.hypothesis);
        break;
      case EditOp::kSubstitution:
        ++a.substitutions;
        EXPECT_NE(w.reference, w.hypothesis);
        break;
      case EditOp::kDeletion:
        ++a.deletions;
        EXPECT_TRUE(w.hypothesis.empty());
        break;
      case EditOp::kInsertion:
        ++a.insertions;
        EXPECT_TRUE(w.reference.empty());
        break;
    }
    if (w.op != EditOp::kInsertion) ref_back.push_back(w.reference);
    if (w.op != EditOp::kDeletion) hyp_back.push_back(w.hypothesis);
  }
  EXPECT_EQ(Triple(a.substitutions, a.deletions, a.insertions),
            Triple(c.substitutions, c.deletions, c.insertions));
  EXPECT_EQ(a.hits, c.hits);
  EXPECT_EQ(ref_back, ref);
  EXPECT_EQ(hyp_back, hyp);
}

TEST(MetricsErrorRate, DynamicProgrammeMatchesExhaustiveSearch) {
  const std::vector<std::string> vocab = {"a", "b", "c"};
  // Every pair of sentences of up to 3 words (40 sentences, 1600 pairs)...
  std::vector<std::vector<std::string>> sentences = {{}};
  for (size_t begin = 0, len = 1; len <= 3; ++len) {
    const size_t end = sentences.size();
    for (size_t k = begin; k < end; ++k) {
      for (const std::string& w : vocab) {
        std::vector<std::string> s = sentences[k];
        s.push_back(w);
        sentences.push_back(s);
      }
    }
    begin = end;
  }
  ASSERT_EQ(sentences.size(), 40u);
  for (const auto& ref : sentences) {
    for (const auto& hyp : sentences) CheckAgainstExhaustiveSearch(ref, hyp);
  }
  // ...and random pairs of up to 5 words.
  std::mt19937 rng(14);
  auto random_sentence = [&] {
    std::vector<std::string> s(std::uniform_int_distribution<size_t>(0, 5)(rng));
    for (std::string& w : s) w = vocab[std::uniform_int_distribution<size_t>(0, 2)(rng)];
    return s;
  };
  for (int k = 0; k < 1500; ++k) CheckAgainstExhaustiveSearch(random_sentence(), random_sentence());
  if (HasFailure()) GTEST_SKIP() << "stopped after the first failures";
}

// ---- Against an independent Python count ----

TEST(MetricsErrorRate, MatchesPythonReference) {
  TempDir dir;
  // Words that differ by case, accents and scripts; separators that Python's str.split() and
  // attend share (spaces, U+00A0, U+3000, U+2028, U+001F, runs, ends).
  const std::vector<std::string> words = {"the",  "The",   "THE",  "cat",  "café",
                                          "cafe", "naïve", "ΟΔΟΣ", "οδος", "日本",
                                          "語",   "😀",    "a",    "ab",   "ba"};
  const std::vector<std::string> spaces = {" ",      " ",      " ",    "  ",      "\u00a0",
                                           "\u3000", "\u2028", "\x1f", " \u3000 "};
  std::mt19937 rng(1414);
  auto pick = [&rng](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  auto sentence = [&] {
    const size_t n = std::uniform_int_distribution<size_t>(0, 9)(rng);
    std::string s = rng() % 4 == 0 ? pick(spaces) : "";
    for (size_t k = 0; k < n; ++k) {
      if (k > 0) s += pick(spaces);
      s += pick(words);
    }
    return s + (rng() % 4 == 0 ? pick(spaces) : "");
  };
  std::vector<std::string> hyps, refs;
  std::string pairs;
  for (int k = 0; k < 400; ++k) {
    refs.push_back(sentence());
    // Mostly a noisy copy of the reference, so that hits, substitutions and ties all occur.
    hyps.push_back(rng() % 3 == 0 ? sentence() : refs.back());
    if (rng() % 2 == 0) {
      // The reference's words, each kept, dropped, replaced or followed by another.
      std::string noisy;
      for (const AlignedWord& w : AlignWords(refs.back(), refs.back())) {
        const unsigned r = rng() % 6;
        if (r == 0) continue;  // deleted
        if (!noisy.empty()) noisy += ' ';
        noisy += r == 1 ? pick(words) : w.reference;
        if (r == 2) noisy += " " + w.reference;  // an insertion
      }
      hyps.back() = noisy;
    }
    pairs += refs.back() + "\t" + hyps.back() + "\n";
  }
  const std::string path = dir / "pairs.tsv";
  attend::testing::WriteFile(path, pairs);
  const std::string script =
      std::string(ATTEND_SOURCE_DIR) + "/tests/metrics/error_rate_reference.py";
  for (const bool lowercase : {false, true}) {
    ErrorRateOptions o;
    o.lowercase = lowercase;
    for (const bool chars : {false, true}) {
      const CommandResult r =
          RunCommand("/usr/bin/python3 " + ShellQuote(script) + " " + ShellQuote(path) +
                     " --unit " + (chars ? "char" : "word") + (lowercase ? " --lowercase" : ""));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      const ErrorCounts c =
          chars ? CharErrorRate(hyps, refs, o).counts : WordErrorRate(hyps, refs, o).counts;
      const std::string ours = std::to_string(c.substitutions) + " " + std::to_string(c.deletions) +
                               " " + std::to_string(c.insertions) + " " + std::to_string(c.hits) +
                               " " + std::to_string(c.ref_len) + "\n";
      EXPECT_EQ(ours, r.output) << (chars ? "CER" : "WER") << (lowercase ? ", lowercased" : "");
      // Not a degenerate corpus: every kind of edit occurs.
      EXPECT_GT(c.substitutions, 0);
      EXPECT_GT(c.deletions, 0);
      EXPECT_GT(c.insertions, 0);
    }
  }
}

// ---- attend score --metrics wer,cer ----

class ErrorRateCli : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    attend::testing::WriteFile(dir_ / name, contents);
    return dir_ / name;
  }
  CommandResult Score(const std::string& args) {
    return RunCommand(AttendCommand("score " + args));
  }

  TempDir dir_;
  const std::vector<std::string> refs_ = {"the cat sat on the mat", "naïve café", ""};
  const std::vector<std::string> hyps_ = {"the cat sat on mat mat", "naive cafe", "uh"};
};

TEST_F(ErrorRateCli, TextAndJson) {
  const std::string ref = Write("ref", refs_[0] + "\n" + refs_[1] + "\n" + refs_[2] + "\n");
  const std::string hyp = Write("hyp", hyps_[0] + "\n" + hyps_[1] + "\n" + hyps_[2] + "\n");
  const ErrorRateScore wer = WordErrorRate(hyps_, refs_);
  const ErrorRateScore cer = CharErrorRate(hyps_, refs_);
  // Words: S=1+2 D=0 I=0+0+1 H=5 N=6+2+0 = 8, WER 4/8. Characters: line 1: "the" -> "mat" is
  // 3 substitutions (S=3 N=22); line 2: S=2 N=10; line 3: I=2. CER 7/32.
  EXPECT_EQ(Sdihn(wer.counts), T5(3, 0, 1, 5, 8));
  EXPECT_EQ(Sdihn(cer.counts), T5(5, 0, 2, 27, 32));

  CommandResult r =
      Score("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metrics wer,cer");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, FormatScores({&wer, &cer}, 1, false));
  EXPECT_NE(
      r.output.find("WER|case:mixed|version:" + AttendVersion() + " = 50.0 S=3 D=0 I=1 H=5 N=8\n"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(" = 21.9 S=5 D=0 I=2 H=27 N=32\n"), std::string::npos) << r.output;

  // Mixed with sacreBLEU's metrics, in the table's order whatever the order asked for; stdin.
  r = Score("-r " + ShellQuote(ref) + " --metrics cer,chrf,wer,bleu -w 2 < " + ShellQuote(hyp));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const BleuScore bleu = CorpusBleu(hyps_, {refs_});
  const ChrfScore chrf = CorpusChrf(hyps_, {refs_});
  EXPECT_EQ(r.output, FormatScores({&bleu, &chrf, &wer, &cer}, 2, false));

  // JSON carries the counts as integers; --lowercase applies.
  r = Score("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metrics wer,cer --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "[\n" + wer.Json(1) + ",\n" + cer.Json(1) + "\n]\n");
  r = Score("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) +
            " --metrics wer --json --lowercase");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"case\": \"lc\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"substitutions\": 3,\n \"deletions\": 0,\n \"insertions\": 1,\n "
                          "\"hits\": 5,\n \"ref_len\": 8,\n \"hyp_len\": 9\n}"),
            std::string::npos)
      << r.output;
  r = Score("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metrics cer -b -w 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "21.875\n");
}

TEST_F(ErrorRateCli, Errors) {
  const std::string ref = Write("ref", "a b\nc d\n");
  const std::string hyp = Write("hyp", "a b\nc d\n");
  // One reference only.
  CommandResult r = Score("-r " + ShellQuote(ref) + " -r " + ShellQuote(ref) + " -i " +
                          ShellQuote(hyp) + " --metrics bleu,wer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("wer and cer take one reference file, got 2"), std::string::npos)
      << r.output;
  // Invalid UTF-8 names the file and line.
  const std::string bad = Write("bad", "a b\nc \xc3\x28\n");
  r = Score("-r " + ShellQuote(ref) + " -i " + ShellQuote(bad) + " --metrics cer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(bad + ":2: invalid UTF-8 at byte 2"), std::string::npos) << r.output;
  // An unknown metric lists the names.
  r = Score("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metrics wer,mer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown metric 'mer' (expected bleu, chrf, chrf++, wer, cer)"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace attend::metrics
