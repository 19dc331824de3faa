#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "attend/checkpoint.h"
#include "attend/optim.h"
#include "attend/train.h"
#include "io/untrusted_json.h"

namespace attend::train {
namespace {

// splitmix64: the batches' shuffle is a pure function of (seed, epoch, i).
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A double with all 17 significant digits (it reads back to the same value).
std::string Exact(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Where the loop stands; stored in every checkpoint so a resumed run continues exactly.
struct LoopState {
  int64_t step = 0, epoch = 0, batch_in_epoch = 0, bad_validations = 0;
  double best = -INFINITY;  // the best dev score; -inf before the first validation
  double seconds = 0.0, units = 0.0;

  io::Metadata ToMetadata() const {
    return {{"task.step", std::to_string(step)},
            {"task.epoch", std::to_string(epoch)},
            {"task.batch_in_epoch", std::to_string(batch_in_epoch)},
            {"task.bad_validations", std::to_string(bad_validations)},
            {"task.best_score", Exact(best)},
            {"task.seconds", Exact(seconds)},
            {"task.units", Exact(units)}};
  }
  static LoopState FromMetadata(const io::Metadata& m, const std::string& source) {
    auto get = [&](const char* key) -> const std::string& {
      auto it = m.find(key);
      ATTEND_CHECK(it != m.end(), source, ": not a task's training checkpoint (no '", key, "')");
      return it->second;
    };
    LoopState p;
    try {
      p.step = std::stoll(get("task.step"));
      p.epoch = std::stoll(get("task.epoch"));
      p.batch_in_epoch = std::stoll(get("task.batch_in_epoch"));
      p.bad_validations = std::stoll(get("task.bad_validations"));
      p.best = std::stod(get("task.best_score"));
      p.seconds = std::stod(get("task.seconds"));
      p.units = std::stod(get("task.units"));
    } catch (const std::logic_error&) {
      ATTEND_CHECK(false, source, ": a task.* entry is not a number");
    }
    ATTEND_CHECK(p.step >= 0 && p.epoch >= 0 && p.batch_in_epoch >= 0, source,
                 ": a task.* entry is negative");
    return p;
  }
};

nlohmann::json OptionsJson(const TaskTrainOptions& o) {
  return {{"batch_size", o.batch_size},
          {"lr", o.lr},
          {"warmup", o.warmup},
          {"clip_norm", o.clip_norm},
          {"max_steps", o.max_steps},
          {"max_epochs", o.max_epochs},
          {"valid_every", o.valid_every},
          {"patience", o.patience},
          {"seed", o.seed}};
}

nlohmann::json ParseTaskConfig(const std::string& text, const std::string& what) {
  nlohmann::json j = io::ParseUntrustedJson(text, what);
  ATTEND_CHECK(j.is_object(), what, " is not a JSON object");
  return j;
}

}  // namespace

std::vector<std::vector<int64_t>> ShuffledBatches(int64_t n, int64_t batch_size, uint64_t seed,
                                                  int64_t epoch) {
  ATTEND_CHECK(n >= 0 && batch_size > 0, "ShuffledBatches: n = ", n,
               " and batch_size = ", batch_size, " (need n >= 0, batch_size > 0)");
  const uint64_t key = Mix(seed ^ Mix(static_cast<uint64_t>(epoch) + 1));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[Mix(key + i) % i]);
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; b < n; b += batch_size)
    batches.emplace_back(order.begin() + b, order.begin() + std::min(n, b + batch_size));
  return batches;
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", (long long)(s / 3600),
                  (long long)(s / 60 % 60));
  else std::snprintf(buf, sizeof(buf), "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

Logger::Logger(const std::string& path, bool progress) : progress_(progress && isatty(2)) {
  file_.open(path, std::ios::app);
  ATTEND_CHECK(file_.good(), "train: cannot open the log file ", path);
}

void Logger::Line(const std::string& s) {
  ClearBar();
  std::fprintf(stderr, "%s\n", s.c_str());
  file_ << s << '\n';
  file_.flush();
}

void Logger::Bar(const std::string& s) {
  if (!progress_) return;
  std::fprintf(stderr, "\r%s\x1b[K", s.c_str());
  std::fflush(stderr);
  bar_shown_ = true;
}

void Logger::ClearBar() {
  if (bar_shown_) std::fprintf(stderr, "\r\x1b[K");
  bar_shown_ = false;
}

std::string LoadTaskCheckpoint(const std::string& path, nn::Module& model) {
  const std::string saved = io::LoadCheckpoint(path, model);
  const nlohmann::json j = ParseTaskConfig(saved, path + ": the config");
  ATTEND_CHECK(j.contains("task") && j.at("task").is_object(), path,
               ": not a checkpoint of attend::train::TrainTask (no task configuration)");
  return j.at("task").dump();
}

TaskTrainSummary TrainTask(Task& task, const TaskTrainOptions& o, bool resume) {
  const int64_t n = task.NumTrain();
  ATTEND_CHECK(n > 0, "train: no training examples");
  ATTEND_CHECK(o.max_steps > 0 || o.max_epochs > 0 || o.max_minutes > 0,
               "train: set a stop condition (steps, epochs or minutes)");
  ATTEND_CHECK(o.batch_size > 0 && o.valid_every > 0 && o.log_every > 0 && o.lr > 0 &&
                   o.warmup >= 0 && o.clip_norm >= 0 && o.patience >= 0,
               "train: batch size, valid-every, log-every and lr must be positive, warmup, "
               "clip-norm and patience not negative");
  if (o.threads > 0) SetNumThreads(o.threads);
  nn::Module& model = task.Model();
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ATTEND_CHECK(!ec && fs::is_directory(o.out_dir), "train: cannot create the output directory ",
               o.out_dir, ec ? ": " + ec.message() : "");
  const std::string last_path = (fs::path(o.out_dir) / "last.ckpt").string();
  const std::string best_path = (fs::path(o.out_dir) / "best.ckpt").string();
  // A run killed while writing a checkpoint leaves its temporary beside it: remove those.
  for (const auto& entry : fs::directory_iterator(o.out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const std::string base : {"last.ckpt.tmp", "best.ckpt.tmp"})
      if (name == base || name.rfind(base + ".", 0) == 0) fs::remove(entry.path(), ec);
  }

  const std::vector<Tensor> params = model.Parameters();
  optim::Adam adam(params, optim::AdamOptions{.lr = o.lr});
  optim::InverseSqrtWarmup schedule(
      adam,
      optim::InverseSqrtWarmup::Peak{.lr_peak = o.lr, .warmup = std::max<int64_t>(1, o.warmup)});
  nlohmann::json config;
  config["task"] = ParseTaskConfig(task.ConfigJson(), "the task's configuration");
  config["train"] = OptionsJson(o);
  const std::string config_json = config.dump();

  LoopState p;
  if (resume) {
    io::Metadata extra;
    const std::string saved = io::LoadCheckpoint(last_path, model, &adam, &schedule, &extra);
    p = LoopState::FromMetadata(extra, last_path);
    const nlohmann::json j = ParseTaskConfig(saved, last_path + ": the config");
    ATTEND_CHECK(j.contains("task") && j.at("task") == config.at("task"),
                 "train --resume: ", last_path, " was trained with another configuration (",
                 j.contains("task") ? io::JsonExcerpt(j.at("task"), 300) : std::string("none"),
                 ")");
  }
  Logger log((fs::path(o.out_dir) / "train.log").string(), o.progress);
  auto save = [&](const std::string& path) {
    io::SaveCheckpoint(path, model, &adam, &schedule, config_json, p.ToMetadata());
  };
  {
    std::ostringstream s;
    s << (resume ? "resuming at step " + std::to_string(p.step) : std::string("training")) << ": "
      << task.Describe() << ", " << model.NumParameters() << " parameters, " << n
      << " training examples";
    log.Line(s.str());
  }

  TaskTrainSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  const double seconds_before = p.seconds, units_before = p.units;
  auto elapsed = [&] {
    return seconds_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double train_seconds = 0.0;  // training steps only
  const int64_t first_step = p.step;
  double window_loss = 0.0, window_examples = 0.0, window_units = 0.0;
  auto t_window = std::chrono::steady_clock::now();
  int64_t last_validated = resume ? p.step : -1;
  std::string stop;
  auto validate = [&]() {
    TaskEval v;
    {
      NoGradGuard no_grad;
      model.Eval();
      v = task.Evaluate();
      model.Train();
    }
    summary.last = v;
    const bool better = v.score > p.best;
    if (better) {
      p.best = v.score;
      p.bad_validations = 0;
    } else {
      ++p.bad_validations;
    }
    p.seconds = elapsed();
    char buf[96];
    std::snprintf(buf, sizeof(buf), "validation step %lld: dev loss %.4f | ", (long long)p.step,
                  v.loss);
    log.Line(buf + v.text + (better ? " *best*" : "") + " (" + FormatDuration(p.seconds) + ")");
    // best before last: a run killed between the two resumes from the previous last.ckpt and
    // redoes this validation, so best.ckpt always matches the best score last.ckpt records.
    if (better) save(best_path);
    save(last_path);
    last_validated = p.step;
    if (o.patience > 0 && p.bad_validations >= o.patience)
      stop =
          "early stopping (" + std::to_string(o.patience) + " validations without a better score)";
  };

  model.Train();
  while (stop.empty()) {
    if (o.max_epochs > 0 && p.epoch >= o.max_epochs) {
      stop = "epochs";
      break;
    }
    const auto batches = ShuffledBatches(n, o.batch_size, o.seed, p.epoch);
    summary.epochs_started = p.epoch + 1;
    for (; p.batch_in_epoch < static_cast<int64_t>(batches.size()) && stop.empty();
         ++p.batch_in_epoch) {
      if (o.max_steps > 0 && p.step >= o.max_steps) {
        stop = "steps";
        break;
      }
      if (o.max_minutes > 0 && elapsed() >= o.max_minutes * 60.0) {
        stop = "minutes";
        break;
      }
      const auto step_start = std::chrono::steady_clock::now();
      const std::vector<int64_t>& rows = batches[static_cast<size_t>(p.batch_in_epoch)];
      Tensor loss = task.Loss(rows);
      ATTEND_CHECK(loss.numel() == 1, "train: the task's loss has ", loss.numel(),
                   " elements, not one");
      const double loss_value = loss.item();
      ATTEND_CHECK(std::isfinite(loss_value), "train: the loss became ", loss_value, " at step ",
                   p.step + 1, " (try a lower learning rate)");
      loss.Backward();
      if (o.clip_norm > 0) optim::ClipGradNorm(params, o.clip_norm);
      adam.Step();
      schedule.Step();
      adam.ZeroGrad();
      ++p.step;
      train_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      const double b = static_cast<double>(rows.size()), units = task.UnitsOf(rows);
      p.units += units;
      window_loss += loss_value * b;
      window_examples += b;
      window_units += units;
      double eta = INFINITY;
      const double per_step = train_seconds / std::max<double>(1.0, p.step - first_step);
      if (o.max_steps > 0)
        eta = std::min(eta, per_step * static_cast<double>(o.max_steps - p.step));
      if (o.max_minutes > 0) eta = std::min(eta, o.max_minutes * 60.0 - elapsed());
      if (o.max_epochs > 0)
        eta =
            std::min(eta, per_step * static_cast<double>((o.max_epochs - p.epoch) *
                                                             static_cast<int64_t>(batches.size()) -
                                                         p.batch_in_epoch - 1));
      const double window_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_window).count();
      char bar[256];
      std::snprintf(bar, sizeof(bar),
                    "step %lld | epoch %lld | loss %.4f | %.0f %s/s | lr %.2e | ETA %s",
                    (long long)p.step, (long long)p.epoch + 1, window_loss / window_examples,
                    window_units / std::max(1e-9, window_seconds), task.Unit().c_str(), adam.lr(),
                    FormatDuration(eta).c_str());
      log.Bar(bar);
      if (p.step % o.log_every == 0) {
        log.Line(bar);
        summary.curve.emplace_back(p.step, window_loss / window_examples);
        window_loss = window_examples = window_units = 0.0;
        t_window = std::chrono::steady_clock::now();
      }
      if (p.step % o.valid_every == 0) {
        p.batch_in_epoch += 1;  // the checkpoint continues after this batch
        validate();
        p.batch_in_epoch -= 1;
        t_window = std::chrono::steady_clock::now();
      }
    }
    if (!stop.empty()) break;
    ++p.epoch;
    p.batch_in_epoch = 0;
  }
  if (last_validated != p.step) validate();
  log.ClearBar();
  summary.steps = p.step;
  summary.best_score = p.best;
  summary.seconds = elapsed();
  summary.units_per_second = (p.units - units_before) / std::max(1e-9, train_seconds);
  summary.stop_reason = stop;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "stopped (%s) after %lld steps, %s; best dev score %.4f",
                stop.c_str(), (long long)p.step, FormatDuration(summary.seconds).c_str(), p.best);
  log.Line(buf);
  return summary;
}

}  // namespace attend::train
