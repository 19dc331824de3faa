// Live training for `attend serve --watch RUN_DIR`: follows a run of `attend train` while it
// trains. Reads its train.log (training loss, dev loss, perplexity, BLEU, chrF) and, each time
// last.ckpt is rewritten (at every validation), loads it and translates a few fixed sentences,
// keeping their attention, so the page can show the alignment forming.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace attend::serve {

struct WatchOptions {
  std::string run_dir;
  std::vector<std::string> sentences;  // translated at every validation (at most 8)
  double poll_seconds = 0.5;
  size_t max_snapshots = 200;  // older validations are dropped beyond this
};

class RunWatcher {
 public:
  explicit RunWatcher(const WatchOptions& options);  // starts following the run
  ~RunWatcher();
  RunWatcher(const RunWatcher&) = delete;
  RunWatcher& operator=(const RunWatcher&) = delete;
  // GET /api/watch: {"watching": true, "run", "sentences", "train": [[step, loss]...], "valid":
  // [[step, dev loss, ppl, BLEU, chrF]...], "snapshots": [{"step", "results": [as
  // /api/translate]}], "error"}.
  std::string Json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attend::serve
