// The `attend` command's subcommands: each file in tools/attend/ registers one with CLI11 and
// runs it as a thin layer over library calls (ARCHITECTURE.md, "Tools are thin").
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace attend::tools {

// Registers a subcommand on `app`; the returned function runs it once parsing succeeded and
// returns the process exit code. Errors are thrown as attend::Error and reported by main().
using Runner = std::function<int()>;
Runner RegisterCorpusCommand(CLI::App& app);
// `attend corpus scenes` and `attend corpus cluttered` (corpus_images.cc), registered on the corpus
// command by RegisterCorpusCommand.
Runner RegisterScenesCorpus(CLI::App& corpus);
Runner RegisterClutteredCorpus(CLI::App& corpus);
Runner RegisterTrainCommand(CLI::App& app);
Runner RegisterTranslateCommand(CLI::App& app);
Runner RegisterScoreCommand(CLI::App& app);
Runner RegisterServeCommand(CLI::App& app);
Runner RegisterTranscribeCommand(CLI::App& app);
Runner RegisterCaptionCommand(CLI::App& app);

}  // namespace attend::tools
