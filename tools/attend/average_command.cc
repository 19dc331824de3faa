// `attend average -o OUT CKPT...`: the mean of the weights of several checkpoints of one model
// (io::AverageCheckpoints), as fairseq's and JoeyNMT's average_checkpoints scripts compute it.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "attend/checkpoint.h"
#include "attend/error.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct AverageArgs {
  std::string output;
  std::vector<std::string> inputs;
};

int Run(const AverageArgs& a) {
  io::AverageCheckpoints(a.inputs, a.output);
  // Counted from the file as written, which also reads it back with its checksum.
  const io::SafetensorsContents out = io::LoadSafetensors(a.output, /*require_checksum=*/true);
  int64_t parameters = 0;
  for (const auto& [name, t] : out.tensors)
    if (IsFloating(t.dtype())) parameters += t.numel();
  std::fprintf(stderr, "averaged %zu checkpoint%s (%zu tensors, %lld parameters) into %s\n",
               a.inputs.size(), a.inputs.size() == 1 ? "" : "s", out.tensors.size(),
               static_cast<long long>(parameters), a.output.c_str());
  return 0;
}

}  // namespace

Runner RegisterAverageCommand(CLI::App& app) {
  auto a = std::make_shared<AverageArgs>();
  CLI::App* c = app.add_subcommand(
      "average",
      "Average the weights of checkpoints of one model (e.g. the last few of a run) into one");
  c->add_option("-o,--output", a->output,
                "The averaged checkpoint (a new file: not one of the inputs)")
      ->required();
  c->add_option("checkpoints", a->inputs,
                "Checkpoints written by attend train (best.ckpt, last.ckpt, ckpt.STEP.ckpt)")
      ->required();
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
