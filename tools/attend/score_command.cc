// `attend score`: not built yet (placeholder until its issue lands).
#include <CLI/CLI.hpp>

#include "attend/error.h"
#include "commands.h"

namespace attend::tools {

Runner RegisterScoreCommand(CLI::App& app) {
  app.add_subcommand("score", "(not built yet)");
  return [] () -> int { ATTEND_CHECK(false, "attend score: not built yet"); return 1; };
}

}  // namespace attend::tools
