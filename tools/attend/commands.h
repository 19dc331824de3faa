// The `attend` command's subcommands: each file in tools/attend/ registers one with CLI11 and
// runs it as a thin layer over library calls (ARCHITECTURE.md, "Tools are thin").
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace CLI {
class App;
}
namespace attend::nmt {
struct TrainOptions;
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
Runner RegisterClassifyCommand(CLI::App& app);
Runner RegisterAlignCommand(CLI::App& app);
Runner RegisterAverageCommand(CLI::App& app);
Runner RegisterQuantizeCommand(CLI::App& app);
Runner RegisterShortlistCommand(CLI::App& app);
// `attend train --task classify` (classify_command.cc): the classifier's options, added to the
// train command (`task` gives --task's value while parsing: --arch takes cnn | racnn with
// classify), and the run, with the train command's data and trainer options.
void AddClassifyTrainOptions(CLI::App& train, std::function<std::string()> task);
int RunClassifyTraining(const std::string& data_dir, const std::string& train_tsv,
                        const std::string& dev_tsv, int64_t max_train,
                        const nmt::TrainOptions& train, bool resume);

}  // namespace attend::tools
