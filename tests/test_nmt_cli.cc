// `attend train` and `attend translate` end to end on a tiny synthetic corpus: checkpoints, exact
// resume, alignments, heatmaps, n-best output, and a clear message with a non-zero exit code
// for each kind of bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "attend/checkpoint.h"
#include "support/command.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using testing::RunCommand;
using testing::ShellQuote;

void WriteFile(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// "lo ka mi" -> "LO KA MI": a word-for-word mapping a tiny model learns a little of.
class NmtCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("attend_nmt_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const char* words[] = {"lo", "ka", "mi", "su", "te", "ra", "no", "vi"};
    std::string src, tgt;
    uint64_t x = 12345;
    for (int i = 0; i < 300; ++i) {
      std::string s, t;
      const int len = 2 + i % 5;
      for (int j = 0; j < len; ++j) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        std::string w = words[(x >> 33) % 8];
        s += (j ? " " : "") + w;
        for (char& c : w) c = static_cast<char>(c - 'a' + 'A');
        t += (j ? " " : "") + w;
      }
      src += s + "\n";
      tgt += t + "\n";
    }
    WriteFile(*dir_ / "train.src", src);
    WriteFile(*dir_ / "train.tgt", tgt);
    WriteFile(*dir_ / "dev.src", "lo ka\nmi su te\n");
    WriteFile(*dir_ / "dev.tgt", "LO KA\nMI SU TE\n");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string TrainArgs(const fs::path& out, int steps, const std::string& extra = "") {
    const fs::path& d = *dir_;
    return "train --train-src " + ShellQuote(d / "train.src") + " --train-tgt " +
           ShellQuote(d / "train.tgt") + " --dev-src " + ShellQuote(d / "dev.src") +
           " --dev-tgt " + ShellQuote(d / "dev.tgt") + " --out " + ShellQuote(out) +
           " --vocab-size 40 --embed-dim 16 --hidden-dim 16 --attention-dim 8 --max-tokens 120"
           " --max-steps " + std::to_string(steps) +
           " --valid-every 3 --valid-sentences 2 --warmup 2 --lr 0.01 --no-progress --threads 1 " +
           extra;
  }
  static fs::path* dir_;
};
fs::path* NmtCli::dir_ = nullptr;

TEST_F(NmtCli, TrainTranslateAlignAndDraw) {
  const fs::path out = *dir_ / "model";
  auto r = RunCommand(AttendCommand(TrainArgs(out, 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"best.ckpt", "last.ckpt", "vocab.model", "train.log"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_NE(ReadFile(out / "train.log").find("validation step 6"), std::string::npos);
  const std::string model = ShellQuote(out / "best.ckpt");
  r = RunCommand("printf 'lo ka mi\\nsu\\n' | " +
                 AttendCommand("translate -m " + model + " --alignment hard --attention-png " +
                               ShellQuote(*dir_ / "png") + " --beam 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Two lines "translation ||| i-j ..."
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
  EXPECT_NE(r.output.find(" ||| "), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(*dir_ / "png" / "sentence-00001.png"));
  EXPECT_TRUE(fs::exists(*dir_ / "png" / "sentence-00002.png"));
  r = RunCommand("printf 'lo ka\\n' | " + AttendCommand("translate -m " + model +
                                                        " --beam 4 --nbest 3 --alignment soft"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("0 ||| ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 3) << r.output;
}

// Training 6 steps straight and training 3, stopping, then resuming to 6 give the same weights
// (dropout on: its streams are part of the checkpoint).
void ExpectResumeExact(const fs::path& a, const fs::path& b,
                       const std::function<std::string(const fs::path&, int)>& args) {
  auto r = RunCommand(AttendCommand(args(a, 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(args(b, 3)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(AttendCommand(args(b, 6) + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming at step 3"), std::string::npos) << r.output;
  auto x = io::LoadSafetensors((a / "last.ckpt").string());
  auto y = io::LoadSafetensors((b / "last.ckpt").string());
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  int compared = 0;
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
    const Tensor& p = x.tensors[i].second;
    const Tensor& q = y.tensors[i].second;
    ASSERT_EQ(p.shape(), q.shape()) << x.tensors[i].first;
    if (p.dtype() == DType::kF32) {
      EXPECT_EQ(p.ToVector<float>(), q.ToVector<float>()) << x.tensors[i].first;
      ++compared;
    } else if (p.dtype() == DType::kI64) {
      EXPECT_EQ(p.ToVector<int64_t>(), q.ToVector<int64_t>()) << x.tensors[i].first;
    }
  }
  EXPECT_GT(compared, 10);
  EXPECT_EQ(x.metadata.at("trainer.step"), "6");
  EXPECT_EQ(y.metadata.at("trainer.step"), "6");
}

TEST_F(NmtCli, ResumeContinuesExactly) {
  ExpectResumeExact(*dir_ / "straight", *dir_ / "resumed",
                    [](const fs::path& out, int steps) { return TrainArgs(out, steps); });
}

TEST_F(NmtCli, ResumeContinuesExactlyTransformer) {
  ExpectResumeExact(*dir_ / "t_straight", *dir_ / "t_resumed", [](const fs::path& out, int steps) {
    return TrainArgs(out, steps,
                     "--arch transformer --d-model 16 --heads 2 --ff-dim 32 --layers 2 "
                     "--dropout 0.3");
  });
}

struct BadInput {
  std::string name, setup_file, setup_contents, args, expected;
};

TEST_F(NmtCli, BadInputGivesAMessageAndNonZeroExit) {
  const fs::path d = *dir_;
  const std::string common = " --dev-src " + ShellQuote(d / "dev.src") + " --dev-tgt " +
                             ShellQuote(d / "dev.tgt") + " --out " + ShellQuote(d / "bad") +
                             " --max-steps 1 --no-progress";
  WriteFile(d / "three.src", "a\nb\nc\n");
  WriteFile(d / "two.tgt", "A\nB\n");
  WriteFile(d / "empty_line.src", "a\n\nc\n");
  WriteFile(d / "three.tgt", "A\nB\nC\n");
  WriteFile(d / "utf8.src", "a\nb\xff\xfe\nc\n");
  WriteFile(d / "long.src", "a\n" + std::string(5000, 'x') + "\nc\n");
  WriteFile(d / "garbage.model", "this is not a sentencepiece model");
  struct Case {
    std::string args, expected;
  };
  const std::vector<Case> cases = {
      {"train --train-src " + ShellQuote(d / "missing.src") + " --train-tgt " +
           ShellQuote(d / "three.tgt") + common,
       "missing.src"},
      {"train --train-src " + ShellQuote(d / "three.src") + " --train-tgt " +
           ShellQuote(d / "two.tgt") + common,
       "3"},
      {"train --train-src " + ShellQuote(d / "empty_line.src") + " --train-tgt " +
           ShellQuote(d / "three.tgt") + common,
       "empty_line.src:2"},
      {"train --train-src " + ShellQuote(d / "utf8.src") + " --train-tgt " +
           ShellQuote(d / "three.tgt") + common,
       "utf8.src:2"},
      {"train --train-src " + ShellQuote(d / "long.src") + " --train-tgt " +
           ShellQuote(d / "three.tgt") + common,
       "long.src:2"},
      {"train --train-src " + ShellQuote(d / "three.src") + " --train-tgt " +
           ShellQuote(d / "three.tgt") + " --vocab " + ShellQuote(d / "garbage.model") + common,
       "garbage.model"},
      {"train --train-src " + ShellQuote(d / "three.src") + " --train-tgt " +
           ShellQuote(d / "three.tgt") + " --arch lstm-magic" + common,
       "lstm-magic"},
      {"translate -m " + ShellQuote(d / "missing.ckpt") + " -i " + ShellQuote(d / "dev.src"),
       "missing.ckpt"},
      {"translate -m " + ShellQuote(d / "garbage.model") + " -i " + ShellQuote(d / "dev.src"),
       "garbage.model"},
  };
  for (const Case& c : cases) {
    auto r = RunCommand(AttendCommand(c.args));
    EXPECT_NE(r.exit_code, 0) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find("error"), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  }
}

// The fixed-context baseline has no attention to align with: a clear message, not a crash.
TEST_F(NmtCli, AlignmentOfAModelWithoutAttentionIsRefused) {
  const fs::path out = *dir_ / "baseline";
  auto r = RunCommand(AttendCommand(TrainArgs(out, 2, "--arch rnn")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string model = ShellQuote(out / "best.ckpt");
  r = RunCommand("echo lo ka | " + AttendCommand("translate -m " + model));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand("echo lo ka | " + AttendCommand("translate -m " + model + " --alignment hard"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("without attention"), std::string::npos) << r.output;
}

// A checkpoint with any byte changed is refused with a message; so is an input line that is not
// UTF-8.
TEST_F(NmtCli, CorruptedCheckpointAndBadTranslateInput) {
  const fs::path out = *dir_ / "model_for_corruption";
  auto r = RunCommand(AttendCommand(TrainArgs(out, 2)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string bytes = ReadFile(out / "best.ckpt");
  const fs::path model = ShellQuote(out / "best.ckpt");
  for (size_t at : {size_t{3}, bytes.size() / 2, bytes.size() - 5}) {
    std::string broken = bytes;
    broken[at] = static_cast<char>(broken[at] ^ 0x20);
    WriteFile(*dir_ / "broken.ckpt", broken);
    r = RunCommand("echo lo | " + AttendCommand("translate -m " + ShellQuote(*dir_ / "broken.ckpt")));
    EXPECT_EQ(r.exit_code, 1) << "byte " << at << "\n" << r.output;
    EXPECT_NE(r.output.find("broken.ckpt"), std::string::npos) << r.output;
  }
  WriteFile(*dir_ / "truncated.ckpt", bytes.substr(0, bytes.size() / 3));
  r = RunCommand("echo lo | " + AttendCommand("translate -m " + ShellQuote(*dir_ / "truncated.ckpt")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = RunCommand("printf 'lo\\n\\377\\n' | " + AttendCommand("translate -m " + model.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(":2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace attend
