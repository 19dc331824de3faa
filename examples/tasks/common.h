// What every task program of examples/tasks/ shares: the trainer's options on the command line
// (the same names as `attend train`'s), and the way errors end the program.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

#include "attend/error.h"
#include "attend/train.h"

namespace attend::examples {

// --out, --max-steps, --max-epochs, --max-minutes, --batch-size, --lr, --warmup, --clip-norm,
// --valid-every, --patience, --seed, --threads, --log-every, --no-progress and --resume.
inline void AddTrainOptions(CLI::App& app, train::TaskTrainOptions& o, bool& resume) {
  app.add_option("--out,-o", o.out_dir, "Output directory (best.ckpt, last.ckpt, train.log)")
      ->capture_default_str();
  app.add_option("--max-steps", o.max_steps, "Stop after this many steps (0 = no limit)")
      ->capture_default_str();
  app.add_option("--max-epochs", o.max_epochs, "Stop after this many epochs (0 = no limit)")
      ->capture_default_str();
  app.add_option("--max-minutes", o.max_minutes, "Stop after this many minutes (0 = no limit)")
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "Examples per batch")->capture_default_str();
  app.add_option("--lr", o.lr, "Peak learning rate (Adam)")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Steps of linear warm-up, then inverse square root decay")
      ->capture_default_str();
  app.add_option("--clip-norm", o.clip_norm, "Gradient norm clipping (0 = off)")
      ->capture_default_str();
  app.add_option("--valid-every", o.valid_every, "Steps between validations")
      ->capture_default_str();
  app.add_option("--patience", o.patience,
                 "Validations without a better score before stopping (0 = off)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the batches' shuffle")->capture_default_str();
  app.add_option("--threads", o.threads, "Threads (0 = the machine's cores)")
      ->capture_default_str();
  app.add_option("--log-every", o.log_every, "Steps between log lines")->capture_default_str();
  app.add_flag(
      "--no-progress", [&o](int64_t) { o.progress = false; }, "No progress bar");
  app.add_flag("--resume", resume, "Continue OUT/last.ckpt exactly");
}

// Parses the command line and runs `body`: an attend::Error (or any other exception) becomes
// "NAME: error: MESSAGE" on stderr and exit code 1; a bad command line exits as CLI11 says.
inline int Main(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return 1;
  }
}

}  // namespace attend::examples
