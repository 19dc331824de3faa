// BLEU, chrF and chrF++ against sacreBLEU's own published test vectors, the formatted line,
// signature and JSON, the tokenizers, and `attend score` run from the command line.
//
// Unless another source is named, expected values come from sacreBLEU's repository
// (github.com/mjpost/sacrebleu at commit f615c72, release 2.6.0): README.md ("Using the Python
// API"), test/test_bleu.py, test/test_sentence_bleu.py and test/test_chrf.py. Their tolerances are
// kept: 1e-8 for corpus BLEU, 1e-3 for sentence BLEU, 1e-4 for chrF.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "attend/error.h"
#include "attend/metrics.h"

namespace attend::metrics {
namespace {

// README.md / test_bleu.py: three hypotheses against two reference streams.
const std::vector<std::string> kHyps = {"The dog bit the man.", "It wasn't surprising.",
                                        "The man had just bitten him."};
const std::vector<Stream> kRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};

BleuOptions Tok(Tokenizer t) {
  BleuOptions o;
  o.tokenize = t;
  return o;
}

// sacreBLEU's compat.raw_corpus_bleu: tokenize none, floor smoothing, effective order.
BleuScore RawCorpusBleu(const std::vector<std::string>& hyps, const std::vector<Stream>& refs,
                        std::optional<double> floor = 0.1) {
  BleuOptions o;
  o.tokenize = Tokenizer::kNone;
  o.smooth_method = Smoothing::kFloor;
  o.smooth_value = floor;
  o.effective_order = true;
  return CorpusBleu(hyps, refs, o);
}

std::string Sig(const std::string& head) { return head + "|version:" + SignatureVersion(); }

TEST(MetricsBleu, ReadmeCorpus) {
  // test_corpus_bleu_cases.
  EXPECT_NEAR(CorpusBleu(kHyps, kRefs).score, 48.530827, 1e-8);
  EXPECT_NEAR(CorpusBleu(kHyps, kRefs, Tok(Tokenizer::k13a)).score, 48.530827, 1e-8);
  EXPECT_NEAR(CorpusBleu(kHyps, kRefs, Tok(Tokenizer::kNone)).score, 49.1919566, 1e-8);
  EXPECT_NEAR(CorpusBleu(kHyps, kRefs, Tok(Tokenizer::kIntl)).score, 43.91623493, 1e-8);
  BleuOptions none;
  none.smooth_method = Smoothing::kNone;
  EXPECT_NEAR(CorpusBleu(kHyps, kRefs, none).score, 48.530827, 1e-8);
}

TEST(MetricsBleu, ReadmeLineAndSignature) {
  const BleuScore s = CorpusBleu(kHyps, kRefs);
  EXPECT_EQ(s.Format(),
            "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 "
            "hyp_len = 17 ref_len = 18)");
  // README: "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.0.0"; the version is ours.
  EXPECT_EQ(s.signature.Format(), Sig("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp"));
  EXPECT_EQ(s.signature.Format(true), "#:2|c:mixed|e:no|tok:13a|s:exp|v:" + SignatureVersion());
  EXPECT_EQ(SignatureVersion().rfind("2.6.0+attend-", 0), 0u) << SignatureVersion();
  EXPECT_EQ(s.Format(1, true), "BLEU|" + Sig("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp") +
                                   " = 48.5 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 "
                                   "hyp_len = 17 ref_len = 18)");
  EXPECT_EQ(s.FormatScore(4), "48.5308");
  EXPECT_EQ(s.sys_len, 17);
  EXPECT_EQ(s.ref_len, 18);
  // The README's variable-reference example: the first reference of sentence 1 is empty.
  std::vector<Stream> var = kRefs;
  var[0][0] = "";
  EXPECT_EQ(CorpusBleu(kHyps, var).Format(),
            "BLEU = 29.44 82.4/42.9/27.3/12.5 (BP = 0.889 "
            "ratio = 0.895 hyp_len = 17 ref_len = 19)");
}

TEST(MetricsBleu, Json) {
  const BleuScore s = CorpusBleu(kHyps, kRefs);
  // Laid out as sacreBLEU's Score.format(is_json=True) writes it (README, "JSON output").
  const std::string v = SignatureVersion();
  EXPECT_EQ(s.Json(1),
            "{\n \"name\": \"BLEU\",\n \"score\": 48.5,\n \"signature\": \"nrefs:2|"
            "case:mixed|eff:no|tok:13a|smooth:exp|version:" +
                v +
                "\",\n"
                " \"verbose_score\": \"82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 "
                "hyp_len = 17 ref_len = 18)\",\n \"nrefs\": \"2\",\n \"case\": \"mixed\",\n"
                " \"eff\": \"no\",\n \"tok\": \"13a\",\n \"smooth\": \"exp\",\n"
                " \"version\": \"" +
                v + "\"\n}");
  // Python writes a whole float with ".0" and tiny ones in exponent form.
  Score z;
  z.name = "BLEU";
  z.score = 0.0;
  EXPECT_NE(z.Json(2).find("\"score\": 0.0,"), std::string::npos);
  z.score = 20.0;
  EXPECT_NE(z.Json(0).find("\"score\": 20.0,"), std::string::npos);
  z.score = 0.00001;
  EXPECT_NE(z.Json(5).find("\"score\": 1e-05,"), std::string::npos);
  z.score = 0.0001;
  EXPECT_NE(z.Json(4).find("\"score\": 0.0001,"), std::string::npos);
}

TEST(MetricsBleu, EmptyHypothesesAreScoredNotDropped) {
  const BleuScore s = CorpusBleu({"", "", ""}, kRefs);
  EXPECT_EQ(s.score, 0.0);
  EXPECT_EQ(s.sys_len, 0);
  // Every reference length is closest to 0 by being the shortest: 6 + 5 + 6.
  EXPECT_EQ(s.Format(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 "
            "ref_len = 17)");
}

TEST(MetricsBleu, RawCorpusCases) {
  // test_raw_bleu_cases (raw_corpus_bleu with smooth_value .01).
  EXPECT_NEAR(RawCorpusBleu({"this is a test", "another test"}, {{"ref1", "ref2"}}, .01).score, 0.0,
              1e-8);
  EXPECT_NEAR(RawCorpusBleu({"this is a test"}, {{"this is a test"}}, .01).score / 100, 1.0, 1e-8);
  EXPECT_NEAR(RawCorpusBleu({"this is a fest"}, {{"this is a test"}}, .01).score / 100,
              0.223606797749979, 1e-8);
  // test_case_effective_order.
  EXPECT_NEAR(RawCorpusBleu({"test"}, {{"a test"}}, .01).score / 100, 0.3678794411714425, 1e-8);
  EXPECT_NEAR(RawCorpusBleu({"a test"}, {{"a test"}}, .01).score / 100, 1.0, 1e-8);
  EXPECT_NEAR(RawCorpusBleu({"a little test"}, {{"a test"}}, .01).score / 100, 0.03218297948685433,
              1e-8);
}

TEST(MetricsBleu, StatisticsAndOffset) {
  // test_case_statistics.
  const std::vector<std::string> hyp = {"am I am a character sequence"};
  const std::vector<Stream> ref = {{"I am a symbol string sequence a a"}};
  const BleuScore s = RawCorpusBleu(hyp, ref, .01);
  EXPECT_EQ(s.counts, (std::vector<double>{4, 2, 1, 0}));
  EXPECT_EQ(s.totals, (std::vector<double>{6, 5, 4, 3}));
  BleuOptions raw;
  raw.tokenize = Tokenizer::kNone;
  const BleuStats stats = CorpusBleuStats(hyp, ref, raw);
  EXPECT_EQ(stats.correct, (std::vector<int64_t>{4, 2, 1, 0}));
  EXPECT_EQ(stats.total, (std::vector<int64_t>{6, 5, 4, 3}));
  EXPECT_EQ(stats.hyp_len, 6);
  EXPECT_EQ(stats.ref_len, 8);
  // test_case_offset: floor 0.0 gives 0; the default floor (0.1, given or not) 0.1555722182.
  EXPECT_NEAR(RawCorpusBleu(hyp, ref, 0.0).score / 100, 0.0, 1e-8);
  EXPECT_NEAR(RawCorpusBleu(hyp, ref, std::nullopt).score / 100, 0.1555722182, 1e-8);
  EXPECT_NEAR(RawCorpusBleu(hyp, ref, 0.1).score / 100, 0.1555722182, 1e-8);
}

TEST(MetricsBleu, ScoreFromStatistics) {
  // test_case_scoring: compute_bleu([9,7,5,3], [10,8,6,4], 11, 11), smoothing none.
  BleuOptions none;
  none.smooth_method = Smoothing::kNone;
  EXPECT_NEAR(BleuFromStats({11, 11, {9, 7, 5, 3}, {10, 8, 6, 4}}, none).score / 100, 0.8375922397,
              1e-8);
  // test_case_degenerate_stats (floor smoothing with the given offsets): exactly 0.
  struct Degenerate {
    BleuStats stats;
    double offset;
  };
  const std::vector<Degenerate> cases = {
      {{0, 1, {0, 0, 0, 0}, {4, 4, 2, 1}}, 0.0}, {{14, 10, {0, 0, 0, 0}, {10, 11, 12, 0}}, 0.0},
      {{0, 0, {0, 0, 0, 0}, {0, 0, 0, 0}}, 0.0}, {{6, 6, {6, 5, 4, 0}, {6, 5, 4, 3}}, 0.0},
      {{0, 0, {0, 0, 0, 0}, {0, 0, 0, 0}}, 0.1}, {{1, 5, {0, 0, 0, 0}, {0, 0, 0, 0}}, 0.01}};
  for (const Degenerate& c : cases) {
    BleuOptions floor;
    floor.smooth_method = Smoothing::kFloor;
    floor.smooth_value = c.offset;
    EXPECT_EQ(BleuFromStats(c.stats, floor).score, 0.0);
  }
  // Statistics of the wrong order are refused.
  EXPECT_THROW(BleuFromStats({1, 1, {1, 1}, {1, 1}}), Error);
}

TEST(MetricsBleu, MaxNgramOrder) {
  // test_bleu_max_order: printed with two decimals.
  const char* expected[] = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
  for (int order = 1; order <= 6; ++order) {
    BleuOptions o;
    o.max_ngram_order = order;
    EXPECT_EQ(CorpusBleu(kHyps, kRefs, o).FormatScore(2), expected[order - 1]) << order;
  }
}

TEST(MetricsBleu, SentenceLevelSmoothingAndTokenizers) {
  // test_sentence_bleu.py, example from sacreBLEU issue #98, effective order on.
  const std::string ref = "producţia de zahăr brut se exprimă în zahăr alb;";
  const std::string sys =
      "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  struct Case {
    Smoothing smooth;
    std::optional<double> value;
    bool lowercase;
    Tokenizer tok;
    double expected;
  };
  const std::vector<Case> cases = {
      {Smoothing::kExp, std::nullopt, false, Tokenizer::k13a, 8.493},
      {Smoothing::kNone, std::nullopt, false, Tokenizer::k13a, 0.0},
      {Smoothing::kFloor, std::nullopt, false, Tokenizer::k13a, 4.51688},
      {Smoothing::kFloor, 0.1, false, Tokenizer::k13a, 4.51688},
      {Smoothing::kFloor, 0.5, false, Tokenizer::k13a, 10.10},
      {Smoothing::kAddK, std::nullopt, false, Tokenizer::k13a, 14.882},
      {Smoothing::kAddK, 1, false, Tokenizer::k13a, 14.882},
      {Smoothing::kAddK, 2, false, Tokenizer::k13a, 21.389},
      {Smoothing::kExp, std::nullopt, false, Tokenizer::kNone, 7.347},
      {Smoothing::kExp, std::nullopt, false, Tokenizer::kIntl, 8.493},
      {Smoothing::kExp, std::nullopt, false, Tokenizer::kChar, 40.8759},
      {Smoothing::kExp, std::nullopt, true, Tokenizer::kChar, 42.0267},
  };
  for (const Case& c : cases) {
    BleuOptions o;
    o.smooth_method = c.smooth;
    o.smooth_value = c.value;
    o.lowercase = c.lowercase;
    o.tokenize = c.tok;
    o.effective_order = true;
    EXPECT_NEAR(SentenceBleu(sys, {ref}, o).score, c.expected, 1e-3)
        << SmoothingName(c.smooth) << " " << TokenizerName(c.tok);
  }
  // test_cases_zero_bleu (issue #141): no match at all is 0 whatever the smoothing.
  for (Smoothing m : {Smoothing::kExp, Smoothing::kNone, Smoothing::kFloor, Smoothing::kAddK}) {
    BleuOptions o;
    o.smooth_method = m;
    o.effective_order = true;
    EXPECT_EQ(SentenceBleu("this is a cat", {"okay thanks"}, o).score, 0.0) << SmoothingName(m);
  }
}

TEST(MetricsBleu, SignatureOfOptions) {
  BleuOptions o;
  o.smooth_method = Smoothing::kFloor;
  o.lowercase = true;
  o.effective_order = true;
  o.tokenize = Tokenizer::kIntl;
  EXPECT_EQ(SentenceBleu("a b", {"a b"}, o).signature.Format(),
            Sig("nrefs:1|case:lc|eff:yes|tok:intl|smooth:floor[0.10]"));
  o.smooth_method = Smoothing::kAddK;
  o.smooth_value = 2;
  EXPECT_EQ(SentenceBleu("a b", {"a b"}, o).signature.Format(),
            Sig("nrefs:1|case:lc|eff:yes|tok:intl|smooth:add-k[2.00]"));
}

TEST(MetricsBleu, ClosestReferenceLengthTiesGoToTheShorter) {
  // Hypothesis of 3 tokens, references of 2 and 4: both differ by 1, the shorter one counts.
  BleuOptions o = Tok(Tokenizer::kNone);
  EXPECT_EQ(CorpusBleuStats({"a b c"}, {{"a b c d"}, {"a b"}}, o).ref_len, 2);
  EXPECT_EQ(CorpusBleuStats({"a b c"}, {{"a b"}, {"a b c d"}}, o).ref_len, 2);
  EXPECT_EQ(CorpusBleuStats({"a b c"}, {{"a b c d e"}, {"x y z"}}, o).ref_len, 3);
  // Several references: each n-gram is clipped by its largest count in any one reference.
  const BleuStats s = CorpusBleuStats({"a a a"}, {{"a x y"}, {"a a z"}}, o);
  EXPECT_EQ(s.correct[0], 2);
  EXPECT_EQ(s.correct[1], 1);
}

TEST(MetricsBleu, Errors) {
  EXPECT_THROW(CorpusBleu(kHyps, {}), Error);
  EXPECT_THROW(CorpusBleu({}, {{}}), Error);
  try {
    CorpusBleu(kHyps, {kRefs[0], {"only one"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reference stream 2 has 1 lines but there are 3"),
              std::string::npos)
        << e.what();
  }
  try {
    CorpusBleu({"ok", "bad \xff"}, {{"ok", "ok"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hypothesis line 2: invalid UTF-8 at byte 4"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ParseTokenizer("zh"), Error);
  EXPECT_THROW(ParseSmoothing("laplace"), Error);
  BleuOptions o;
  o.max_ngram_order = 0;
  EXPECT_THROW(CorpusBleu(kHyps, kRefs, o), Error);
}

// Issue 11: `attend score` holds its scores as unique_ptr<Score>; deleting a BleuScore through
// Score without a virtual destructor is undefined (ASan: new-delete-type-mismatch).
TEST(MetricsFormat, ScoresAreDeletedThroughTheBase) {
  EXPECT_TRUE(std::has_virtual_destructor_v<Score>);
  std::vector<std::unique_ptr<Score>> scores;
  scores.push_back(std::make_unique<BleuScore>(CorpusBleu(kHyps, kRefs)));
  scores.push_back(std::make_unique<ChrfScore>(CorpusChrf(kHyps, kRefs)));
  EXPECT_EQ(scores[0]->name, "BLEU");
  EXPECT_EQ(scores[1]->name, "chrF2");
  scores.clear();
}

TEST(MetricsTokenize, Mteval13a) {
  EXPECT_EQ(Tokenize("Hello, world!", Tokenizer::k13a), "Hello , world !");
  EXPECT_EQ(Tokenize("It wasn't surprising.", Tokenizer::k13a), "It wasn't surprising .");
  // Numbers keep their separators; a dash after a digit is split off; a final period is split
  // even after a number (the line is padded with spaces).
  EXPECT_EQ(Tokenize("1,000.5 in 2019.", Tokenizer::k13a), "1,000.5 in 2019 .");
  EXPECT_EQ(Tokenize("pages 3-4", Tokenizer::k13a), "pages 3 - 4");
  // Escapes are undone one after the other (&amp;lt; becomes <), <skipped> is dropped.
  EXPECT_EQ(Tokenize("&amp;lt;b&gt; &quot;x&quot;<skipped>", Tokenizer::k13a), "< b > \" x \"");
  EXPECT_EQ(Tokenize("  a\u00a0\u2003b  ", Tokenizer::k13a), "a b");  // Unicode spaces split
}

TEST(MetricsTokenize, International) {
  EXPECT_EQ(Tokenize("Hello, world! 1,000.5 costs 5€.", Tokenizer::kIntl),
            "Hello , world ! 1,000.5 costs 5 € .");
  // mteval-v14's quirk kept by sacreBLEU: a number's final period stays attached.
  EXPECT_EQ(Tokenize("in 2019.", Tokenizer::kIntl), "in 2019.");
  // Unicode punctuation (« » are Pi/Pf) and symbols (© is So).
  EXPECT_EQ(Tokenize("«Ja»©x", Tokenizer::kIntl), "« Ja » © x");
  EXPECT_EQ(Tokenize("a b", Tokenizer::kChar), "a   b");
  EXPECT_EQ(Tokenize("äb", Tokenizer::kChar), "ä b");
  EXPECT_EQ(Tokenize(" x, y ", Tokenizer::kNone), " x, y ");
}

TEST(MetricsTokenize, PythonLowercase) {
  EXPECT_EQ(Lowercase("ABC Äß"), "abc äß");
  // Final sigma, as Python's str.lower() gives: 'ΟΔΟΣ ΣΑΣ' -> 'οδος σας', 'Α.Σ' -> 'α.ς'.
  EXPECT_EQ(Lowercase("ΟΔΟΣ ΣΑΣ"), "οδος σας");
  EXPECT_EQ(Lowercase("Α.Σ"), "α.ς");
  EXPECT_EQ(Lowercase("ΣΑ"), "σα");
  // U+0130 lowers to two code points (i + combining dot above).
  EXPECT_EQ(Lowercase("\u0130x"), "i\u0307x");
  EXPECT_EQ(FindInvalidUtf8("ok"), -1);
  EXPECT_EQ(FindInvalidUtf8("ab\xc0\xaf"), 2);        // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("a\xed\xa0\x80"), 1);     // surrogate
  EXPECT_EQ(FindInvalidUtf8("abc\xe2\x82"), 3);       // truncated
  EXPECT_EQ(FindInvalidUtf8("\xf4\x90\x80\x80"), 0);  // past U+10FFFF
  EXPECT_EQ(SplitScoringLines("a \r\nb\n\n c\t\n", "f"),
            (std::vector<std::string>{"a", "b", "", " c"}));
  EXPECT_EQ(SplitScoringLines("x", "f"), (std::vector<std::string>{"x"}));
  EXPECT_TRUE(SplitScoringLines("", "f").empty());
}

// ---- chrF ----

ChrfOptions Beta3(bool eps) {
  ChrfOptions o;
  o.beta = 3;
  o.eps_smoothing = eps;
  return o;
}

TEST(MetricsChrf, EpsilonSmoothingCases) {
  // test_chrf.py test_cases: char_order 6, word_order 0, beta 3, eps_smoothing.
  struct Case {
    std::vector<std::string> hyp, ref;
    double expected;
  };
  const std::vector<Case> cases = {
      {{"abcdefg"}, {"hijklmnop"}, 0.0},
      {{"a"}, {"b"}, 0.0},
      {{""}, {"b"}, 0.0},
      {{""}, {"ref"}, 0.0},
      {{""}, {"reference"}, 0.0},
      {{"aa"}, {"ab"}, 8.3333},
      {{"a", "b"}, {"a", "c"}, 8.3333},
      {{"a"}, {"a"}, 16.6667},
      {{"a b c"}, {"a b c"}, 50.0},
      {{"a b c"}, {"abc"}, 50.0},
      {{" risk assessment must be made of those who are qualified and expertise in the sector - "
        "these are the scientists ."},
       {"risk assessment has to be undertaken by those who are qualified and expert in that "
        "area - that is the scientists ."},
       63.361730},
      {{" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "},
       {"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."},
       64.1302698},
      {{"Niemand hat die Absicht, eine Mauer zu errichten"},
       {"Niemand hat die Absicht, eine Mauer zu errichten"},
       100.0},
  };
  for (const Case& c : cases) {
    EXPECT_NEAR(CorpusChrf(c.hyp, {c.ref}, Beta3(true)).score, c.expected, 1e-4) << c.hyp[0];
  }
}

TEST(MetricsChrf, EffectiveOrderCases) {
  // test_cases_effective_order (sacreBLEU's default, eps_smoothing off), beta 3.
  struct Case {
    std::vector<std::string> hyp, ref;
    double expected;
  };
  const std::vector<Case> cases = {
      {{"a"}, {"a"}, 100.0},       {{""}, {"reference"}, 0.0}, {{"a b c"}, {"a b c"}, 100.0},
      {{"a b c"}, {"abc"}, 100.0}, {{""}, {"c"}, 0.0},         {{"a", "b"}, {"a", "c"}, 50.0},
      {{"aa"}, {"ab"}, 25.0}};
  for (const Case& c : cases) {
    EXPECT_NEAR(CorpusChrf(c.hyp, {c.ref}, Beta3(false)).score, c.expected, 1e-4) << c.hyp[0];
  }
}

TEST(MetricsChrf, KeepWhitespaceCases) {
  // test_cases_keep_whitespace (remove_whitespace=False), beta 3.
  ChrfOptions o = Beta3(false);
  o.whitespace = true;
  EXPECT_NEAR(
      CorpusChrf({"Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich."},
                 {{"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade "
                   "freundschaftlich."}},
                 o)
          .score,
      67.3481606, 1e-4);
  EXPECT_NEAR(CorpusChrf({"risk assessment must be made of those who are qualified and expertise "
                          "in the sector - these are the scientists ."},
                         {{"risk assessment has to be undertaken by those who are qualified and "
                           "expert in that area - that is the scientists ."}},
                         o)
                  .score,
              65.2414427, 1e-4);
  EXPECT_EQ(CorpusChrf({"a b"}, {{"a b"}}, o).signature.Format(),
            Sig("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:yes"));
}

TEST(MetricsChrf, SentenceLevelCases) {
  // test_sentence_level_chrf: sentence_chrf with eps_smoothing, default beta 2.
  ChrfOptions o;
  o.eps_smoothing = true;
  EXPECT_NEAR(SentenceChrf("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo "
                           "zemře.",
                           {"Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít "
                            "a kdo zemře."},
                           o)
                  .score,
              39.14078509, 1e-4);
  EXPECT_NEAR(SentenceChrf("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
                           {"A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali "
                            "lékaři."},
                           o)
                  .score,
              31.22557079, 1e-4);
  EXPECT_NEAR(SentenceChrf("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
                           {"Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl "
                            "začít, připomněli."},
                           o)
                  .score,
              57.15704367, 1e-4);
}

TEST(MetricsChrf, ReadmeCorpusAndFormat) {
  // README.md: CHRF().corpus_score(sys, refs) -> "chrF2 = 59.73".
  const ChrfScore s = CorpusChrf(kHyps, kRefs);
  EXPECT_EQ(s.Format(), "chrF2 = 59.73");
  EXPECT_EQ(s.signature.Format(), Sig("nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no"));
  EXPECT_EQ(s.signature.Format(true), "#:2|c:mixed|e:yes|nc:6|nw:0|s:no|v:" + SignatureVersion());
  const ChrfScore pp = CorpusChrf(kHyps, kRefs, ChrfOptions::PlusPlus());
  EXPECT_EQ(pp.name, "chrF2++");
  EXPECT_EQ(pp.signature.Format(), Sig("nrefs:2|case:mixed|eff:yes|nc:6|nw:2|space:no"));
  // chrF's JSON has no verbose_score.
  EXPECT_EQ(s.Json(2).find("verbose_score"), std::string::npos);
}

TEST(MetricsChrf, PlusPlusByHand) {
  // No published chrF++ vector is small enough to keep here, so the statistics are counted by
  // hand. hyp "the cat." vs ref "the cat sat.": characters without spaces "thecat." (7) and
  // "thecatsat." (10); [hyp, ref, match] per order:
  //   c1 [7,10,7] c2 [6,9,6] c3 [5,8,5] c4 [4,7,3] c5 [3,6,2] c6 [2,5,1]
  // words after splitting off the final '.': [the, cat, .] vs [the, cat, sat, .]:
  //   w1 [3,4,3] w2 [2,3,1] ("the cat" matches; "cat ." does not).
  // chrF++ = 100 * 5PR / (4P + R) with P, R averaged over the 8 orders = 54.50411974135973
  // (6 character orders only: 53.49828079223901), computed with exact fractions.
  const ChrfScore pp = SentenceChrf("the cat.", {"the cat sat."}, ChrfOptions::PlusPlus());
  EXPECT_EQ(pp.stats, (std::vector<int64_t>{7, 10, 7, 6, 9, 6, 5, 8, 5, 4, 7, 3,
                                            3, 6,  2, 2, 5, 1, 3, 4, 3, 2, 3, 1}));
  EXPECT_NEAR(pp.score, 54.50411974135973, 1e-10);
  EXPECT_NEAR(SentenceChrf("the cat.", {"the cat sat."}).score, 53.49828079223901, 1e-10);
  // '(hi)' splits into '(hi' and ')' (sacreBLEU issue #124); a leading mark splits off when the
  // end has none; one-character words stay. hyp words: (hi ) , x !  ref words: ( hi ) , x !
  // w1 [5, 6, 4]: ")", ",", "x", "!" match; w2 [4, 5, 3]: ") ,", ", x", "x !" match (a split
  // into "(" and "hi)" would match "( hi"/"hi )" differently).
  const ChrfScore w = SentenceChrf("(hi) ,x !", {"(hi ) , x !"}, ChrfOptions::PlusPlus());
  EXPECT_EQ(std::vector<int64_t>(w.stats.end() - 6, w.stats.end()),
            (std::vector<int64_t>{5, 6, 4, 4, 5, 3}));
}

TEST(MetricsChrf, BestReferencePerSentence) {
  // Each sentence takes the statistics of its best-matching reference; ties keep the first.
  const ChrfScore s = CorpusChrf({"the cat.", "a dog"}, {{"a dog.", "a dog"}, {"the cat.", "x"}});
  const ChrfScore first = SentenceChrf("the cat.", {"the cat."});
  const ChrfScore second = SentenceChrf("a dog", {"a dog"});
  std::vector<int64_t> sum(first.stats.size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = first.stats[i] + second.stats[i];
  EXPECT_EQ(s.stats, sum);
  EXPECT_NEAR(s.score, 100.0, 1e-12);
  const ChrfScore tie = SentenceChrf("ab", {"abx", "xab"});
  EXPECT_EQ(tie.stats, SentenceChrf("ab", {"abx"}).stats);
  // Lowercasing.
  ChrfOptions lc;
  lc.lowercase = true;
  EXPECT_NEAR(SentenceChrf("THE CAT", {"the cat"}, lc).score, 100.0, 1e-12);
  EXPECT_LT(SentenceChrf("THE CAT", {"the cat"}).score, 100.0);
  EXPECT_THROW(CorpusChrf({"a"}, {{"a", "b"}}), Error);
  ChrfOptions bad;
  bad.char_order = 0;
  EXPECT_THROW(CorpusChrf({"a"}, {{"a"}}, bad), Error);
}

TEST(MetricsFormat, AlignedLines) {
  const BleuScore b = CorpusBleu(kHyps, kRefs);
  const ChrfScore c = CorpusChrf(kHyps, kRefs);
  const std::string bl = b.Format(1, true);
  const std::string cl = c.Format(1, true);
  // print_single_results right-aligns the text before " = ".
  const size_t w = std::max(bl.find('='), cl.find('=')) - 1;
  const std::string expected = std::string(w - (bl.find('=') - 1), ' ') + bl + "\n" +
                               std::string(w - (cl.find('=') - 1), ' ') + cl + "\n";
  EXPECT_EQ(FormatScores({&b, &c}, 1, false), expected);
  EXPECT_EQ(FormatScores({&c}, 1, false), cl + "\n");
  EXPECT_EQ(FormatScores({&b, &c}, 1, true), "[\n" + b.Json(1) + ",\n" + c.Json(1) + "\n]\n");
}

// ---- attend score from the command line ----

class ScoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attend_score_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }
  // Runs `attend score ARGS`; returns the exit code, stdout in `out` and stderr in `err`.
  int Run(const std::string& args, std::string& out, std::string& err) {
    const std::string err_path = (dir_ / "stderr.txt").string();
    const std::string cmd = std::string(ATTEND_CLI_PATH) + " score " + args + " 2>" + err_path;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (pipe == nullptr) return -1;
    out.clear();
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
    const int status = ::pclose(pipe);
    std::ifstream e(err_path);
    err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Readme() {
    ref_a_ = Write("ref.a", kRefs[0][0] + "\n" + kRefs[0][1] + "\n" + kRefs[0][2] + "\n");
    ref_b_ = Write("ref.b", kRefs[1][0] + "\n" + kRefs[1][1] + "\n" + kRefs[1][2] + "\n");
    return Write("hyp", kHyps[0] + "\n" + kHyps[1] + "\n" + kHyps[2] + "\n");
  }

  std::filesystem::path dir_;
  std::string ref_a_, ref_b_;
};

TEST_F(ScoreCli, ReadmeCorpusText) {
  const std::string hyp = Readme();
  std::string out, err;
  ASSERT_EQ(Run("-r " + ref_a_ + " -r " + ref_b_ + " -i " + hyp, out, err), 0) << err;
  // `sacrebleu ref.a ref.b -i hyp -f text` (width 1 by default).
  EXPECT_EQ(out, "BLEU|" + Sig("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp") +
                     " = 48.5 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 "
                     "ref_len = 18)\n");
  // The hypotheses from stdin, tokenize none, more decimals.
  ASSERT_EQ(Run("-r " + ref_a_ + " -r " + ref_b_ + " --tokenize none -w 7 < " + hyp, out, err), 0)
      << err;
  EXPECT_NE(out.find(" = 49.1919566 "), std::string::npos) << out;
  EXPECT_NE(out.find("|tok:none|"), std::string::npos) << out;
}

TEST_F(ScoreCli, SeveralMetricsAndJson) {
  const std::string hyp = Readme();
  std::string out, err;
  const std::string refs = "-r " + ref_a_ + " -r " + ref_b_ + " -i " + hyp;
  ASSERT_EQ(Run(refs + " --metrics chrf++,bleu,chrf -w 2", out, err), 0) << err;
  const BleuScore b = CorpusBleu(kHyps, kRefs);
  const ChrfScore c = CorpusChrf(kHyps, kRefs);
  const ChrfScore pp = CorpusChrf(kHyps, kRefs, ChrfOptions::PlusPlus());
  EXPECT_EQ(out, FormatScores({&b, &c, &pp}, 2, false));
  EXPECT_NE(
      out.find("chrF2|" + Sig("nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no") + " = 59.73\n"),
      std::string::npos)
      << out;
  ASSERT_EQ(Run(refs + " --metrics bleu --json", out, err), 0) << err;
  EXPECT_EQ(out, b.Json(1) + "\n");
  EXPECT_NE(out.find("\"score\": 48.5,"), std::string::npos) << out;
  ASSERT_EQ(Run(refs + " --metrics bleu,chrf --json", out, err), 0) << err;
  EXPECT_EQ(out, "[\n" + b.Json(1) + ",\n" + c.Json(1) + "\n]\n");
  ASSERT_EQ(Run(refs + " --lowercase -b -w 3", out, err), 0) << err;
  BleuOptions lc;
  lc.lowercase = true;
  EXPECT_EQ(out, CorpusBleu(kHyps, kRefs, lc).FormatScore(3) + "\n");
}

TEST_F(ScoreCli, Errors) {
  const std::string hyp = Readme();
  std::string out, err;
  // A missing reference file.
  EXPECT_EQ(Run("-r " + (dir_ / "nope").string() + " -i " + hyp, out, err), 1);
  EXPECT_NE(err.find("cannot open '" + (dir_ / "nope").string() + "'"), std::string::npos) << err;
  // Line counts that differ: both counts and both files are named.
  const std::string short_ref = Write("short.ref", "one line\n");
  EXPECT_EQ(Run("-r " + short_ref + " -i " + hyp, out, err), 1);
  EXPECT_NE(err.find("the hypotheses (" + hyp + ") have 3 lines but the reference " + short_ref +
                     " has 1"),
            std::string::npos)
      << err;
  // Invalid UTF-8, named by file and line.
  const std::string bad = Write("bad.hyp", "fine\nfine\nbad \xc3\x28 byte\n");
  EXPECT_EQ(Run("-r " + ref_a_ + " -i " + bad, out, err), 1);
  EXPECT_NE(err.find(bad + ":3: invalid UTF-8 at byte 4"), std::string::npos) << err;
  // An empty hypothesis file, an unknown metric and tokenizer.
  const std::string empty = Write("empty.hyp", "");
  EXPECT_EQ(Run("-r " + ref_a_ + " -i " + empty, out, err), 1);
  EXPECT_NE(err.find("contain no lines"), std::string::npos) << err;
  EXPECT_EQ(Run("-r " + ref_a_ + " -i " + hyp + " --metrics ter", out, err), 1);
  EXPECT_NE(err.find("unknown metric 'ter'"), std::string::npos) << err;
  EXPECT_EQ(Run("-r " + ref_a_ + " -i " + hyp + " --tokenize zh", out, err), 1);
  EXPECT_NE(err.find("unknown name 'zh'"), std::string::npos) << err;
  EXPECT_TRUE(out.empty()) << out;
  // No reference at all is a command-line error.
  EXPECT_NE(Run("-i " + hyp, out, err), 0);
}

// Issue 11: one 50 MB line took 3.65 GB and 4 minutes of chrF. A line over --max-line-bytes
// (256 KiB by default) is an error naming file:line, found while reading.
TEST_F(ScoreCli, LinesOverTheLimitAreRefusedWhileReading) {
  const std::string hyp = Readme();
  std::string out, err;
  const std::string long_line(1 << 20, 'a');
  const std::string big = Write("big.hyp", "fine\n" + long_line + "\nfine\n");
  EXPECT_EQ(Run("-r " + ref_a_ + " -i " + big + " --metrics chrf", out, err), 1);
  EXPECT_NE(err.find(big + ":2: the line is longer than 262144 bytes"), std::string::npos) << err;
  EXPECT_EQ(Run("-r " + big + " -i " + hyp, out, err), 1);
  EXPECT_NE(err.find(big + ":2: the line is longer"), std::string::npos) << err;
  EXPECT_EQ(Run("-r " + ref_a_ + " --max-line-bytes 10 < " + hyp, out, err), 1);
  EXPECT_NE(err.find("<stdin>:1: the line is longer than 10 bytes"), std::string::npos) << err;
  // At the limit is fine: "The dog bit the man." is 20 bytes.
  const std::string one = Write("one.hyp", kHyps[0] + "\n");
  const std::string one_ref = Write("one.ref", kRefs[0][0] + "\n");
  EXPECT_EQ(Run("-r " + one_ref + " -i " + one + " --max-line-bytes 20", out, err), 0) << err;
}

}  // namespace
}  // namespace attend::metrics
