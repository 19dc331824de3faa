// What the two trainers of the nmt module (sequence models: trainer.cc; image classifiers:
// classify.cc) share: the log (train.log and stderr, with a progress bar on a terminal), durations
// as text, and numbers written into checkpoint metadata so that they read back exactly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>

#include "attend/error.h"
#include "attend/train.h"

namespace attend::nmt::detail {

// The log and durations of attend/train.h, the one trainer of the tasks.
using train::FormatDuration;
using train::Logger;

// A double with all 17 significant digits (it reads back to the same value).
inline std::string ExactNumber(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace attend::nmt::detail
