// The checkpoint format's marker, shared by the checkpoint reader and writer
// (src/io/checkpoint.cc), `attend average` (src/io/average_checkpoints.cc) and `attend quantize`
// (src/io/quantize_checkpoint.cc).
#pragma once

#include <string>

#include "attend/checkpoint.h"

namespace attend::io::detail {

inline constexpr const char* kFormatKey = "attend.format";
inline constexpr const char* kFormat = "checkpoint/1";

// attend::Error naming `where` unless `meta` marks an attend checkpoint of this format.
void CheckCheckpointFormat(const Metadata& meta, const std::string& where);

// A quantized checkpoint's tensors (kQuantizedKey) as the f32 model holds them: each i8 matrix
// times its per-row scale, the scales removed. Other files are left alone. Throws naming
// `where` on an i8 tensor without a valid scale or a scale without its tensor.
void DequantizeTensors(SafetensorsContents& file, const std::string& where);

}  // namespace attend::io::detail
