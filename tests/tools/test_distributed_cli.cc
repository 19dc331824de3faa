// Data-parallel `attend train` under mpirun (2 ranks on this one machine, oversubscribed), and
// the trainer features that go with it: --accumulate, --keep-checkpoints, --ema. The equalities
// here are bitwise: a rank's gradient is summed with one other (a + b == b + a in floating
// point), in the same order as accumulation adds the second batch's gradient to the first's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "attend/checkpoint.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using ::testing::HasSubstr;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

class DistributedCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const auto r = RunCommand(AttendCommand("corpus synthetic --out " + ShellQuote(*dir_ / "data") +
                                            " --seed 3 --train 300 --dev 10 --test 10 "
                                            "--max-words 8"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  // A tiny model without dropout (its masks would depend on how the batches are laid out).
  static std::string Train(const std::string& out, int steps, const std::string& extra = "",
                           int valid_every = 4) {
    return "train --data " + ShellQuote(*dir_ / "data") +
           " --src src --tgt tgt --vocab-type word --vocab-size 200 --embed-dim 16 "
           "--hidden-dim 16 --attention-dim 16 --dropout 0 --max-tokens 200 --valid-sentences 2 "
           "--lr 1e-2 --warmup 2 --threads 1 --no-progress --valid-every " +
           std::to_string(valid_every) + " --max-steps " + std::to_string(steps) + " --out " +
           ShellQuote(*dir_ / out) + " " + extra;
  }
  static std::string Mpirun(int ranks, const std::string& args) {
#ifdef ATTEND_TEST_MPIEXEC
    // Open MPI refuses root unless told; CI runs as root.
    return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 " +
           std::string(ATTEND_TEST_MPIEXEC) + " --oversubscribe -np " + std::to_string(ranks) +
           " " + AttendCommand(args);
#else
    (void)ranks;
    return args;
#endif
  }
  // Every tensor of two checkpoints (the model's and Adam's) equal, bit for bit.
  static void ExpectSameTensors(const std::string& a, const std::string& b) {
    const auto x = io::LoadSafetensors(*dir_ / a, true);
    const auto y = io::LoadSafetensors(*dir_ / b, true);
    ASSERT_EQ(x.tensors.size(), y.tensors.size());
    for (size_t i = 0; i < x.tensors.size(); ++i) {
      const auto& [name, t] = x.tensors[i];
      EXPECT_EQ(name, y.tensors[i].first);
      const Tensor u = y.tensors[i].second;
      ASSERT_EQ(t.shape(), u.shape()) << name;
      ASSERT_EQ(t.dtype(), u.dtype()) << name;
      const size_t bytes = static_cast<size_t>(t.numel()) * DTypeSize(t.dtype());
      EXPECT_EQ(std::memcmp(t.Contiguous().raw_data(), u.Contiguous().raw_data(), bytes), 0)
          << name << " differs";
    }
  }
  static TempDir* dir_;
};
TempDir* DistributedCli::dir_ = nullptr;

#ifdef ATTEND_TEST_MPIEXEC
#define SKIP_WITHOUT_MPI()
#else
#define SKIP_WITHOUT_MPI() \
  GTEST_SKIP() << "attend was built without MPI (ATTEND_WITH_MPI, libopenmpi-dev)"
#endif

TEST_F(DistributedCli, TwoRanksEqualOneRankAccumulatingTwo) {
  SKIP_WITHOUT_MPI();
  auto r = RunCommand(Mpirun(2, Train("r2", 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("2 ranks x 1 batch per step"));
  EXPECT_THAT(r.output, HasSubstr("ms per step"));
  r = RunCommand(AttendCommand(Train("a2", 6, "--accumulate 2")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectSameTensors("r2/last.ckpt", "a2/last.ckpt");
  // Rank 0 alone wrote the log: one start line.
  const std::string log = testing::ReadFile(*dir_ / "r2/train.log");
  EXPECT_EQ(log.find("training:"), log.rfind("training:"));
}

TEST_F(DistributedCli, ResumeAcrossRankCountsContinuesTheSameRun) {
  SKIP_WITHOUT_MPI();
  auto r = RunCommand(Mpirun(2, Train("full", 8)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 2 ranks, then 1 rank accumulating 2.
  ASSERT_EQ(RunCommand(Mpirun(2, Train("down", 4))).exit_code, 0);
  r = RunCommand(AttendCommand(Train("down", 8, "--accumulate 2 --resume")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resuming at step 4"));
  ExpectSameTensors("full/last.ckpt", "down/last.ckpt");
  // 1 rank accumulating 2, then 2 ranks.
  ASSERT_EQ(RunCommand(AttendCommand(Train("up", 4, "--accumulate 2"))).exit_code, 0);
  r = RunCommand(Mpirun(2, Train("up", 8, "--resume")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectSameTensors("full/last.ckpt", "up/last.ckpt");
}

TEST_F(DistributedCli, EarlyStoppingAtAnEpochsEndStopsEveryRank) {
  SKIP_WITHOUT_MPI();
  // 6 steps of 2 batches make this corpus's epoch; the second validation (step 12, an epoch's
  // last step) finds no better BLEU and stops the run: rank 1 must stop there too, not wait in
  // the next epoch for a rank 0 that has left.
  const auto r = RunCommand(Mpirun(2, Train("patience", 1000, "--max-epochs 5 --patience 1", 6)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("early stopping"));
}

TEST_F(DistributedCli, RanksGivenDifferentRunsAreRefused) {
  SKIP_WITHOUT_MPI();
  // MPMD: two programs, one per rank, with different label smoothing.
  const std::string cmd = Mpirun(1, Train("m", 4, "--label-smoothing 0.2")) + " : -np 1 " +
                          AttendCommand(Train("m", 4));
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = RunCommand(cmd);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("was not given the same run as rank 0"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(100)) << "a hang";
}

TEST_F(DistributedCli, ADeadRankTakesTheJobDownAndLeavesWholeCheckpoints) {
  SKIP_WITHOUT_MPI();
  const std::string log = *dir_ / "dead.log";
  const std::string cmd = Mpirun(2, Train("dead", 1000000, "", 20)) + " > " + ShellQuote(log) +
                          " 2>&1; echo \"exit $?\" >> " + ShellQuote(log);
  std::thread job([&] { RunCommand(cmd); });
  // Wait for a checkpoint, then kill rank 1 (found by its environment).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(*dir_ / "dead/last.ckpt") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto r = RunCommand(
      "for p in $(pgrep -f 'attend train'); do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | "
      "grep -q '^OMPI_COMM_WORLD_RANK=1$' && grep -q " +
      ShellQuote((*dir_ / "dead")) + " /proc/$p/cmdline && kill -9 $p && echo killed; done");
  job.join();
  EXPECT_THAT(r.output, HasSubstr("killed"));
  const std::string out = testing::ReadFile(log);
  EXPECT_THAT(out, HasSubstr("exit ")) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("exit 0"))) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("exit 124"))) << "the job hung: " << out;
  for (const char* f : {"dead/last.ckpt", "dead/best.ckpt"})
    EXPECT_NO_THROW(io::LoadSafetensors(*dir_ / f, true)) << f;
}

TEST_F(DistributedCli, KeepsTheNewestNumberedCheckpointsAndTheMovingAverage) {
  auto r = RunCommand(AttendCommand(Train("keep", 8, "--keep-checkpoints 2 --ema 0.9", 2)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(*dir_ / "keep/ckpt.4.ckpt"));
  EXPECT_TRUE(fs::exists(*dir_ / "keep/ckpt.6.ckpt"));
  ExpectSameTensors("keep/ckpt.8.ckpt", "keep/last.ckpt");
  EXPECT_TRUE(fs::exists(*dir_ / "keep/ema.ckpt"));
  // The average's checkpoint translates.
  r = RunCommand("echo 'a b' | " +
                 AttendCommand("translate -m " + ShellQuote(*dir_ / "keep/ema.ckpt")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Resuming needs the average of the same step.
  fs::remove(*dir_ / "keep/ema.ckpt");
  r = RunCommand(AttendCommand(Train("keep", 10, "--ema 0.9 --resume", 2)));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("ema.ckpt"));
}

TEST_F(DistributedCli, BadOptionsGetClearErrors) {
  for (const auto& [flag, message] :
       {std::pair<std::string, std::string>{"--accumulate 0", "--accumulate 0 must be >= 1"},
        {"--ema 1", "--ema 1 must be in [0, 1)"},
        {"--keep-checkpoints -1", "--keep-checkpoints -1 must be >= 0"}}) {
    const auto r = RunCommand(AttendCommand(Train("bad", 2, flag)));
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_THAT(r.output, HasSubstr(message)) << r.output;
  }
}

}  // namespace
}  // namespace attend
