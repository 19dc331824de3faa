// The checkpoint format's marker, shared by the checkpoint reader and writer
// (src/io/checkpoint.cc) and `attend average` (src/io/average_checkpoints.cc).
#pragma once

#include <string>

#include "attend/checkpoint.h"

namespace attend::io::detail {

inline constexpr const char* kFormatKey = "attend.format";
inline constexpr const char* kFormat = "checkpoint/1";

// attend::Error naming `where` unless `meta` marks an attend checkpoint of this format.
void CheckCheckpointFormat(const Metadata& meta, const std::string& where);

}  // namespace attend::io::detail
