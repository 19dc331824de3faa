// `attend score --metrics aer` and `--metrics bracket`: the printed line and JSON equal the
// library's, `attend translate --alignment hard` lines are read, errors name the file and line,
// the metrics are scored alone; and on a corpus from `attend corpus synthetic`, its reference
// alignments and trees score perfectly against themselves.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attend/metrics.h"
#include "support/command.h"
#include "support/files.h"

namespace attend::metrics {
namespace {

using attend::testing::AttendCommand;
using attend::testing::CommandResult;
using attend::testing::RunCommand;
using attend::testing::ShellQuote;
using attend::testing::TempDir;
using ::testing::HasSubstr;

class ScoreAlignmentCli : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    attend::testing::WriteFile(dir_ / name, contents);
    return dir_ / name;
  }
  CommandResult RunScore(const std::string& args) {
    return RunCommand(AttendCommand("score " + args));
  }
  TempDir dir_;
};

TEST_F(ScoreAlignmentCli, Aer) {
  // Sentence 1: A = {0-0, 1-1, 2-1, 3-3}, S = {0-0, 1-1}, P adds 2-1 and 2-2 (the hand-worked case
  // of test_alignment_metrics.cc); sentence 2: A = {}, S = {0-1}; sentence 3: the hard-alignment
  // line of a translation with no links.
  const std::string ref = Write("ref.align", "0-0 1-1 2?1 2?2\n0-1\n\n");
  const std::string hyp = Write("hyp.txt", "a b c d ||| 0-0 1-1 2-1 3-3\nx y |||\nz ||| \n");
  const AlignmentScore expected =
      AlignmentErrorRate({{{0, 0}, {1, 1}, {2, 1}, {3, 3}}, {}, {}},
                         {{{0, 0}, {1, 1}}, {{0, 1}}, {}}, {{{2, 1}, {2, 2}}, {}, {}});
  EXPECT_EQ(expected.counts.sure, 3);
  CommandResult r = RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metric aer");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Score line = AlignmentScoreLine(expected, 1);
  EXPECT_EQ(r.output, FormatScores({&line}, 1, false));
  // 1 - (2 + 3) / (4 + 3) = 28.6%; P = 3/4, R = 2/3.
  EXPECT_THAT(r.output, HasSubstr(" = 28.6 (P = 75.0 R = 66.7 |A| = 4 |S| = 3 |P| = 5)\n"));
  r = RunScore("--ref " + ShellQuote(ref) + " -i " + ShellQuote(hyp) +
               " --metrics aer --json -w 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, AlignmentScoreLine(expected, 2).Json(2) + "\n");
  EXPECT_THAT(r.output, HasSubstr("\"score\": 28.57"));
  // Plain Pharaoh from stdin; --score-only.
  const std::string plain = Write("hyp.align", "0-0 1-1 2-1 3-3\n\n\n");
  r = RunScore("-r " + ShellQuote(ref) + " --metrics aer -b < " + ShellQuote(plain));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "28.6\n");
}

TEST_F(ScoreAlignmentCli, Brackets) {
  const std::string ref =
      Write("ref.tree", "(S (NP XX XX ) (VP XX (NP XX ) ) )\n(S (NP XX ) (VP XX ) )\n");
  const std::string hyp = Write("hyp.tree", "(S (NP XX XX ) (VP XX XX ) )\n(S (NP XX\n");
  const BracketScore expected =
      BracketF1({"(S (NP XX XX ) (VP XX XX ) )", "(S (NP XX"},
                {"(S (NP XX XX ) (VP XX (NP XX ) ) )", "(S (NP XX ) (VP XX ) )"});
  CommandResult r =
      RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metrics bracket -w 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Score line = BracketScoreLine(expected, 2);
  EXPECT_EQ(r.output, FormatScores({&line}, 2, false));
  // 3 of 3 hypothesis brackets match, of 7 reference ones.
  EXPECT_THAT(r.output,
              HasSubstr(" = 60.00 (P = 100.00 R = 42.86 exact = 0.0% n = 2 ill-formed = 1)\n"));
  r = RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(hyp) + " --metrics bracket --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"reference_brackets\": 7"));
}

TEST_F(ScoreAlignmentCli, Errors) {
  const std::string ref = Write("ref.align", "0-0\n1-1\n");
  const std::string bad = Write("bad.align", "0-0\n1-x\n");
  CommandResult r = RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(bad) + " --metrics aer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(bad + ":2: link 1 '1-x' is not an alignment link")) << r.output;
  r = RunScore("-r " + ShellQuote(bad) + " -i " + ShellQuote(ref) + " --metrics aer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(bad + ":2: link 1")) << r.output;
  // Scored alone, against one reference.
  r = RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(ref) + " --metrics aer,bleu");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("aer reads other hypotheses than the text metrics"));
  r = RunScore("-r " + ShellQuote(ref) + " -r " + ShellQuote(ref) + " -i " + ShellQuote(ref) +
               " --metrics aer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("aer takes one reference file, got 2"));
  r = RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(ref) + " --metrics bracket,aer");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("is scored alone"));
  // A malformed reference tree names the file and line.
  const std::string tree = Write("ref.tree", "(S XX )\n(S XX\n");
  r = RunScore("-r " + ShellQuote(tree) + " -i " + ShellQuote(tree) + " --metrics bracket");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(tree + ": BracketF1: reference line 2 is not a well-formed tree"))
      << r.output;
  // The unknown-metric message names both kinds.
  r = RunScore("-r " + ShellQuote(ref) + " -i " + ShellQuote(ref) + " --metrics aerr");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output,
              HasSubstr("(expected bleu, chrf, chrf++, wer, cer), or aer or bracket alone"));
}

// The sanity check of the synthetic corpus: its true alignments and trees against themselves.
TEST_F(ScoreAlignmentCli, SyntheticCorpusAgainstItself) {
  const std::string out = dir_ / "corpus";
  CommandResult r = RunCommand(AttendCommand("corpus synthetic -q -o " + ShellQuote(out) +
                                             " --train 200 --dev 20 --test 50 --seed 9"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string align = out + "/test.align", tree = out + "/test.tree";
  r = RunScore("-r " + ShellQuote(align) + " -i " + ShellQuote(align) + " --metrics aer");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(" = 0.0 (P = 100.0 R = 100.0 |A| = ")) << r.output;
  r = RunScore("-r " + ShellQuote(tree) + " -i " + ShellQuote(tree) + " --metrics bracket");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(" = 100.0 (P = 100.0 R = 100.0 exact = 100.0% n = 50)"))
      << r.output;
  // Trees of another split do not match, and score less.
  r = RunScore("-r " + ShellQuote(tree) + " -i " + ShellQuote(out + "/train.tree") +
               " --metrics bracket");
  EXPECT_EQ(r.exit_code, 1);  // 200 lines against 50
  EXPECT_THAT(r.output, HasSubstr("have 200 lines but the reference"));
}

}  // namespace
}  // namespace attend::metrics
