// `attend translate`: not built yet (placeholder until its issue lands).
#include <CLI/CLI.hpp>

#include "attend/error.h"
#include "commands.h"

namespace attend::tools {

Runner RegisterTranslateCommand(CLI::App& app) {
  app.add_subcommand("translate", "(not built yet)");
  return [] () -> int { ATTEND_CHECK(false, "attend translate: not built yet"); return 1; };
}

}  // namespace attend::tools
