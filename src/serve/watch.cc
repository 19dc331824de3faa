#include "serve/watch.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "attend/error.h"
#include "attend/nmt.h"
#include "serve/answer.h"

namespace attend::serve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The figures of train.log's lines (nmt::Train writes them):
//   step 50 | epoch 1 | loss 8.953 | ...
//   validation step 500: dev loss 5.1092 ppl 165.53 BLEU 4.43 chrF 9.82 ...
void ParseLog(const std::string& text, json* train, json* valid) {
  *train = json::array();
  *valid = json::array();
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // a line still being written
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    long long step = 0, epoch = 0;
    double loss = 0, ppl = 0, bleu = 0, chrf = 0;
    if (std::sscanf(line.c_str(), "step %lld | epoch %lld | loss %lf", &step, &epoch, &loss) == 3) {
      train->push_back({step, loss});
    } else if (std::sscanf(line.c_str(),
                           "validation step %lld: dev loss %lf ppl %lf BLEU %lf chrF %lf", &step,
                           &loss, &ppl, &bleu, &chrf) == 5) {
      valid->push_back({step, loss, ppl, bleu, chrf});
    }
  }
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

struct RunWatcher::Impl {
  WatchOptions options;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  json train = json::array(), valid = json::array(), snapshots = json::array();
  std::string error;
  fs::file_time_type last_seen{}, last_log_time{};
  uintmax_t last_log_size = 0;
  std::thread thread;

  void Poll() {
    const fs::path dir(options.run_dir);
    std::error_code ec;
    // The log is read again only when it has grown or been rewritten.
    const fs::path log = dir / "train.log";
    const auto log_size = fs::file_size(log, ec);
    const auto log_time = ec ? fs::file_time_type{} : fs::last_write_time(log, ec);
    if (!ec && (log_size != last_log_size || log_time != last_log_time)) {
      last_log_size = log_size;
      last_log_time = log_time;
      json t, v;
      ParseLog(ReadAll(log), &t, &v);
      std::lock_guard<std::mutex> lock(mu);
      train = std::move(t);
      valid = std::move(v);
    }
    ec.clear();
    const fs::path ckpt = dir / "last.ckpt";
    const auto mtime = fs::last_write_time(ckpt, ec);
    if (ec || mtime == last_seen) return;
    last_seen = mtime;
    // last.ckpt is replaced atomically (renamed into place), so what is read is one whole file.
    try {
      nmt::LoadedModel m = nmt::LoadModel(ckpt.string());
      m.model->Eval();
      nmt::SearchOptions so;
      so.beam = 1;
      json results = json::array();
      for (const std::string& s : options.sentences) {
        const std::vector<int64_t> src = m.vocab.Encode(s);
        if (src.empty()) continue;
        const auto hyps = nmt::Translate(*m.model, {src}, so)[0];
        const auto maps = HypothesisMaps(*m.model, src, hyps);
        results.push_back(LineJson(m.vocab, src, hyps, &maps));
      }
      std::lock_guard<std::mutex> lock(mu);
      // The validation that wrote this checkpoint is the last one logged.
      const json step = valid.empty() ? json(0) : valid.back()[0];
      if (!snapshots.empty() && snapshots.back()["step"] == step)
        snapshots.erase(snapshots.size() - 1);
      snapshots.push_back({{"step", step}, {"results", std::move(results)}});
      while (snapshots.size() > options.max_snapshots) snapshots.erase(0);
      error.clear();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      error = e.what();
    }
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      lock.unlock();
      Poll();
      lock.lock();
      cv.wait_for(lock, std::chrono::duration<double>(options.poll_seconds),
                  [&] { return stopping; });
    }
  }
};

RunWatcher::RunWatcher(const WatchOptions& options) : impl_(std::make_unique<Impl>()) {
  ATTEND_CHECK(fs::is_directory(options.run_dir), "serve --watch: ", options.run_dir,
               " is not a directory (the --out folder of attend train)");
  ATTEND_CHECK(options.sentences.size() <= 8,
               "serve --watch: at most 8 sentences are followed, got ", options.sentences.size());
  impl_->options = options;
  impl_->thread = std::thread([this] { impl_->Run(); });
}

RunWatcher::~RunWatcher() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

std::string RunWatcher::Json() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  json out = {{"watching", true},
              {"run", impl_->options.run_dir},
              {"sentences", impl_->options.sentences},
              {"train", impl_->train},
              {"valid", impl_->valid},
              {"snapshots", impl_->snapshots},
              {"error", impl_->error}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace attend::serve
