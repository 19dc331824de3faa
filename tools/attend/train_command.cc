// `attend train`: the options of nmt::TrainRun (its table, nmt::TrainRunOptions) and of the model
// (models::ModelConfig's table) as flags, then nmt::RunTraining; --task classify goes to the image
// classifier's trainer (classify_command.cc).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>

#include "attend/dist.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "commands.h"
#include "mpi_communicator.h"

namespace attend::tools {
namespace {

int Run(nmt::TrainRun& a) {
  if (a.task == "classify") {
    a.train.progress = !a.no_progress;
    return RunClassifyTraining(a.data_dir, a.train_tsv, a.dev_tsv, a.max_train, a.train, a.resume);
  }
  // Started by mpirun: data-parallel over its ranks. A rank that fails ends the whole job with
  // its message, so that no other rank waits forever in a collective.
  std::unique_ptr<dist::Communicator> comm;
  if (LaunchedByMpi()) comm = MakeMpiCommunicator();
  a.train.comm = comm.get();
  const int rank = comm ? comm->rank() : 0;
  nmt::TrainSummary s;
  try {
    s = nmt::RunTraining(a);
  } catch (const std::exception& e) {
    if (comm == nullptr || comm->size() == 1) throw;
    std::fprintf(stderr, "attend: error (rank %d of %d): %s\n", rank, comm->size(), e.what());
    std::fflush(stderr);
    AbortAllRanks(1);
  }
  if (rank != 0) return 0;
  const bool speech = a.task == "speech";
  std::printf("steps %lld, %.0f s, %.0f target tokens/s, best dev %s %.2f, checkpoint %s\n",
              (long long)s.steps, s.seconds, s.tokens_per_second, speech ? "WER" : "BLEU",
              speech ? -s.best_bleu : s.best_bleu,
              (std::filesystem::path(a.train.out_dir) / "best.ckpt").c_str());
  if (comm && comm->size() > 1) {
    const double steps = static_cast<double>(std::max<int64_t>(1, s.steps));
    std::printf(
        "%d ranks: %.1f s in the gradients' allreduce (%.1f ms per step), %.1f s waiting for the "
        "slowest rank (%.1f ms per step)\n",
        comm->size(), s.allreduce_seconds, 1e3 * s.allreduce_seconds / steps, s.wait_seconds,
        1e3 * s.wait_seconds / steps);
  }
  return 0;
}

}  // namespace

Runner RegisterTrainCommand(CLI::App& app) {
  auto a = std::make_shared<nmt::TrainRun>();
  CLI::App* c = app.add_subcommand("train", "Train a translation or speech recognition model");
  std::vector<nmt::TrainRunOption> options = nmt::TrainRunOptions(*a);
  // The data and vocabulary options come first, then the model's, then training's (from
  // --max-tokens on), as --help has always listed them.
  auto add = [&](const nmt::TrainRunOption& o) {
    std::string name = std::string("--") + o.name;
    if (name == "--out") name = "-o,--out";
    std::visit(
        [&](auto* value) {
          using T = std::remove_pointer_t<decltype(value)>;
          if constexpr (std::is_same_v<T, bool>) {
            if (o.flag) {
              c->add_flag(name, *value, o.help);
              return;
            }
          }
          CLI::Option* opt = c->add_option(name, *value, o.help);
          if (o.show_default) opt->capture_default_str();
        },
        o.value);
  };
  auto first_training = std::find_if(options.begin(), options.end(), [](const auto& o) {
    return std::string(o.name) == "max-tokens";
  });
  for (auto it = options.begin(); it != first_training; ++it) add(*it);
  // The model's options come from ModelConfig's table: name, help, and the flag that flips a
  // bool's default.
  models::ModelConfig::ForEachOption(a->model, [&](const models::OptionInfo& o, auto& value) {
    if (o.help == nullptr) return;
    using T = std::decay_t<decltype(value)>;
    std::string name = std::string("--") + o.name;
    std::replace(name.begin(), name.end(), '_', '-');
    if constexpr (std::is_same_v<T, bool>) {
      c->add_flag_function(
          o.flag, [&value, flipped = !value](int64_t) { value = flipped; }, o.help);
    } else if constexpr (std::is_enum_v<T>) {
      c->add_option_function<std::string>(
           name, [&value, name](const std::string& s) { value = models::ParseEnum<T>(s, name); },
           o.help)
          ->default_str(models::NameOf(value));
    } else {
      c->add_option(name, value, o.help)->capture_default_str();
    }
  });
  for (auto it = first_training; it != options.end(); ++it) add(*it);
  // ---- --task classify: the image classifier's options (classify_command.cc) ----
  AddClassifyTrainOptions(*c, [a] { return a->task; });
  // ---- end of --task classify ----
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
