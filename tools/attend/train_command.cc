// `attend train`: not built yet (placeholder until its issue lands).
#include <CLI/CLI.hpp>

#include "attend/error.h"
#include "commands.h"

namespace attend::tools {

Runner RegisterTrainCommand(CLI::App& app) {
  app.add_subcommand("train", "(not built yet)");
  return [] () -> int { ATTEND_CHECK(false, "attend train: not built yet"); return 1; };
}

}  // namespace attend::tools
