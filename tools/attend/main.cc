// Entry point of the `attend` command: parses the subcommand and turns every attend::Error into
// a one-line message on stderr and exit code 1 (2 for a bad command line).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "attend/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "attend: attention models: machine translation, speech recognition, image captioning"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "attend 0.1.0");
  std::vector<std::pair<CLI::App*, attend::tools::Runner>> runners;
  auto add = [&](attend::tools::Runner (*reg)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    attend::tools::Runner run = reg(app);
    runners.emplace_back(app.get_subcommands({})[before], std::move(run));
  };
  add(attend::tools::RegisterCorpusCommand);
  add(attend::tools::RegisterTrainCommand);
  add(attend::tools::RegisterTranslateCommand);
  add(attend::tools::RegisterAlignCommand);
  add(attend::tools::RegisterScoreCommand);
  add(attend::tools::RegisterTranscribeCommand);
  add(attend::tools::RegisterCaptionCommand);
  add(attend::tools::RegisterClassifyCommand);
  add(attend::tools::RegisterServeCommand);
  add(attend::tools::RegisterAverageCommand);
  add(attend::tools::RegisterShortlistCommand);
  add(attend::tools::RegisterQuantizeCommand);
  try {
    // Options that take a name (--arch transformer) check it while parsing: their attend::Error
    // is reported like any other.
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
    return 2;
  } catch (const attend::Error& e) {
    std::fprintf(stderr, "attend: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attend: error: %s\n", e.what());
    return 1;
  }
}
