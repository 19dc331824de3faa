// attend-ntm: the Neural Turing Machine (or the LSTM baseline, --controller lstm) trained on the
// copy task with sequences of length 1..20, then tested on longer ones. Prints
//   ntm test bits-per-sequence L20 x L40 y L60 z L80 w (controller ntm)
// and draws the heads' weights over time for one test sequence (ntm-weights.png) and its bits
// (ntm-bits.png) into --out.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/tasks/ntm.h"
#include "attend/train.h"
#include "tasks/common.h"

int main(int argc, char** argv) {
  using namespace attend;
  CLI::App app{"Neural Turing Machine on the copy task, against an LSTM", "attend-ntm"};
  tasks::NtmConfig config;
  tasks::CopyDataOptions data;
  train::TaskTrainOptions options;
  options.out_dir = "runs/ntm";
  options.batch_size = 16;
  options.lr = 1e-3;
  options.warmup = 200;
  options.clip_norm = 10.0;
  options.valid_every = 250;
  bool resume = false;
  int64_t picture_length = 40;
  app.add_option("--controller", config.controller,
                 "ntm (memory with a read and a write head) or lstm (the baseline, no memory)")
      ->check(CLI::IsMember({"ntm", "lstm"}))
      ->capture_default_str();
  app.add_option("--memory-size", config.memory_size, "Memory locations N")->capture_default_str();
  app.add_option("--memory-width", config.memory_width, "Numbers per location M")
      ->capture_default_str();
  app.add_option("--hidden", config.hidden, "The NTM's LSTM controller size")
      ->capture_default_str();
  app.add_option("--lstm-hidden", config.lstm_hidden,
                 "The baseline LSTM's size (0 = as many parameters as the NTM)")
      ->capture_default_str();
  app.add_option("--train-size", data.train_size, "Training sequences")->capture_default_str();
  app.add_option("--dev-size", data.dev_size, "Dev sequences")->capture_default_str();
  app.add_option("--max-train-length", data.max_train_length,
                 "Training and dev lengths are 1..this")
      ->capture_default_str();
  app.add_option("--test-lengths", data.test_lengths, "One test set per length")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--test-per-length", data.test_per_length, "Test sequences per length")
      ->capture_default_str();
  app.add_option("--data-seed", data.seed, "Seed of the sequences")->capture_default_str();
  app.add_option("--picture-length", picture_length,
                 "Draw the first test sequence of this length (one of --test-lengths)")
      ->capture_default_str();
  examples::AddTrainOptions(app, options, resume);
  return examples::Main(app, argc, argv, [&] {
    config.init_seed = options.seed;
    tasks::NtmCopyTask task(config, data);
    size_t picture_set = data.test_lengths.size();
    for (size_t i = 0; i < data.test_lengths.size(); ++i)
      if (data.test_lengths[i] == picture_length) picture_set = i;
    ATTEND_CHECK(picture_set < data.test_lengths.size(), "--picture-length ", picture_length,
                 " is not one of --test-lengths");
    train::TrainTask(task, options, resume);
    const std::string best = options.out_dir + "/best.ckpt";
    train::LoadTaskCheckpoint(best, task.Model());
    task.Model().Eval();
    std::string line = "ntm test bits-per-sequence";
    {
      NoGradGuard no_grad;
      for (size_t i = 0; i < data.test_lengths.size(); ++i) {
        const tasks::CopyScore s = tasks::EvaluateCopy(task.copy_model(), task.data().test[i]);
        char cell[64];
        std::snprintf(cell, sizeof cell, " L%lld %.2f",
                      static_cast<long long>(data.test_lengths[i]), s.bits_per_sequence);
        line += cell;
      }
    }
    for (const std::string& path : tasks::DrawCopyPictures(
             task.copy_model(), task.data().test[picture_set], 0, options.out_dir))
      std::fprintf(stderr, "wrote %s\n", path.c_str());
    line += " (controller " + config.controller + ")";
    std::printf("%s\n", line.c_str());
    return 0;
  });
}
