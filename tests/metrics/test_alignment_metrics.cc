// Word alignment and bracket metrics: Pharaoh reading and writing (and its errors, which name the
// line and the link), AER, precision and recall on hand-worked cases, their properties (the
// reference against itself, disjoint links, the symmetry without possible links), a randomized
// check against a recount over every cell of the alignment grid; bracket P/R/F1 on hand-worked
// trees, duplicates counted as a multiset as evalb counts them, ill-formed hypotheses (never an
// exception), and a randomized check against brackets recorded while the trees were drawn.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "attend/error.h"
#include "attend/metrics.h"
#include "support/errors.h"

namespace attend::metrics {
namespace {

using attend::testing::ThrownMessage;
using ::testing::HasSubstr;

using Link = std::pair<int64_t, int64_t>;

// ---- Pharaoh -----------------------------------------------------------------------------------

TEST(Pharaoh, ReadsSureAndPossibleLinks) {
  AlignmentLinks possible = {{9, 9}};  // cleared by the call
  const AlignmentLinks sure = ParsePharaoh("  0-0 1-2\t 2?1 10-3 1-2 ", "x", &possible);
  EXPECT_EQ(sure, (AlignmentLinks{{0, 0}, {1, 2}, {10, 3}, {1, 2}}));  // order and repeats kept
  EXPECT_EQ(possible, (AlignmentLinks{{2, 1}}));
  // Without a place for them, possible links are read as sure ones.
  EXPECT_EQ(ParsePharaoh("0-0 2?1", "x"), (AlignmentLinks{{0, 0}, {2, 1}}));
  EXPECT_TRUE(ParsePharaoh("", "x").empty());
  EXPECT_TRUE(ParsePharaoh(" \t ", "x").empty());
}

TEST(Pharaoh, FormatRoundTrips) {
  const AlignmentLinks links = {{3, 0}, {0, 1}, {12, 7}};
  EXPECT_EQ(FormatPharaoh(links), "3-0 0-1 12-7");
  EXPECT_EQ(ParsePharaoh(FormatPharaoh(links), "x"), links);
  EXPECT_EQ(FormatPharaoh({}), "");
  EXPECT_THAT(ThrownMessage([] { FormatPharaoh({{-1, 2}}); }), HasSubstr("negative"));
}

TEST(Pharaoh, MalformedLinksNameTheLineAndTheLink) {
  for (const char* bad : {"0-", "-1", "a-1", "1-b", "-1-2", "1--2", "1-2-3", "1:2", "+1-2", "1",
                          "1-2?3", "99999999999999999999-1", "1?", "0-0x"}) {
    const std::string message =
        ThrownMessage([&] { ParsePharaoh(std::string("0-0 ") + bad, "hyp.txt:7"); });
    EXPECT_THAT(message, HasSubstr("hyp.txt:7: link 2 '")) << bad;
    EXPECT_THAT(message, HasSubstr("is not an alignment link")) << bad;
  }
  // Control bytes are not echoed; long tokens are cut.
  const std::string message = ThrownMessage([] {
    ParsePharaoh(
        "1-\x01"
        "2",
        "l");
  });
  EXPECT_THAT(message, HasSubstr("'1-?2'"));
  EXPECT_THAT(ThrownMessage([] { ParsePharaoh(std::string(100, '7'), "l"); }),
              HasSubstr("...' is not"));
}

// ---- AER ---------------------------------------------------------------------------------------

TEST(Aer, HandWorked) {
  // A = {0-0, 1-1, 2-1, 3-3}; S = {0-0, 1-1}; P = S + {2-1, 2-2}.
  // |A n S| = 2, |A n P| = 3, |A| = 4, |S| = 2: AER = 1 - 5/6; precision 3/4, recall 2/2.
  const AlignmentScore s = AlignmentErrorRate({{{0, 0}, {1, 1}, {2, 1}, {3, 3}}},
                                              {{{0, 0}, {1, 1}}}, {{{2, 1}, {2, 2}}});
  EXPECT_EQ(s.counts.hypothesis, 4);
  EXPECT_EQ(s.counts.sure, 2);
  EXPECT_EQ(s.counts.possible, 4);
  EXPECT_EQ(s.counts.hit_sure, 2);
  EXPECT_EQ(s.counts.hit_possible, 3);
  EXPECT_DOUBLE_EQ(s.aer, 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.precision, 0.75);
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
}

TEST(Aer, CorpusCountsAreSummedBeforeTheRatio) {
  // Sentence 1: A = S = {0-0}; sentence 2: A = {0-1, 1-0, 2-2}, S = {0-0, 1-1, 2-2}: one hit.
  // The corpus: |A n S| = 2 of |A| = 4, |S| = 4: AER = 1 - 4/8 (the mean of the two sentences'
  // AERs, 0 and 2/3, would be 1/3).
  const AlignmentScore s = AlignmentErrorRate({{{0, 0}}, {{0, 1}, {1, 0}, {2, 2}}},
                                              {{{0, 0}}, {{0, 0}, {1, 1}, {2, 2}}});
  EXPECT_DOUBLE_EQ(s.aer, 0.5);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.recall, 0.5);
}

TEST(Aer, RepeatedLinksCountOnce) {
  const AlignmentScore s = AlignmentErrorRate({{{0, 0}, {0, 0}, {1, 2}}}, {{{0, 0}, {0, 0}}},
                                              {{{0, 0}, {1, 2}, {1, 2}}});
  EXPECT_EQ(s.counts.hypothesis, 2);
  EXPECT_EQ(s.counts.sure, 1);
  EXPECT_EQ(s.counts.possible, 2);  // the possible 0-0 is already sure
  EXPECT_EQ(s.counts.hit_sure, 1);
  EXPECT_EQ(s.counts.hit_possible, 2);
  EXPECT_DOUBLE_EQ(s.aer, 0.0);  // 1 - (1 + 2) / (2 + 1)
}

TEST(Aer, Properties) {
  const std::vector<AlignmentLinks> ref = {{{0, 0}, {1, 2}, {2, 1}}, {{0, 1}}, {}};
  // The reference against itself.
  AlignmentScore s = AlignmentErrorRate(ref, ref);
  EXPECT_EQ(s.aer, 0.0);
  EXPECT_EQ(s.precision, 1.0);
  EXPECT_EQ(s.recall, 1.0);
  // Disjoint from it.
  const std::vector<AlignmentLinks> other = {{{0, 1}, {5, 5}}, {{1, 1}}, {{0, 0}}};
  s = AlignmentErrorRate(other, ref);
  EXPECT_EQ(s.aer, 1.0);
  EXPECT_EQ(s.precision, 0.0);
  EXPECT_EQ(s.recall, 0.0);
  // Without possible links AER = 1 - F1 is symmetric, and precision and recall trade places.
  const std::vector<AlignmentLinks> half = {{{0, 0}, {1, 1}}, {{0, 1}, {2, 2}, {3, 3}}, {}};
  const AlignmentScore ab = AlignmentErrorRate(half, ref), ba = AlignmentErrorRate(ref, half);
  EXPECT_DOUBLE_EQ(ab.aer, ba.aer);
  EXPECT_DOUBLE_EQ(ab.precision, ba.recall);
  EXPECT_DOUBLE_EQ(ab.recall, ba.precision);
  const double f1 = 2 * ab.precision * ab.recall / (ab.precision + ab.recall);
  EXPECT_DOUBLE_EQ(ab.aer, 1.0 - f1);
  // Nothing proposed and nothing to find; nothing proposed against something.
  s = AlignmentErrorRate({{}}, {{}});
  EXPECT_EQ(s.aer, 0.0);
  EXPECT_EQ(s.precision, 1.0);
  EXPECT_EQ(s.recall, 1.0);
  s = AlignmentErrorRate({{}}, {{{0, 0}}});
  EXPECT_EQ(s.aer, 1.0);
  EXPECT_EQ(s.precision, 0.0);
  EXPECT_EQ(s.recall, 0.0);
  // Possible links only forgive: adding them never raises AER.
  const AlignmentScore with_p = AlignmentErrorRate(half, ref, {{{1, 1}}, {{2, 2}}, {}});
  EXPECT_LT(with_p.aer, ab.aer);
}

TEST(Aer, Errors) {
  EXPECT_THAT(ThrownMessage([] {
                AlignmentErrorRate({{}, {}}, {{}});
              }),
              HasSubstr("2 hypothesis alignments but 1 reference alignments"));
  EXPECT_THAT(ThrownMessage([] {
                AlignmentErrorRate({{}}, {{}}, {{}, {}});
              }),
              HasSubstr("2 lines of possible links but 1 reference alignments"));
}

// Random alignments on small grids, with repeats, against a count over every cell.
TEST(Aer, MatchesABruteForceRecount) {
  std::mt19937 rng(20240611);
  for (int trial = 0; trial < 200; ++trial) {
    const int sentences = 1 + static_cast<int>(rng() % 4);
    std::vector<AlignmentLinks> hyp(sentences), sure(sentences), poss(sentences);
    std::vector<int> rows(sentences), cols(sentences);
    for (int k = 0; k < sentences; ++k) {
      rows[k] = 1 + static_cast<int>(rng() % 6);
      cols[k] = 1 + static_cast<int>(rng() % 6);
      auto draw = [&](AlignmentLinks& links, int n) {
        for (int i = 0; i < n; ++i) links.emplace_back(rng() % rows[k], rng() % cols[k]);
      };
      draw(hyp[k], static_cast<int>(rng() % 8));
      draw(sure[k], static_cast<int>(rng() % 8));
      draw(poss[k], static_cast<int>(rng() % 5));
    }
    int64_t a = 0, s = 0, p = 0, as = 0, ap = 0;
    auto has = [](const AlignmentLinks& l, Link x) {
      return std::find(l.begin(), l.end(), x) != l.end();
    };
    for (int k = 0; k < sentences; ++k) {
      for (int i = 0; i < rows[k]; ++i) {
        for (int j = 0; j < cols[k]; ++j) {
          const Link x(i, j);
          const bool in_a = has(hyp[k], x), in_s = has(sure[k], x);
          const bool in_p = in_s || has(poss[k], x);
          a += in_a, s += in_s, p += in_p, as += in_a && in_s, ap += in_a && in_p;
        }
      }
    }
    const AlignmentScore got = AlignmentErrorRate(hyp, sure, poss);
    EXPECT_EQ(got.counts.hypothesis, a);
    EXPECT_EQ(got.counts.sure, s);
    EXPECT_EQ(got.counts.possible, p);
    EXPECT_EQ(got.counts.hit_sure, as);
    EXPECT_EQ(got.counts.hit_possible, ap);
    if (a + s > 0) {
      EXPECT_DOUBLE_EQ(got.aer, 1.0 - static_cast<double>(as + ap) / static_cast<double>(a + s));
    }
    if (a > 0) {
      EXPECT_DOUBLE_EQ(got.precision, static_cast<double>(ap) / static_cast<double>(a));
    }
    if (s > 0) {
      EXPECT_DOUBLE_EQ(got.recall, static_cast<double>(as) / static_cast<double>(s));
    }
    EXPECT_GE(got.aer, 0.0);
    EXPECT_LE(got.aer, 1.0);
  }
}

TEST(Aer, ScoreLine) {
  const AlignmentScore s = AlignmentErrorRate({{{0, 0}, {1, 1}, {2, 1}, {3, 3}}},
                                              {{{0, 0}, {1, 1}}}, {{{2, 1}, {2, 2}}});
  const Score line = AlignmentScoreLine(s, 2);
  EXPECT_EQ(line.name, "AER");
  EXPECT_EQ(line.verbose, "(P = 75.00 R = 100.00 |A| = 4 |S| = 2 |P| = 4)");
  EXPECT_THAT(line.Format(2, true), HasSubstr(" = 16.67 (P = 75.00"));
  const Score plain = AlignmentScoreLine(AlignmentErrorRate({{{0, 0}}}, {{{0, 0}}}), 1);
  EXPECT_EQ(plain.FormatScore(1), "0.0");
  EXPECT_EQ(plain.verbose, "(P = 100.0 R = 100.0 |A| = 1 |S| = 1)");
  EXPECT_THAT(plain.Json(1), HasSubstr("\"hit_possible\": 1"));
}

// ---- Brackets ----------------------------------------------------------------------------------

const char kRef[] = "(S (NP XX XX ) (VP XX (NP XX ) ) )";

TEST(Brackets, ATreeAgainstItself) {
  const BracketScore s =
      BracketF1({kRef, "(S (NP XX ) (VP XX ) )"}, {kRef, "(S (NP XX ) (VP XX ) )"});
  EXPECT_EQ(s.sentences, 2);
  EXPECT_EQ(s.exact, 2);
  EXPECT_EQ(s.matched, 7);
  EXPECT_EQ(s.hypothesis_brackets, 7);
  EXPECT_EQ(s.reference_brackets, 7);
  EXPECT_EQ(s.f1, 1.0);
  EXPECT_EQ(s.exact_match, 1.0);
  EXPECT_EQ(s.ill_formed, 0);
  // Words instead of XX, other whitespace and closing labels read the same.
  const BracketScore w = BracketF1({"(S (NP the dog )NP\t(VP saw  (NP it )NP )VP )S"}, {kRef});
  EXPECT_EQ(w.exact, 1);
  EXPECT_EQ(w.f1, 1.0);
}

TEST(Brackets, HandWorked) {
  // Reference: S[0,4) NP[0,2) VP[2,4) NP[3,4). Hypothesis: S[0,4) NP[0,1) VP[1,4) NP[2,4).
  const BracketScore s = BracketF1({"(S (NP XX ) (VP XX (NP XX XX ) ) )"}, {kRef});
  EXPECT_EQ(s.matched, 1);
  EXPECT_EQ(s.exact, 0);
  EXPECT_DOUBLE_EQ(s.precision, 0.25);
  EXPECT_DOUBLE_EQ(s.recall, 0.25);
  EXPECT_DOUBLE_EQ(s.f1, 0.25);
  // Labels count: the same spans under other labels match only S.
  const BracketScore l = BracketF1({"(S (VP XX XX ) (NP XX (VP XX ) ) )"}, {kRef});
  EXPECT_EQ(l.matched, 1);
  // Corpus totals: (1 + 4) matched of (4 + 4) hypothesis and (4 + 4) reference brackets.
  const BracketScore c = BracketF1({"(S (NP XX ) (VP XX (NP XX XX ) ) )", kRef}, {kRef, kRef});
  EXPECT_DOUBLE_EQ(c.precision, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(c.f1, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(c.exact_match, 0.5);
  // Fewer brackets: P 3/3, R 3/4, F1 6/7.
  const BracketScore f = BracketF1({"(S (NP XX XX ) (VP XX XX ) )"}, {kRef});
  EXPECT_DOUBLE_EQ(f.precision, 1.0);
  EXPECT_DOUBLE_EQ(f.recall, 0.75);
  EXPECT_DOUBLE_EQ(f.f1, 6.0 / 7.0);
}

TEST(Brackets, DuplicatesCountAsAMultiset) {
  // Two NP over word 0 in the reference (a unary chain).
  const std::string ref = "(S (NP (NP XX ) ) (VP XX ) )";
  BracketScore s = BracketF1({"(S (NP XX ) (VP XX ) )"}, {ref});
  EXPECT_EQ(s.matched, 3);
  EXPECT_DOUBLE_EQ(s.precision, 1.0);
  EXPECT_DOUBLE_EQ(s.recall, 0.75);
  EXPECT_EQ(s.exact, 0);
  // Three in the hypothesis match two, not three.
  s = BracketF1({"(S (NP (NP (NP XX ) ) ) (VP XX ) )"}, {ref});
  EXPECT_EQ(s.hypothesis_brackets, 5);
  EXPECT_EQ(s.matched, 4);
  EXPECT_DOUBLE_EQ(s.precision, 0.8);
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
  EXPECT_EQ(s.exact, 0);
  s = BracketF1({ref}, {ref});
  EXPECT_EQ(s.exact, 1);
}

TEST(Brackets, IllFormedHypothesesNeverThrow) {
  struct Case {
    const char* hyp;
    int64_t brackets, matched;  // closed correctly; of them, in kRef
  };
  const Case cases[] = {
      {"", 0, 0},
      {"   ", 0, 0},
      {"XX XX XX XX", 0, 0},
      {")))", 0, 0},
      {"(((", 0, 0},
      {"(S (NP XX XX ) (VP XX", 1, 1},                  // left open: NP closed
      {"(S (NP XX XX ) ) ) (VP XX )", 3, 1},            // a stray ')' and a second tree
      {"(S (NP XX XX )VP (VP XX (NP XX ) ) )", 3, 3},   // ')VP' closes (NP: no credit
      {"(S (NP ) (VP XX XX (NP XX ) ) )", 3, 0},        // an empty NP: the spans shift
      {"XX (S (NP XX ) (VP XX (NP XX ) ) )", 4, 2},     // a word before the tree: VP, inner NP
      {"( XX XX )", 1, 0},                              // a bracket without a label
      {"(S (NP XX XX ) (VP XX (NP XX ) ) ) XX", 4, 4},  // a word after it
  };
  for (const Case& c : cases) {
    BracketScore s;
    EXPECT_NO_THROW(s = BracketF1({c.hyp}, {kRef})) << c.hyp;
    EXPECT_EQ(s.ill_formed, 1) << c.hyp;
    EXPECT_EQ(s.exact, 0) << c.hyp;
    EXPECT_EQ(s.hypothesis_brackets, c.brackets) << c.hyp;
    EXPECT_EQ(s.matched, c.matched) << c.hyp;
    EXPECT_EQ(s.reference_brackets, 4) << c.hyp;
    EXPECT_GE(s.f1, 0.0);
    EXPECT_LE(s.f1, 1.0);
  }
  // All of them at once: nothing proposed gives precision 0, not a division by zero.
  const BracketScore none = BracketF1({""}, {kRef});
  EXPECT_EQ(none.precision, 0.0);
  EXPECT_EQ(none.f1, 0.0);
}

TEST(Brackets, ReferenceErrorsNameTheLine) {
  EXPECT_THAT(ThrownMessage([] {
                BracketF1({kRef, kRef}, {kRef, "(S (NP XX )"});
              }),
              HasSubstr("BracketF1: reference line 2 is not a well-formed tree"));
  EXPECT_THAT(ThrownMessage([] { BracketF1({kRef}, {""}); }), HasSubstr("no tree"));
  EXPECT_THAT(ThrownMessage([] { BracketF1({kRef}, {"(S XX ) (S XX )"}); }),
              HasSubstr("a second tree"));
  EXPECT_THAT(ThrownMessage([] { BracketF1({kRef}, {"(S (NP ) XX )"}); }),
              HasSubstr("(NP holds no word"));
  EXPECT_THAT(ThrownMessage([] {
                BracketF1({kRef}, {kRef, kRef});
              }),
              HasSubstr("1 hypothesis trees but 2 reference trees"));
}

TEST(Brackets, ScoreLine) {
  const BracketScore s = BracketF1({"(S (NP XX XX ) (VP XX XX ) )", "(S"}, {kRef, kRef});
  const Score line = BracketScoreLine(s, 1);
  EXPECT_EQ(line.name, "BracketF1");
  // P 3/3, R 3/8, F1 6/11; one ill-formed.
  EXPECT_EQ(line.FormatScore(1), "54.5");
  EXPECT_EQ(line.verbose, "(P = 100.0 R = 37.5 exact = 0.0% n = 2 ill-formed = 1)");
  EXPECT_THAT(line.Json(1), HasSubstr("\"ill_formed\": 1"));
}

// Random trees whose brackets are recorded as they are drawn, scored against one another: the
// counts must be the multiset intersection of the recorded brackets.
struct DrawnTree {
  std::string text;
  std::vector<std::tuple<std::string, int64_t, int64_t>> brackets;
  int64_t leaves = 0;
};

void DrawNode(std::mt19937& rng, int depth, DrawnTree& tree) {
  static const char* kLabels[] = {"S", "NP", "VP", "PP", "SBAR"};
  const std::string label = kLabels[rng() % 5];
  const int64_t start = tree.leaves;
  tree.text += "(" + label + " ";
  const int children = 1 + static_cast<int>(rng() % 3);
  for (int c = 0; c < children; ++c) {
    if (depth < 3 && rng() % 3 == 0) {
      DrawNode(rng, depth + 1, tree);
    } else {
      tree.text += "XX ";
      ++tree.leaves;
    }
  }
  tree.text += ") ";
  tree.brackets.emplace_back(label, start, tree.leaves);
}

TEST(Brackets, MatchesRecordedBrackets) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<std::string> hyps, refs;
    int64_t matched = 0, hyp_n = 0, ref_n = 0, exact = 0;
    for (int k = 0; k < 4; ++k) {
      DrawnTree h, r;
      DrawNode(rng, 0, r);
      // Half the time a copy, so that exact matches occur.
      if (rng() % 2) {
        h = r;
      } else {
        DrawNode(rng, 0, h);
      }
      std::map<std::tuple<std::string, int64_t, int64_t>, int> hc, rc;
      for (const auto& b : h.brackets) ++hc[b];
      for (const auto& b : r.brackets) ++rc[b];
      int64_t m = 0;
      for (const auto& [b, n] : hc) m += std::min(n, rc.count(b) ? rc[b] : 0);
      matched += m;
      hyp_n += static_cast<int64_t>(h.brackets.size());
      ref_n += static_cast<int64_t>(r.brackets.size());
      exact += hc == rc && h.leaves == r.leaves;
      hyps.push_back(h.text);
      refs.push_back(r.text);
    }
    const BracketScore s = BracketF1(hyps, refs);
    EXPECT_EQ(s.matched, matched);
    EXPECT_EQ(s.hypothesis_brackets, hyp_n);
    EXPECT_EQ(s.reference_brackets, ref_n);
    EXPECT_EQ(s.exact, exact);
    EXPECT_EQ(s.ill_formed, 0);
    const double p = static_cast<double>(matched) / static_cast<double>(hyp_n);
    const double r = static_cast<double>(matched) / static_cast<double>(ref_n);
    EXPECT_DOUBLE_EQ(s.precision, p);
    EXPECT_DOUBLE_EQ(s.recall, r);
    if (matched > 0) {
      EXPECT_DOUBLE_EQ(s.f1, 2 * p * r / (p + r));
    }
  }
}

}  // namespace
}  // namespace attend::metrics
