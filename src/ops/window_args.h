// Argument checks shared by the ops that slide a window over [..., H, W] (convolution and
// pooling): sizes printed as "3" for a 1-D op and "3x5" for a 2-D one. Not part of the public API.
#pragma once

#include <string>

#include "attend/error.h"
#include "attend/ops/conv.h"

namespace attend {

inline std::string Fmt(Size2 s, int spatial) {
  return spatial == 1 ? std::to_string(s.w) : std::to_string(s.h) + "x" + std::to_string(s.w);
}

// Throws naming `op` unless stride is positive and padding non-negative in both dims.
inline void CheckStrideAndPadding(const char* op, int spatial, Size2 stride, Size2 padding) {
  ATTEND_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be positive, got ",
               Fmt(stride, spatial));
  ATTEND_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be non-negative, got ",
               Fmt(padding, spatial));
}

}  // namespace attend
