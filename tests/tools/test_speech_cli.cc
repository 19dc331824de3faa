// Speech recognition end to end through the `attend` command: a tiny synthesised corpus
// (`attend corpus speech`), `attend train --task speech` with exact resume (SpecAugment on),
// `attend transcribe` (order kept when a file is bad, alignment pictures, --score), and the
// errors a user meets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

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

class SpeechCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("attend_speech_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const auto r = RunCommand(
        AttendCommand("corpus speech -q --out " + ShellQuote(Corpus()) +
                      " --digits 24 --phrases 24 --dev-digits 4 --dev-phrases 4 --test-digits 4 "
                      "--test-phrases 4 --seed 3"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Corpus() { return (*dir_ / "corpus").string(); }
  // A small location-aware model; `steps` training steps into `out`.
  static std::string TrainArgs(const fs::path& out, int steps) {
    return "train --task speech --data " + ShellQuote(Corpus()) + " --out " +
           ShellQuote(out.string()) +
           " --arch rnn-attention --cell lstm --score location-aware --hidden-dim 16 "
           "--embed-dim 8 --attention-dim 8 --location-filters 2 --location-width 5 "
           "--frame-stacking 3 --pyramid-levels 1 --dropout 0.2 --spec-augment --max-tokens 1500 "
           "--valid-every 2 --valid-sentences 4 --no-progress --threads 1 --max-steps " +
           std::to_string(steps);
  }
  static fs::path* dir_;
};
fs::path* SpeechCli::dir_ = nullptr;

TEST_F(SpeechCli, TrainsResumesExactlyAndTranscribes) {
  const fs::path a = *dir_ / "a", b = *dir_ / "b";
  auto r = RunCommand(AttendCommand(TrainArgs(a, 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("character vocabulary"));
  EXPECT_THAT(r.output, HasSubstr("WER"));
  EXPECT_THAT(r.output, HasSubstr("best dev WER"));
  r = RunCommand(AttendCommand(TrainArgs(b, 3)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(TrainArgs(b, 6) + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resuming at step 3"));
  testing::ExpectSameCheckpoints((a / "last.ckpt").string(), (b / "last.ckpt").string(), 6);

  // A manifest with a missing file in the middle: every other line keeps its place, the error
  // names the file, the exit code says something failed.
  const std::vector<std::string> test = Lines(testing::ReadFile(Corpus() + "/test.tsv"));
  ASSERT_EQ(test.size(), 8u);
  std::vector<std::string> lines = test;
  for (auto& l : lines) l = Corpus() + "/" + l;  // absolute: the manifest lives elsewhere
  lines.insert(lines.begin() + 3, "/no/such/file.wav\tnothing");
  std::string manifest;
  for (const auto& l : lines) manifest += l + "\n";
  testing::WriteFile((*dir_ / "m.tsv").string(), manifest);
  const fs::path png = *dir_ / "png";
  r = RunCommand(AttendCommand("transcribe -m " + ShellQuote((a / "best.ckpt").string()) +
                               " --manifest " + ShellQuote((*dir_ / "m.tsv").string()) +
                               " --beam 2 --score --attention-png " + ShellQuote(png.string()) +
                               " -o " + ShellQuote((*dir_ / "hyp.txt").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("/no/such/file.wav"));
  EXPECT_THAT(r.output, HasSubstr("WER = "));
  EXPECT_THAT(r.output, HasSubstr("CER = "));
  const std::string hyp = testing::ReadFile((*dir_ / "hyp.txt").string());
  EXPECT_EQ(std::count(hyp.begin(), hyp.end(), '\n'), 9) << hyp;
  EXPECT_EQ(Lines(hyp).at(3), "");
  // One picture per readable file (an untrained model may stop at once: eos only still draws).
  int pictures = 0;
  for (const auto& e : fs::directory_iterator(png)) pictures += e.path().extension() == ".png";
  EXPECT_EQ(pictures, 8);
  EXPECT_FALSE(fs::exists(png / "000003.png"));

  // WAV files on the command line, in order.
  const std::string wav0 = Corpus() + "/" + test[0].substr(0, test[0].find('\t'));
  const std::string wav1 = Corpus() + "/" + test[1].substr(0, test[1].find('\t'));
  r = RunCommand(AttendCommand("transcribe --greedy -m " + ShellQuote((a / "best.ckpt").string()) +
                               " " + ShellQuote(wav0) + " " + ShellQuote(wav1) + " 2>/dev/null"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
}

TEST_F(SpeechCli, BadInputGetsAClearError) {
  // A truncated WAV named in the message.
  const std::vector<std::string> test = Lines(testing::ReadFile(Corpus() + "/test.tsv"));
  const std::string wav = Corpus() + "/" + test[0].substr(0, test[0].find('\t'));
  const std::string bytes = testing::ReadFile(wav);
  const std::string cut = (*dir_ / "cut.wav").string();
  testing::WriteFile(cut, bytes.substr(0, bytes.size() / 2));
  const fs::path model = *dir_ / "errors";
  auto r = RunCommand(AttendCommand(TrainArgs(model, 1)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(
      AttendCommand("transcribe -m " + ShellQuote((model / "best.ckpt").string()) + " " + cut));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cut.wav"));
  // A translation task pointed at a speech corpus, a manifest line without a tab, a speech model
  // given to translate, no input at all.
  r = RunCommand(AttendCommand("train --task speach --data " + ShellQuote(Corpus())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("translation | speech"));
  testing::WriteFile((*dir_ / "bad.tsv").string(), "a.wav no tab here\n");
  r = RunCommand(AttendCommand("transcribe -m " + ShellQuote((model / "best.ckpt").string()) +
                               " --manifest " + ShellQuote((*dir_ / "bad.tsv").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad.tsv:1"));
  r = RunCommand("echo hello | " +
                 AttendCommand("translate -m " + ShellQuote((model / "best.ckpt").string())));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("speech model"));
  r = RunCommand(AttendCommand("transcribe -m " + ShellQuote((model / "best.ckpt").string())));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("give WAV files or --manifest"));
}

}  // namespace
}  // namespace attend
