// Image captioning end to end through the `attend` command: a tiny scenes corpus (`attend corpus
// scenes`), `attend train --task caption` with exact resume (hard attention: its sampler's
// stream and baseline live in the checkpoint), `attend caption` (order kept when an image is bad,
// attention pictures, BLEU and grounding for a TSV), and the errors a user meets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/checkpoints.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using ::testing::HasSubstr;
using testing::Lines;
using testing::RunCommand;
using testing::ShellQuote;

class CaptionCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("attend_caption_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const auto r = RunCommand(AttendCommand("corpus scenes --out " + ShellQuote(Corpus()) +
                                            " --train 24 --dev 4 --test 6 --seed 3"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Corpus() { return (*dir_ / "corpus").string(); }
  static std::string TrainArgs(const fs::path& out, const std::string& model, int steps) {
    return "train --task caption --data " + ShellQuote(Corpus()) + " --out " +
           ShellQuote(out.string()) + " " + model +
           " --hidden-dim 16 --embed-dim 8 --attention-dim 8 --cnn-channels 2 --dropout 0.2 "
           "--max-tokens 600 --valid-every 2 --valid-sentences 4 --no-progress --threads 1 "
           "--max-steps " +
           std::to_string(steps);
  }
  static fs::path* dir_;
};
fs::path* CaptionCli::dir_ = nullptr;

TEST_F(CaptionCli, TrainsResumesExactlyAndCaptions) {
  const std::string hard = "--arch show-attend-tell --image-attention hard";
  const fs::path a = *dir_ / "a", b = *dir_ / "b";
  auto r = RunCommand(AttendCommand(TrainArgs(a, hard, 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("word vocabulary"));
  EXPECT_THAT(r.output, HasSubstr("best dev BLEU"));
  r = RunCommand(AttendCommand(TrainArgs(b, hard, 3)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(TrainArgs(b, hard, 6) + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resuming at step 3"));
  testing::ExpectSameCheckpoints((a / "last.ckpt").string(), (b / "last.ckpt").string(), 6);

  // The test scenes with an unreadable image in the middle: every other line keeps its place.
  const fs::path soft = *dir_ / "soft";
  r = RunCommand(AttendCommand(TrainArgs(soft, "--arch top-down", 4)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines = Lines(testing::ReadFile(Corpus() + "/test.tsv"));
  ASSERT_EQ(lines.size(), 30u);  // 6 scenes x 5 captions
  for (auto& l : lines) l = Corpus() + "/" + l;
  lines.insert(lines.begin() + 5, "/no/such/image.png\ta bag");
  std::string tsv;
  for (const auto& l : lines) tsv += l + "\n";
  testing::WriteFile((*dir_ / "t.tsv").string(), tsv);
  const fs::path png = *dir_ / "png";
  r = RunCommand(AttendCommand("caption -m " + ShellQuote((soft / "best.ckpt").string()) +
                               " --tsv " + ShellQuote((*dir_ / "t.tsv").string()) + " --items " +
                               ShellQuote(Corpus() + "/test.items.jsonl") +
                               " --beam 2 --attention-png " + ShellQuote(png.string()) + " -o " +
                               ShellQuote((*dir_ / "hyp.txt").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("/no/such/image.png"));
  EXPECT_THAT(r.output, HasSubstr("BLEU-4"));
  EXPECT_THAT(r.output, HasSubstr("(5 references)"));
  EXPECT_THAT(r.output, HasSubstr("grounding"));
  EXPECT_THAT(r.output, HasSubstr("items named: precision"));
  const std::vector<std::string> hyp = Lines(testing::ReadFile((*dir_ / "hyp.txt").string()));
  ASSERT_EQ(hyp.size(), 7u);
  EXPECT_EQ(hyp[1], "");
  // One picture per readable image that got at least one word.
  int pictures = 0, words = 0;
  for (const auto& e : fs::directory_iterator(png)) pictures += e.path().extension() == ".png";
  for (size_t i = 0; i < hyp.size(); ++i) words += i != 1 && !hyp[i].empty();
  EXPECT_EQ(pictures, words);
  EXPECT_FALSE(fs::exists(png / "000001.png"));

  // Image files on the command line, in order; the same captions as through the TSV.
  const std::string image0 = lines[0].substr(0, lines[0].find('\t'));
  const std::string image1 = lines[10].substr(0, lines[10].find('\t'));
  r = RunCommand(AttendCommand("caption --beam 2 -m " + ShellQuote((soft / "best.ckpt").string()) +
                               " " + ShellQuote(image0) + " " + ShellQuote(image1) +
                               " 2>/dev/null"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Lines(r.output), (std::vector<std::string>{hyp[0], hyp[2]}));
}

TEST_F(CaptionCli, BadInputGetsAClearError) {
  const fs::path model = *dir_ / "errors";
  auto r = RunCommand(AttendCommand(TrainArgs(model, "--arch show-attend-tell", 1)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt = ShellQuote((model / "best.ckpt").string());
  // A truncated PNG named in the message.
  const std::vector<std::string> test = Lines(testing::ReadFile(Corpus() + "/test.tsv"));
  const std::string image = Corpus() + "/" + test[0].substr(0, test[0].find('\t'));
  const std::string bytes = testing::ReadFile(image);
  const std::string cut = (*dir_ / "cut.png").string();
  testing::WriteFile(cut, bytes.substr(0, bytes.size() / 2));
  r = RunCommand(AttendCommand("caption -m " + ckpt + " " + ShellQuote(cut)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cut.png"));
  // A translation architecture for captions; a captions line without a tab; a captioner given
  // to translate; no input at all.
  r = RunCommand(AttendCommand("train --task caption --max-steps 1 --data " + ShellQuote(Corpus()) +
                               " --out " + ShellQuote((*dir_ / "x").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("show-attend-tell or top-down"));
  testing::WriteFile((*dir_ / "bad.tsv").string(), "a.png no tab here\n");
  r = RunCommand(
      AttendCommand("caption -m " + ckpt + " --tsv " + ShellQuote((*dir_ / "bad.tsv").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad.tsv:1"));
  r = RunCommand("echo hello | " + AttendCommand("translate -m " + ckpt));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("captioning model"));
  r = RunCommand(AttendCommand("caption -m " + ckpt));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("give image files or --tsv"));
  // Top-down over the items' true boxes: trains from the items files beside the captions and
  // captions a TSV with its items; without them it says what it needs.
  const fs::path truth = *dir_ / "truth";
  r = RunCommand(AttendCommand(TrainArgs(truth, "--arch top-down --true-boxes", 2)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string truth_ckpt = ShellQuote((truth / "best.ckpt").string());
  r = RunCommand(AttendCommand("caption -m " + truth_ckpt + " --tsv " +
                               ShellQuote(Corpus() + "/test.tsv") + " --items " +
                               ShellQuote(Corpus() + "/test.items.jsonl") + " -o " +
                               ShellQuote((*dir_ / "truth.hyp").string())));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("grounding"));
  r = RunCommand(AttendCommand("caption -m " + truth_ckpt + " " + ShellQuote(image)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("true boxes"));
  // A model without attention has no pictures to draw.
  r = RunCommand(AttendCommand(TrainArgs(*dir_ / "none",
                                         "--arch show-attend-tell "
                                         "--image-attention none",
                                         1)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand("caption -m " + ShellQuote((*dir_ / "none/best.ckpt").string()) +
                               " --attention-png " + ShellQuote((*dir_ / "p").string()) + " " +
                               ShellQuote(image)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("does not attend"));
}

}  // namespace
}  // namespace attend
