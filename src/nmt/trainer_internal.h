// What the two trainers of the nmt module (sequence models: trainer.cc; image classifiers:
// classify.cc) share: the log (train.log and stderr, with a progress bar on a terminal), durations
// as text, and numbers written into checkpoint metadata so that they read back exactly.
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "attend/error.h"

namespace attend::nmt::detail {

// "12m05s", "1h02m"; "?" for a negative or infinite time.
inline std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", (long long)(s / 3600),
                  (long long)(s / 60 % 60));
  else std::snprintf(buf, sizeof(buf), "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

// A double with all 17 significant digits (it reads back to the same value).
inline std::string ExactNumber(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Lines to the log file and stderr, and a progress bar on stderr when it is a terminal.
class Logger {
 public:
  Logger(const std::string& path, bool progress) : progress_(progress && isatty(2)) {
    file_.open(path, std::ios::app);
    ATTEND_CHECK(file_.good(), "train: cannot open the log file ", path);
  }
  // A line in the log file and on stderr.
  void Line(const std::string& s) {
    ClearBar();
    std::fprintf(stderr, "%s\n", s.c_str());
    file_ << s << '\n';
    file_.flush();
  }
  void Bar(const std::string& s) {
    if (!progress_) return;
    std::fprintf(stderr, "\r%s\x1b[K", s.c_str());
    std::fflush(stderr);
    bar_shown_ = true;
  }
  void ClearBar() {
    if (bar_shown_) std::fprintf(stderr, "\r\x1b[K");
    bar_shown_ = false;
  }

 private:
  std::ofstream file_;
  bool progress_, bar_shown_ = false;
};

}  // namespace attend::nmt::detail
