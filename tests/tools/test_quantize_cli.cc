// Deployment-speed decoding from the command line: `attend quantize` writes a smaller checkpoint
// that `attend translate` reads and decodes in int8; `attend translate --precision` and
// `--shortlist` translate every line; bad values exit 1 with the reason.
#include <gtest/gtest.h>

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

size_t Lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST(QuantizeCli, QuantizedCheckpointAndPrecisionsTranslateEveryLine) {
  TempDir dir;
  auto r = RunCommand(AttendCommand("corpus synthetic --out " + ShellQuote(dir / "data") +
                                    " --seed 5 --train 300 --dev 6 --test 12 --max-words 6"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string run = dir / "run";
  // Hidden 64: the output layer and the recurrent weights reach the size that is quantized.
  r = RunCommand(AttendCommand(
      "train --data " + ShellQuote(dir / "data") + " --src src --tgt tgt --out " + ShellQuote(run) +
      " --vocab-type word --vocab-size 200 --embed-dim 32 --hidden-dim 64 --attention-dim 32 "
      "--max-tokens 200 --max-steps 8 --valid-every 8 --valid-sentences 2 --warmup 2 --lr 0.01 "
      "--no-progress --threads 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt = run + "/last.ckpt", q8 = dir / "q8.ckpt";
  const std::string test = dir / "data" + "/test.src";
  const size_t lines = Lines(ReadFile(test));
  ASSERT_EQ(lines, 12u);

  r = RunCommand(AttendCommand("quantize -m " + ShellQuote(ckpt) + " -o " + ShellQuote(q8)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("to int8; file "), std::string::npos) << r.output;
  EXPECT_LT(fs::file_size(q8) * 2, fs::file_size(ckpt));  // int8, no optimizer state
  const auto q = io::LoadSafetensors(q8, /*require_checksum=*/true);
  EXPECT_EQ(q.metadata.at(io::kQuantizedKey), "int8");
  bool has_i8 = false;
  for (const auto& [name, t] : q.tensors) {
    has_i8 |= t.dtype() == DType::kI8;
    EXPECT_NE(name.rfind("optim.", 0), 0u) << name;
  }
  EXPECT_TRUE(has_i8);

  auto translate = [&](const std::string& model, const std::string& extra) {
    return RunCommand(AttendCommand("translate -m " + ShellQuote(model) + " -i " +
                                    ShellQuote(test) + " --timing --threads 1 " + extra));
  };
  for (const std::string p : {"f32", "bf16", "int8"}) {
    r = translate(ckpt, "--precision " + p);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("target tokens/s (" + p + " on "), std::string::npos) << r.output;
  }
  // The quantized checkpoint decodes in int8 unless told otherwise.
  r = translate(q8, "-o " + ShellQuote(dir / "q8.out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(int8 on "), std::string::npos) << r.output;
  EXPECT_EQ(Lines(ReadFile(dir / "q8.out")), lines);
  r = translate(q8, "--precision f32 -o " + ShellQuote(dir / "q8f32.out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Lines(ReadFile(dir / "q8f32.out")), lines);

  // A shortlist built from the training data.
  const std::string sl = dir / "shortlist.txt";
  r = RunCommand(AttendCommand("shortlist -m " + ShellQuote(ckpt) + " --data " +
                               ShellQuote(dir / "data") + " --src src --tgt tgt -o " +
                               ShellQuote(sl) + " --frequent 10 --per-source 10"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = translate(q8, "--shortlist " + ShellQuote(sl) + " -o " + ShellQuote(dir / "sl.out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Lines(ReadFile(dir / "sl.out")), lines);

  // Refusals: exit 1, the reason, nothing written.
  r = translate(ckpt, "--precision fp16 -o " + ShellQuote(dir / "bad.out"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("unknown precision 'fp16' (f32, bf16 or int8)"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "bad.out"));
  r = RunCommand(
      AttendCommand("quantize -m " + ShellQuote(q8) + " -o " + ShellQuote(dir / "again.ckpt")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("quantized already"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "again.ckpt"));
  r = RunCommand(AttendCommand("quantize -m " + ShellQuote(ckpt) + " -o " + ShellQuote(ckpt)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is the input"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace attend
