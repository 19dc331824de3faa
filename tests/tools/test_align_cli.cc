// `attend train --guided-alignment`, `attend align` and `attend translate --alignment table |
// --alignment-layer/--alignment-head` end to end on the synthetic corpus (`attend corpus
// synthetic`, which writes the true alignments): the alignments written line for line, AER against
// the gold links, the table of every head, exact resume with guided alignment, and a clear message
// with a non-zero exit code for each kind of bad input, bad lines keeping their place.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "attend/metrics.h"
#include "support/checkpoints.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using testing::Lines;
using testing::ReadFile;
using testing::RunCommand;
using testing::ShellQuote;
using testing::WriteFile;

class AlignCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("attend_align_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    const auto r = RunCommand(AttendCommand("corpus synthetic -q -o " + ShellQuote(*dir_ / "data") +
                                            " --train 300 --dev 10 --test 20 --max-words 7"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Data(const std::string& name) { return ShellQuote(*dir_ / "data" / name); }
  // A tiny model: the Transformer (2 layers x 2 heads) unless `extra` says otherwise.
  static std::string TrainArgs(const fs::path& out, int steps, const std::string& extra = "") {
    return "train --train-src " + Data("train.src") + " --train-tgt " + Data("train.tgt") +
           " --dev-src " + Data("dev.src") + " --dev-tgt " + Data("dev.tgt") + " --out " +
           ShellQuote(out) +
           " --vocab-size 300 --max-tokens 200 --valid-every 3 --valid-sentences 2 --warmup 2"
           " --lr 0.01 --no-progress --threads 1 --log-every 1 --max-steps " +
           std::to_string(steps) + " " + extra;
  }
  static std::string Transformer() {
    return "--arch transformer --d-model 16 --heads 2 --ff-dim 32 --layers 2 ";
  }
  // A trained guided Transformer, shared by the tests that only read it.
  static std::string Model() {
    const fs::path out = *dir_ / "guided";
    if (!fs::exists(out / "best.ckpt")) {
      const auto r = RunCommand(AttendCommand(
          TrainArgs(out, 6, Transformer() + "--guided-alignment " + Data("train.align"))));
      EXPECT_EQ(r.exit_code, 0) << r.output;
      EXPECT_NE(r.output.find("guided alignment: "), std::string::npos) << r.output;
      EXPECT_NE(ReadFile((out / "train.log").string()).find("| align "), std::string::npos);
    }
    return ShellQuote(out / "best.ckpt");
  }
  static fs::path* dir_;
};
fs::path* AlignCli::dir_ = nullptr;

// Every output line is a Pharaoh line whose links stay inside its sentence pair.
void ExpectPharaohLines(const std::vector<std::string>& lines, const std::string& src,
                        const std::string& tgt) {
  const auto s = Lines(src), t = Lines(tgt);
  ASSERT_EQ(lines.size(), s.size());
  auto words = [](const std::string& x) {
    return static_cast<int64_t>(std::count(x.begin(), x.end(), ' ') + 1);
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto links = metrics::ParsePharaoh(lines[i], "line " + std::to_string(i + 1));
    EXPECT_FALSE(links.empty()) << "line " << i + 1;
    for (const auto& [a, b] : links) {
      EXPECT_LT(a, words(s[i])) << "line " << i + 1;
      EXPECT_LT(b, words(t[i])) << "line " << i + 1;
    }
    // One link per target word, in target order.
    EXPECT_EQ(static_cast<int64_t>(links.size()), words(t[i])) << "line " << i + 1;
  }
}

TEST_F(AlignCli, AlignWritesPharaohLinesAndScoresThem) {
  const std::string model = Model();
  const std::string src = ReadFile((*dir_ / "data" / "test.src").string()),
                    tgt = ReadFile((*dir_ / "data" / "test.tgt").string());
  // Pharaoh lines on stdout, the scores on stderr (kept apart here: RunCommand merges them).
  auto r = RunCommand("{ " +
                      AttendCommand("align -m " + model + " --src " + Data("test.src") + " --tgt " +
                                    Data("test.tgt") + " --ref " + Data("test.align")) +
                      " 2>" + ShellQuote(*dir_ / "err") + "; }");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectPharaohLines(Lines(r.output), src, tgt);
  const std::string report = ReadFile((*dir_ / "err").string());
  EXPECT_NE(report.find("decoder.1.cross head 0: AER"), std::string::npos) << report;
  EXPECT_NE(report.find("|S| = "), std::string::npos) << report;

  // To a file: the scores come on stdout; the chosen site is read.
  const fs::path out = *dir_ / "out.align";
  r = RunCommand(AttendCommand("align -m " + model + " --src " + Data("test.src") + " --tgt " +
                               Data("test.tgt") + " --ref " + Data("test.align") +
                               " --alignment-layer 0 --alignment-head 1 -o " + ShellQuote(out)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("decoder.0.cross head 1: AER"), std::string::npos) << r.output;
  ExpectPharaohLines(Lines(ReadFile(out.string())), src, tgt);
}

TEST_F(AlignCli, AllHeadsTableShowsEveryLayerAndHead) {
  const std::string model = Model();
  const auto r = RunCommand(AttendCommand(
      "align -m " + model + " --src " + Data("test.src") + " --tgt " + Data("test.tgt") +
      " --ref " + Data("test.align") + " --all-heads -o " + ShellQuote(*dir_ / "best.align")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = Lines(r.output);
  ASSERT_EQ(lines.size(), 8u) << r.output;  // header, 2 layers x (2 heads + mean), the choice
  EXPECT_NE(lines[0].find("AER"), std::string::npos);
  int mean = 0, rows = 0;
  for (const std::string& l : lines) {
    rows += l.rfind("decoder.", 0) == 0;
    mean += l.find("mean of heads") != std::string::npos && l.rfind("decoder.", 0) == 0;
  }
  EXPECT_EQ(rows, 6);
  EXPECT_EQ(mean, 2);
  EXPECT_NE(lines.back().find("alignments written from the lowest AER"), std::string::npos);
  EXPECT_EQ(Lines(ReadFile((*dir_ / "best.align").string())).size(), 20u);
}

// A line that cannot be aligned gives an empty line in its place and exit code 1; the others are
// aligned as usual.
TEST_F(AlignCli, BadLinesKeepTheirPlace) {
  const std::string model = Model();
  WriteFile((*dir_ / "bad.src").string(), "this kort nemed\nthe kort\nthe \xff kort\nsome kort\n");
  WriteFile((*dir_ / "bad.tgt").string(), "pachi ra nemedo\n\npachi ga\npachi ga\n");
  const auto r = RunCommand(
      AttendCommand("align -m " + model + " --src " + ShellQuote(*dir_ / "bad.src") + " --tgt " +
                    ShellQuote(*dir_ / "bad.tgt") + " -o " + ShellQuote(*dir_ / "bad.align")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("line 2: the target is empty"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("line 3: invalid UTF-8"), std::string::npos) << r.output;
  const auto lines = Lines(ReadFile((*dir_ / "bad.align").string()));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_FALSE(lines[0].empty());
  EXPECT_TRUE(lines[1].empty());
  EXPECT_TRUE(lines[2].empty());
  EXPECT_EQ(metrics::ParsePharaoh(lines[3], "4").size(), 2u);
}

TEST_F(AlignCli, BadInputIsNamed) {
  const std::string model = Model();
  WriteFile((*dir_ / "two.tgt").string(), "pachi\npachi\n");
  WriteFile((*dir_ / "one.align").string(), "0-0\n");
  auto align = [&](const std::string& args) {
    return RunCommand(
        AttendCommand("align -m " + model + " --src " + Data("test.src") + " " + args));
  };
  auto r = align("--tgt " + ShellQuote(*dir_ / "two.tgt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("has 20 lines but"), std::string::npos) << r.output;
  r = align("--tgt " + Data("test.tgt") + " --ref " + ShellQuote(*dir_ / "one.align"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("has 1 lines for 20 sentence pairs"), std::string::npos) << r.output;
  r = align("--tgt " + Data("test.tgt") + " --all-heads");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("give --ref"), std::string::npos) << r.output;
  r = align("--tgt " + Data("test.tgt") + " --alignment-head 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("2 layers x 2 heads"), std::string::npos) << r.output;
  r = align("--tgt " + Data("test.tgt") + " --ref " + Data("test.align") +
            " --all-heads --alignment-head 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("excludes"), std::string::npos) << r.output;
  r = align("--tgt " + ShellQuote(*dir_ / "missing.tgt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("missing.tgt"), std::string::npos) << r.output;
}

TEST_F(AlignCli, TranslatePrintsTheWeightTableAndReadsAnyHead) {
  const std::string model = Model();
  auto r = RunCommand("printf 'this kort nemed\\n\\nsome kort\\n' | " +
                      AttendCommand("translate -m " + model + " --greedy --alignment table"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Each translation, then its table (header, one row per target token and </s>), then a blank
  // line; the empty input line gives an empty line and no table.
  const auto lines = Lines(r.output);
  ASSERT_GE(lines.size(), 8u) << r.output;
  EXPECT_NE(lines[1].find("kort"), std::string::npos) << r.output;  // the source across
  size_t eos = 0;
  while (eos < lines.size() && lines[eos].rfind("</s>", 0) != 0) ++eos;
  ASSERT_LT(eos + 1, lines.size()) << r.output;
  EXPECT_TRUE(lines[eos + 1].empty());
  EXPECT_TRUE(lines[eos + 2].empty()) << "the empty line's translation: " << r.output;
  for (size_t i = 2; i <= eos; ++i) EXPECT_NE(lines[i].find("0."), std::string::npos) << lines[i];

  r = RunCommand(
      "printf 'this kort nemed\\n' | " +
      AttendCommand("translate -m " + model +
                    " --greedy --alignment soft --alignment-layer 0 --alignment-head 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(" ||| "), std::string::npos) << r.output;
  r = RunCommand("printf 'this kort nemed\\n' | " +
                 AttendCommand("translate -m " + model + " --alignment hard --alignment-layer 2"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("2 layers x 2 heads"), std::string::npos) << r.output;
  r = RunCommand("printf 'this kort nemed\\n' | " +
                 AttendCommand("translate -m " + model + " --alignment-head 1"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("give one"), std::string::npos) << r.output;
}

// The RNN has one site: layer 0, head 0.
TEST_F(AlignCli, RnnHasOneSite) {
  const fs::path out = *dir_ / "rnn";
  auto r = RunCommand(AttendCommand(
      TrainArgs(out, 4,
                "--arch rnn-attention --embed-dim 16 --hidden-dim 16 --attention-dim 8 "
                "--guided-alignment " +
                    Data("train.align"))));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string model = ShellQuote(out / "best.ckpt");
  r = RunCommand(AttendCommand("align -m " + model + " --src " + Data("test.src") + " --tgt " +
                               Data("test.tgt") + " --ref " + Data("test.align") +
                               " --all-heads -o " + ShellQuote(*dir_ / "rnn.align")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Lines(r.output).size(), 3u) << r.output;  // header, the one site, the choice
  r = RunCommand(AttendCommand("align -m " + model + " --src " + Data("test.src") + " --tgt " +
                               Data("test.tgt") + " --alignment-layer 1"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("1 layers x 1 heads"), std::string::npos) << r.output;
  r = RunCommand(AttendCommand(TrainArgs(*dir_ / "rnn2", 2,
                                         "--embed-dim 16 --hidden-dim 16 --alignment-layer 1 "
                                         "--guided-alignment " +
                                             Data("train.align"))));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--alignment-layer 1"), std::string::npos) << r.output;
}

TEST_F(AlignCli, GuidedAlignmentFileMustFitTheCorpus) {
  WriteFile((*dir_ / "short.align").string(), "0-0\n1-1\n");
  auto r = RunCommand(AttendCommand(
      TrainArgs(*dir_ / "short", 2,
                Transformer() + "--guided-alignment " + ShellQuote(*dir_ / "short.align"))));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("has 2 alignment lines for 300 training pairs"), std::string::npos)
      << r.output;
  // A link beyond its sentence names the file and line.
  std::string lines = ReadFile((*dir_ / "data" / "train.align").string());
  lines.insert(lines.find('\n'), " 99-0");
  WriteFile((*dir_ / "far.align").string(), lines);
  r = RunCommand(AttendCommand(TrainArgs(
      *dir_ / "far", 2, Transformer() + "--guided-alignment " + ShellQuote(*dir_ / "far.align"))));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("far.align:1: link 99-0"), std::string::npos) << r.output;
}

// Training 6 steps straight and training 3, stopping, then resuming to 6 give the same weights
// with guided alignment on (and dropout, whose streams the checkpoint holds).
TEST_F(AlignCli, GuidedResumeContinuesExactly) {
  const std::string extra = Transformer() + "--dropout 0.3 --guided-alignment " +
                            Data("train.align") + " --alignment-layer 0 --alignment-head 1";
  const fs::path a = *dir_ / "straight", b = *dir_ / "resumed";
  auto r = RunCommand(AttendCommand(TrainArgs(a, 6, extra)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(TrainArgs(b, 3, extra)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(TrainArgs(b, 6, extra) + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming at step 3"), std::string::npos) << r.output;
  testing::ExpectSameCheckpoints((a / "last.ckpt").string(), (b / "last.ckpt").string(), 6);
}

}  // namespace
}  // namespace attend
