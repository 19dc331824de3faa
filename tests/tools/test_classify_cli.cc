// Image classification with attention end to end through the `attend` command: a tiny cluttered
// corpus (`attend corpus cluttered`), `attend train --task classify --arch racnn` with exact
// resume, and `attend classify` (lines in order when a file is bad, crop pictures, --tsv
// evaluation), and the errors a user meets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attend/classify.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "support/checkpoints.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using ::testing::HasSubstr;
using testing::Lines;
using ::testing::MatchesRegex;
using testing::RunCommand;
using testing::ShellQuote;

class ClassifyCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("attend_classify_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const auto r = RunCommand(AttendCommand("corpus cluttered --out " + ShellQuote(Corpus()) +
                                            " --train 40 --dev 8 --test 8"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Corpus() { return (*dir_ / "corpus").string(); }
  // A small RA-CNN (two scales, 64 px images, 32 px crops); `steps` training steps into `out`.
  static std::string TrainArgs(const fs::path& out, int steps) {
    return "train --task classify --data " + ShellQuote(Corpus()) + " --out " +
           ShellQuote(out.string()) +
           " --arch racnn --image-size 64 --base-channels 4 --apn-hidden 8 --zoom-size 32 "
           "--batch-size 8 --lr 3e-3 --warmup 2 --valid-every 3 --log-every 1 --no-progress "
           "--threads 1 --max-steps " +
           std::to_string(steps);
  }
  static std::string TestImage(int i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/images/test/%05d.png", i);
    return Corpus() + name;
  }
  static fs::path* dir_;
};
fs::path* ClassifyCli::dir_ = nullptr;

TEST_F(ClassifyCli, TrainsResumesExactlyAndClassifies) {
  const fs::path a = *dir_ / "a", b = *dir_ / "b";
  // 6 steps of 8 images over 40: the resumed run crosses an epoch boundary mid-way.
  auto r = RunCommand(AttendCommand(TrainArgs(a, 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("training: racnn (2 scales)"));
  EXPECT_THAT(r.output, HasSubstr("8 dev (8 with a true box)"));
  EXPECT_THAT(r.output, HasSubstr("rank "));
  EXPECT_THAT(r.output, HasSubstr("IoU scale2"));
  EXPECT_THAT(r.output, HasSubstr("best dev combined accuracy"));
  EXPECT_TRUE(fs::exists(a / "best.ckpt"));
  EXPECT_THAT(testing::ReadFile((a / "train.log").string()), HasSubstr("validation step 6"));
  r = RunCommand(AttendCommand(TrainArgs(b, 3)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(TrainArgs(b, 6) + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resuming at step 3"));
  testing::ExpectSameCheckpoints((a / "last.ckpt").string(), (b / "last.ckpt").string(), 6);
  // Resuming with another classifier config is refused.
  r = RunCommand(AttendCommand(TrainArgs(b, 9) + " --resume --mask-k 5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("another classifier config"));

  // Image files with a missing one in the middle: one line each, in order, the bad one empty
  // and named on stderr, exit code 1; a picture for each readable image.
  const std::string model = ShellQuote((a / "best.ckpt").string());
  const fs::path png = *dir_ / "crops";
  r = RunCommand("(" +
                 AttendCommand("classify -m " + model + " " + TestImage(0) + " " + TestImage(1) +
                               " /no/such/image.png " + TestImage(2) + " --crops-png " +
                               ShellQuote(png.string())) +
                 " 2>" + ShellQuote((*dir_ / "err.txt").string()) + ")");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(testing::ReadFile((*dir_ / "err.txt").string()), HasSubstr("/no/such/image.png"));
  const std::vector<std::string> lines = Lines(r.output);
  ASSERT_EQ(lines.size(), 4u) << r.output;
  EXPECT_EQ(lines[2], "");
  const std::string line_re =
      "[a-z]+\tscale1 [01]\\.[0-9]{3} scale2 [01]\\.[0-9]{3} combined [01]\\.[0-9]{3}\t"
      "box2 [0-9.]+ [0-9.]+ [0-9.]+ [0-9.]+";
  for (size_t i : {0u, 1u, 3u}) EXPECT_THAT(lines[i], MatchesRegex(line_re));
  for (const char* name : {"000000.png", "000001.png", "000003.png"})
    EXPECT_GT(fs::file_size(png / name), 500u) << name;
  EXPECT_FALSE(fs::exists(png / "000002.png"));
  // The picture: the 64 px input at twice its size and one crop beside it, with margins.
  const std::string bytes = testing::ReadFile((png / "000000.png").string());
  ASSERT_GT(bytes.size(), 24u);
  auto be32 = [&](size_t at) {
    return (uint8_t(bytes[at]) << 24) | (uint8_t(bytes[at + 1]) << 16) |
           (uint8_t(bytes[at + 2]) << 8) | uint8_t(bytes[at + 3]);
  };
  EXPECT_EQ(be32(16), 8u + 2u * (128u + 8u));  // width
  EXPECT_EQ(be32(20), 128u + 16u);             // height

  // A listing: accuracy per scale and combined, and with the items the boxes' IoU.
  const std::string tsv = ShellQuote(Corpus() + "/test.tsv");
  r = RunCommand(AttendCommand("classify -m " + model + " --tsv " + tsv + " --items " +
                               ShellQuote(Corpus() + "/test.items.jsonl")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, MatchesRegex("8 images in [0-9.]+ s: acc scale1 [0-9.]+ scale2 [0-9.]+ "
                                     "combined [0-9.]+ \\| IoU scale2 [0-9.]+ \\([0-9.]+ >= "
                                     "0.5\\)\n"));
  r = RunCommand(AttendCommand("classify -m " + model + " --tsv " + tsv + " --json"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("{\"images\": 8, \"accuracy\": ["));

  // The one-scale CNN: one probability, no box; no crops to draw.
  const fs::path c = *dir_ / "cnn";
  r = RunCommand(AttendCommand("train --task classify --data " + ShellQuote(Corpus()) + " --out " +
                               ShellQuote(c.string()) +
                               " --arch cnn --image-size 32 --base-channels 2 --batch-size 8 "
                               "--no-progress --threads 1 --max-steps 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(
      AttendCommand("classify -m " + ShellQuote((c / "best.ckpt").string()) + " " + TestImage(0)));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, MatchesRegex("[a-z]+\tscale1 [01]\\.[0-9]{3} combined [01]\\.[0-9]{3}\n"));
  r = RunCommand(AttendCommand("classify -m " + ShellQuote((c / "best.ckpt").string()) + " " +
                               TestImage(0) + " --crops-png " + ShellQuote(png.string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no boxes or crops"));
}

TEST_F(ClassifyCli, BadInputGetsAClearError) {
  const fs::path model = *dir_ / "errors";
  auto r = RunCommand(AttendCommand(TrainArgs(model, 1)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt = ShellQuote((model / "best.ckpt").string());

  // A file that is not an image, named; exit code 1.
  const std::string junk = (*dir_ / "junk.png").string();
  testing::WriteFile(junk, "not a picture at all");
  r = RunCommand(AttendCommand("classify -m " + ckpt + " " + ShellQuote(junk)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("junk.png"));

  // A listing with an unknown label and one with a bad image: file and line named.
  testing::WriteFile((*dir_ / "bad-label.tsv").string(),
                     TestImage(0) + "\tboot\n" + TestImage(1) + "\tgiraffe\n");
  r = RunCommand(AttendCommand("classify -m " + ckpt + " --tsv " +
                               ShellQuote((*dir_ / "bad-label.tsv").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad-label.tsv:2: unknown label 'giraffe'"));
  testing::WriteFile((*dir_ / "bad-image.tsv").string(),
                     TestImage(0) + "\tboot\n" + junk + "\tbag\n");
  r = RunCommand(AttendCommand("classify -m " + ckpt + " --tsv " +
                               ShellQuote((*dir_ / "bad-image.tsv").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad-image.tsv:2: "));
  EXPECT_THAT(r.output, HasSubstr("junk.png"));

  // The classifier's architectures need --task classify; a sequence model's is refused there.
  r = RunCommand(AttendCommand("train --data " + ShellQuote(Corpus()) + " --arch racnn"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("give --task classify"));
  r = RunCommand(AttendCommand("train --task classify --data " + ShellQuote(Corpus()) +
                               " --arch transformer --max-steps 1 --out " +
                               ShellQuote((*dir_ / "x").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("not one of cnn | racnn"));

  // A translation model's checkpoint given to classify, and a classifier's to translate.
  std::vector<std::string> sentences;
  for (int i = 0; i < 40; ++i) sentences.push_back("open the file " + std::to_string(i % 7));
  nmt::VocabularyOptions vo;
  vo.size = 30;
  const nmt::Vocabulary vocab = nmt::Vocabulary::Train(sentences, vo);
  models::ModelConfig cfg;
  cfg.src_vocab = cfg.tgt_vocab = vocab.size();
  cfg.embed_dim = cfg.hidden_dim = cfg.attention_dim = cfg.d_model = 16;
  cfg.heads = 2;
  cfg.ff_dim = 32;
  cfg.layers = 1;
  Generator gen(3);
  const auto translator = models::MakeModel(cfg, gen);
  const std::string nmt_path = (*dir_ / "translation.ckpt").string();
  testing::SaveTranslationCheckpoint(nmt_path, *translator, vocab, cfg.ToJson());
  r = RunCommand(AttendCommand("classify -m " + ShellQuote(nmt_path) + " " + TestImage(0)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("translation.ckpt: a translation, speech or captioning model"));
  EXPECT_THROW(nmt::LoadClassifier(nmt_path), Error);
}

}  // namespace
}  // namespace attend
