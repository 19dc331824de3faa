// `attend train` and `attend translate` end to end on a tiny synthetic corpus: checkpoints, exact
// resume, alignments, heatmaps, n-best output, and a clear message with a non-zero exit code
// for each kind of bad input.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "attend/checkpoint.h"
#include "support/checkpoints.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using testing::Interactive;
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
    dir_ =
        new fs::path(fs::temp_directory_path() / ("attend_nmt_cli_" + std::to_string(::getpid())));
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
           ShellQuote(d / "train.tgt") + " --dev-src " + ShellQuote(d / "dev.src") + " --dev-tgt " +
           ShellQuote(d / "dev.tgt") + " --out " + ShellQuote(out) +
           " --vocab-size 40 --embed-dim 16 --hidden-dim 16 --attention-dim 8 --max-tokens 120"
           " --max-steps " +
           std::to_string(steps) +
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
  r = RunCommand("printf 'lo ka\\n' | " +
                 AttendCommand("translate -m " + model + " --beam 4 --nbest 3 --alignment soft"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("0 ||| ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 3) << r.output;
}

using testing::Lines;

// Output line i is the translation of input line i, whatever the line: an empty line gives an
// empty line, an over-long one is cropped (bytes or subwords) with a warning naming it, and
// batch boundaries do not matter.
TEST_F(NmtCli, TranslateKeepsEveryLine) {
  const fs::path out = *dir_ / "keep";
  auto r = RunCommand(AttendCommand(TrainArgs(out, 4)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string model = ShellQuote(out / "best.ckpt");
  std::string long_line;
  for (int i = 0; i < 40; ++i) long_line += i ? " mi" : "mi";
  WriteFile(*dir_ / "keep.src", "lo ka\n\nmi su te\n" + long_line + "\n\nlo\n");
  // Each line alone is the reference (greedy search does not depend on the batch).
  std::vector<std::string> alone;
  for (const std::string l : {"lo ka", "", "mi su te", "mi mi mi mi mi mi mi", "", "lo"}) {
    WriteFile(*dir_ / "one.src", l + "\n");
    r = RunCommand(
        AttendCommand("translate --greedy -m " + model + " -i " + ShellQuote(*dir_ / "one.src")));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(Lines(r.output).size(), 1u) << r.output;
    alone.push_back(Lines(r.output)[0]);
  }
  EXPECT_EQ(alone[1], "");
  for (const char* batch : {"1", "2", "32"}) {
    const fs::path hyp = *dir_ / ("keep." + std::string(batch) + ".hyp");
    r = RunCommand(AttendCommand("translate --greedy -m " + model + " -i " +
                                 ShellQuote(*dir_ / "keep.src") + " -o " + ShellQuote(hyp) +
                                 " --max-line-bytes 20 --batch-size " + batch));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // The 119-byte line 4 is cropped to 20 bytes ("mi mi mi mi mi mi mi"), and said so.
    EXPECT_NE(r.output.find("keep.src:4: the line is 119 bytes long; cropped"), std::string::npos)
        << r.output;
    const std::vector<std::string> got = Lines(ReadFile(hyp));
    EXPECT_EQ(got, alone) << "batch " << batch;
  }
  // n-best: the empty line keeps its index.
  r = RunCommand("printf 'lo\\n\\nka\\n' | " +
                 AttendCommand("translate -m " + model + " --beam 3 --nbest 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 |||  ||| "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 ||| "), std::string::npos) << r.output;
}

// A Transformer takes max_positions (1024) source subwords: a longer line is cropped to them
// and translated, with a warning naming it.
TEST_F(NmtCli, TranslateCropsToTheModelsLengthLimit) {
  const fs::path out = *dir_ / "crop";
  auto r = RunCommand(AttendCommand(
      TrainArgs(out, 2, "--arch transformer --d-model 16 --heads 2 --ff-dim 32 --layers 1")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string words;
  for (int i = 0; i < 1100; ++i) words += i ? " lo" : "lo";
  WriteFile(*dir_ / "crop.src", "ka\n" + words + "\nmi\n");
  r = RunCommand(AttendCommand(
      "translate --greedy --max-len-ratio 0 -m " + ShellQuote(out / "best.ckpt") + " -i " +
      ShellQuote(*dir_ / "crop.src") + " -o " + ShellQuote(*dir_ / "crop.hyp")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("crop.src:2: the sentence has"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cropped to them"), std::string::npos) << r.output;
  EXPECT_EQ(Lines(ReadFile(*dir_ / "crop.hyp")).size(), 3u);
}

// `attend translate` in a pipe answers each line before the next is sent.
TEST_F(NmtCli, TranslateStreamsThroughAPipe) {
  const fs::path out = *dir_ / "stream";
  auto r = RunCommand(AttendCommand(TrainArgs(out, 4)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> want;
  for (const std::string l : {"lo ka", "", "mi su te", "su"}) {
    WriteFile(*dir_ / "stream_one.src", l + "\n");
    r = RunCommand(AttendCommand("translate --greedy -m " + ShellQuote(out / "best.ckpt") + " -i " +
                                 ShellQuote(*dir_ / "stream_one.src") + " 2>/dev/null"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    want.push_back(r.output.substr(0, r.output.size() - 1));
  }
  Interactive p(AttendCommand("translate --greedy -m " + ShellQuote(out / "best.ckpt")));
  size_t i = 0;
  for (const std::string l : {"lo ka", "", "mi su te", "su"}) {
    ASSERT_TRUE(p.Send(l));
    std::string got;
    ASSERT_TRUE(p.Receive(&got, 60.0)) << "no answer to line " << i + 1 << " within 60 s";
    EXPECT_EQ(got, want[i]) << "line " << i + 1;
    ++i;
  }
  EXPECT_EQ(p.Finish(), 0);
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
  testing::ExpectSameCheckpoints((a / "last.ckpt").string(), (b / "last.ckpt").string(), 6);
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

// A training run killed with SIGKILL at random moments (checkpoint writes included: it saves
// after every step) always leaves a loadable last.ckpt, and --resume from it ends with the same
// weights as a run that was never interrupted.
TEST_F(NmtCli, KilledTrainingResumesExactly) {
  const fs::path straight = *dir_ / "kill_straight", killed = *dir_ / "kill_resumed";
  // Validation (and a checkpoint) after every step.
  auto args = [](const fs::path& out) {
    std::string a = TrainArgs(out, 30, "--dropout 0.3");
    a.replace(a.find("--valid-every 3"), 15, "--valid-every 1");
    return a;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunCommand(AttendCommand(args(straight)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Kill times spread over a sixth of the uninterrupted run's duration, measured just above:
  // resumed runs make progress, and are killed many times before one gets to the end.
  const int run_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  uint64_t x = 99;
  int kills = 0, loads = 0, finished = 0;
  for (int attempt = 0; attempt < 60 && !finished; ++attempt) {
    const bool resume = fs::exists(killed / "last.ckpt");
    const std::string command =
        "exec " + AttendCommand(args(killed) + (resume ? " --resume" : "")) + " > /dev/null 2>&1";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Kill at a random moment of a run, unless it finished first; the last attempts run to
    // the end.
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const int wait_ms =
        attempt < 50 ? 10 + static_cast<int>((x >> 33) % std::max(20, run_ms / 6)) : 1 << 30;
    // Until a first checkpoint exists, every other attempt waits for it to appear and kills
    // soon after, so that resuming is exercised however slow this machine starts a run
    // relative to the measured one (a busy CI machine once killed all 50 before it).
    const bool until_first = !resume && attempt % 2 == 1 && attempt < 50;
    int status = 0;
    bool exited = false;
    for (int ms = 0; (ms < wait_ms || until_first) && !exited; ms += 5) {
      exited = ::waitpid(pid, &status, WNOHANG) == pid;
      if (!exited && until_first && fs::exists(killed / "last.ckpt")) {
        ::usleep(static_cast<useconds_t>(1000 * ((x >> 40) % 30)));
        break;
      }
      if (!exited) ::usleep(5000);
    }
    if (!exited) exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ++kills;
    } else {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "attempt " << attempt;
      finished = 1;
    }
    if (fs::exists(killed / "last.ckpt")) {
      EXPECT_NO_THROW(io::LoadSafetensors((killed / "last.ckpt").string()))
          << "attempt " << attempt;
      ++loads;
    }
  }
  ASSERT_TRUE(finished);
  std::printf("killed %d times; last.ckpt loaded after %d of the runs\n", kills, loads);
  for (const auto& entry : fs::directory_iterator(killed))  // no temporary file left behind
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  EXPECT_GE(kills, 5);
  EXPECT_GE(loads, 3);
  for (const char* name : {"last.ckpt", "best.ckpt"}) {
    auto a = io::LoadSafetensors((straight / name).string());
    auto b = io::LoadSafetensors((killed / name).string());
    ASSERT_EQ(a.tensors.size(), b.tensors.size()) << name;
    for (size_t i = 0; i < a.tensors.size(); ++i) {
      ASSERT_EQ(a.tensors[i].first, b.tensors[i].first) << name;
      if (a.tensors[i].second.dtype() == DType::kF32) {
        EXPECT_EQ(a.tensors[i].second.ToVector<float>(), b.tensors[i].second.ToVector<float>())
            << name << " " << a.tensors[i].first;
      }
    }
    EXPECT_EQ(a.metadata.at("trainer.step"), b.metadata.at("trainer.step")) << name;
  }
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
    r = RunCommand("echo lo | " +
                   AttendCommand("translate -m " + ShellQuote(*dir_ / "broken.ckpt")));
    EXPECT_EQ(r.exit_code, 1) << "byte " << at << "\n" << r.output;
    EXPECT_NE(r.output.find("broken.ckpt"), std::string::npos) << r.output;
  }
  WriteFile(*dir_ / "truncated.ckpt", bytes.substr(0, bytes.size() / 3));
  r = RunCommand("echo lo | " +
                 AttendCommand("translate -m " + ShellQuote(*dir_ / "truncated.ckpt")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = RunCommand("printf 'lo\\n\\377\\n' | " + AttendCommand("translate -m " + model.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(":2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace attend
