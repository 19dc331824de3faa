// `attend quantize -m IN -o OUT`: a checkpoint for inference with its large matrices in int8
// (io::QuantizeCheckpoint): about a quarter of the size; `attend translate`, `attend serve` and
// Python's load_translator read it and decode in int8.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "attend/checkpoint.h"
#include "attend/error.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct QuantizeArgs {
  std::string input, output;
};

int Run(const QuantizeArgs& a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  ATTEND_CHECK(!fs::equivalent(a.input, a.output, ec), "quantize: the output ", a.output,
               " is the input; write a new file");
  const io::QuantizeSummary s = io::QuantizeCheckpoint(a.input, a.output);
  const auto in_size = fs::file_size(a.input), out_size = fs::file_size(a.output);
  std::fprintf(stderr,
               "quantized %lld of %lld model tensors to int8; file %.1f MB -> %.1f MB (%.2fx "
               "smaller; the optimizer state is left out): %s\n",
               static_cast<long long>(s.quantized), static_cast<long long>(s.tensors),
               static_cast<double>(in_size) / 1e6, static_cast<double>(out_size) / 1e6,
               static_cast<double>(in_size) / static_cast<double>(out_size), a.output.c_str());
  return 0;
}

}  // namespace

Runner RegisterQuantizeCommand(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* c = app.add_subcommand(
      "quantize",
      "Write a smaller checkpoint for inference: large matrices in int8, per-row scales");
  c->add_option("-m,--model", a->input, "Checkpoint written by attend train")->required();
  c->add_option("-o,--output", a->output, "The quantized checkpoint (a new file)")->required();
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
