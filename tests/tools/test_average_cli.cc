// `attend average` end to end: two short `attend train` runs of one model average into a
// checkpoint `attend translate` uses, whose weights are the mean of theirs; a clear message and
// exit code 1 for a checkpoint of another model, a corrupt one, a missing one, or the output
// naming an input, with nothing written.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "attend/checkpoint.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using testing::ReadFile;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;
using testing::WriteFile;

// A small synthetic language pair, built by the command the other CLI tests use.
void WriteCorpus(const TempDir& dir) {
  const auto r = RunCommand(AttendCommand("corpus synthetic --out " + ShellQuote(dir / "data") +
                                          " --seed 3 --train 200 --dev 4 --test 4 --max-words 6"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

std::string Train(const TempDir& dir, const std::string& out, int steps, int hidden) {
  return AttendCommand(
      "train --data " + ShellQuote(dir / "data") + " --src src --tgt tgt --out " + ShellQuote(out) +
      " --vocab-type word --vocab-size 200 --embed-dim 16 --hidden-dim " + std::to_string(hidden) +
      " --attention-dim 8 --max-tokens 120 --max-steps " + std::to_string(steps) +
      " --valid-every 3 --valid-sentences 2 --warmup 2 --lr 0.01 --no-progress --threads 1");
}

TEST(AverageCli, AveragesTwoRunsIntoATranslatingModel) {
  TempDir dir;
  WriteCorpus(dir);
  const std::string a = dir / "a", b = dir / "b", other = dir / "other";
  auto r = RunCommand(Train(dir, a, 3, 16));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(Train(dir, b, 6, 16));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ca = a + "/last.ckpt", cb = b + "/last.ckpt", avg = dir / "avg.ckpt";

  r = RunCommand(
      AttendCommand("average -o " + ShellQuote(avg) + " " + ShellQuote(ca) + " " + ShellQuote(cb)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("averaged 2 checkpoints ("), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" parameters) into " + avg), std::string::npos) << r.output;

  // The weights: each f32 tensor the mean of the two runs', in f64 rounded once.
  const auto ia = io::LoadSafetensors(ca, true), ib = io::LoadSafetensors(cb, true);
  const auto out = io::LoadSafetensors(avg, true);
  size_t checked = 0, model_tensors = 0;
  bool runs_differ = false;
  for (const auto& [name, ta] : ia.tensors) {
    if (name.rfind("optim.", 0) == 0) continue;
    ++model_tensors;
    const Tensor* tb = nullptr;
    const Tensor* to = nullptr;
    for (const auto& [n, t] : ib.tensors)
      if (n == name) tb = &t;
    for (const auto& [n, t] : out.tensors)
      if (n == name) to = &t;
    ASSERT_TRUE(tb != nullptr && to != nullptr) << name;
    ASSERT_EQ(to->shape(), ta.shape()) << name;
    ASSERT_EQ(to->dtype(), ta.dtype()) << name;
    if (ta.dtype() != DType::kF32) {
      // The random streams' states (i64 [seed, position]) differ between the runs: the last's.
      const size_t bytes = static_cast<size_t>(ta.numel()) * DTypeSize(ta.dtype());
      EXPECT_EQ(std::memcmp(to->raw_data(), tb->raw_data(), bytes), 0) << name;
      continue;
    }
    const float* x = ta.data<float>();
    const float* y = tb->data<float>();
    const float* m = to->data<float>();
    for (int64_t k = 0; k < ta.numel(); ++k) {
      runs_differ = runs_differ || x[k] != y[k];
      const float expected = static_cast<float>((double{x[k]} + double{y[k]}) / 2.0);
      ASSERT_EQ(m[k], expected) << name << "[" << k << "]";
    }
    ++checked;
  }
  EXPECT_GT(checked, 0u);
  EXPECT_TRUE(runs_differ) << "the two runs should have trained to different weights";
  EXPECT_EQ(out.tensors.size(), model_tensors);  // no optimizer state
  EXPECT_EQ(out.metadata.at("trainer.step"), "6");
  EXPECT_EQ(out.metadata.count("optim.type"), 0u);
  EXPECT_EQ(out.metadata.at("vocab.spm.base64"), ib.metadata.at("vocab.spm.base64"));

  r = RunCommand("printf 'lo ka mi\\nsu\\n' | " +
                 AttendCommand("translate --beam 2 -m " + ShellQuote(avg)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::Lines(r.output).size(), 2u) << r.output;

  // ---- bad input: exit 1, the message names the file and the problem, nothing written ----
  const std::string bad = dir / "bad.ckpt";
  auto expect_error = [&](const std::string& args, const std::string& expected) {
    SCOPED_TRACE(args);
    const auto e = RunCommand(AttendCommand("average -o " + ShellQuote(bad) + " " + args));
    EXPECT_EQ(e.exit_code, 1) << e.output;
    EXPECT_EQ(e.output.rfind("attend: error: average: ", 0), 0u) << e.output;
    EXPECT_NE(e.output.find(expected), std::string::npos) << e.output;
    EXPECT_FALSE(fs::exists(bad));
  };
  // Another model: the same corpus and vocabulary, a smaller hidden layer.
  r = RunCommand(Train(dir, other, 1, 8));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_error(ShellQuote(ca) + " " + ShellQuote(other + "/last.ckpt"),
               other + "/last.ckpt: another model than " + ca + ": config 'model.hidden_dim' is 8");
  std::string bytes = ReadFile(cb);
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(dir / "corrupt.ckpt", bytes);
  expect_error(ShellQuote(ca) + " " + ShellQuote(dir / "corrupt.ckpt"), "checksum mismatch");
  expect_error(ShellQuote(ca) + " " + ShellQuote(dir / "missing.ckpt"), "missing.ckpt");
  const std::string before = ReadFile(ca);
  const auto same = RunCommand(
      AttendCommand("average -o " + ShellQuote(ca) + " " + ShellQuote(ca) + " " + ShellQuote(cb)));
  EXPECT_EQ(same.exit_code, 1) << same.output;
  EXPECT_NE(same.output.find("is one of the inputs"), std::string::npos) << same.output;
  EXPECT_EQ(ReadFile(ca), before);
  // No input at all is a command-line error.
  const auto none = RunCommand(AttendCommand("average -o " + ShellQuote(bad)));
  EXPECT_NE(none.exit_code, 0) << none.output;
  EXPECT_FALSE(fs::exists(bad));
}

}  // namespace
}  // namespace attend
