// `attend corpus`: not built yet (placeholder until its issue lands).
#include <CLI/CLI.hpp>

#include "attend/error.h"
#include "commands.h"

namespace attend::tools {

Runner RegisterCorpusCommand(CLI::App& app) {
  app.add_subcommand("corpus", "(not built yet)");
  return [] () -> int { ATTEND_CHECK(false, "attend corpus: not built yet"); return 1; };
}

}  // namespace attend::tools
