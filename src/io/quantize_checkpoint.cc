// Quantized checkpoints (`attend quantize`): a checkpoint's large matrices stored in int8 with a
// scale per row, rounded as the int8 decoding layers round them (backend/cpu/reference/
// quant_kernels.h), and read back into an f32 model.
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "attend/checkpoint.h"
#include "backend/cpu/reference/quant_kernels.h"
#include "io/checkpoint_format.h"

namespace attend::io {
namespace {

constexpr const char* kScaleSuffix = ".qscale";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

QuantizeSummary QuantizeCheckpoint(const std::string& input, const std::string& output) {
  const std::string where = "quantize " + input;
  SafetensorsContents in = LoadSafetensors(input, /*require_checksum=*/true);
  detail::CheckCheckpointFormat(in.metadata, where);
  ATTEND_CHECK(!in.metadata.count(kQuantizedKey), where, ": the checkpoint is quantized already");
  ATTEND_CHECK(in.metadata.count("config"), where, ": the metadata has no 'config'");
  QuantizeSummary summary;
  NamedTensors out;
  for (const auto& [name, t] : in.tensors) {
    summary.bytes_before += static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype());
    if (StartsWith(name, "optim.")) continue;  // inference only: no optimizer state
    ATTEND_CHECK(!EndsWith(name, kScaleSuffix), where, ": tensor '", name, "' ends in '",
                 kScaleSuffix, "', the suffix a quantized checkpoint gives its scales");
    ++summary.tensors;
    if (t.dtype() != DType::kF32 || t.dim() != 2 || t.numel() < kQuantizeMinElements) {
      out.emplace_back(name, t);
      continue;
    }
    const int64_t rows = t.size(0), cols = t.size(1);
    const Tensor w = t.Contiguous();
    Tensor q = Tensor::Empty({rows, cols}, DType::kI8);
    Tensor scale = Tensor::Empty({rows}, DType::kF32);
    std::vector<int32_t> colsum(static_cast<size_t>(rows));
    cpu::QuantizeWeightInt8(w.data<float>(), rows, cols, cols, q.data<int8_t>(),
                            scale.data<float>(), colsum.data());
    out.emplace_back(name, q);
    out.emplace_back(name + kScaleSuffix, scale);
    ++summary.quantized;
  }
  Metadata meta;
  for (const auto& [key, value] : in.metadata)
    if (key != kChecksumKey && !StartsWith(key, "optim.") && !StartsWith(key, "sched."))
      meta[key] = value;
  meta[kQuantizedKey] = "int8";
  for (const auto& [name, t] : out)
    summary.bytes_after += static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype());
  SaveSafetensors(output, out, meta);
  return summary;
}

namespace detail {

void DequantizeTensors(SafetensorsContents& file, const std::string& where) {
  const auto mark = file.metadata.find(kQuantizedKey);
  if (mark == file.metadata.end()) return;
  ATTEND_CHECK(mark->second == "int8", where, ": quantization '", mark->second,
               "' is not the supported 'int8'");
  std::unordered_map<std::string, const Tensor*> scales;
  for (const auto& [name, t] : file.tensors)
    if (EndsWith(name, kScaleSuffix)) scales.emplace(name, &t);
  NamedTensors tensors;
  size_t used = 0;
  for (const auto& [name, t] : file.tensors) {
    if (EndsWith(name, kScaleSuffix)) continue;
    if (t.dtype() != DType::kI8) {
      tensors.emplace_back(name, t);
      continue;
    }
    const auto s = scales.find(name + kScaleSuffix);
    ATTEND_CHECK(s != scales.end(), where, ": i8 tensor '", name, "' has no '", name, kScaleSuffix,
                 "'");
    const Tensor& scale = *s->second;
    ATTEND_CHECK(t.dim() == 2 && scale.dtype() == DType::kF32 && scale.dim() == 1 &&
                     scale.size(0) == t.size(0),
                 where, ": i8 tensor '", name, "' ", t.str(), " needs an f32 scale per row, got ",
                 scale.str());
    const int64_t rows = t.size(0), cols = t.size(1);
    const Tensor q = t.Contiguous(), sc = scale.Contiguous();
    Tensor w = Tensor::Empty({rows, cols}, DType::kF32);
    for (int64_t r = 0; r < rows; ++r) {
      const float f = sc.data<float>()[r];
      ATTEND_CHECK(std::isfinite(f) && f > 0.0f, where, ": '", name, kScaleSuffix, "'[", r,
                   "] = ", f, " is not a positive scale");
      for (int64_t c = 0; c < cols; ++c)
        w.data<float>()[r * cols + c] = static_cast<float>(q.data<int8_t>()[r * cols + c]) * f;
    }
    tensors.emplace_back(name, w);
    ++used;
  }
  ATTEND_CHECK(used == scales.size(), where, ": ", scales.size() - used, " scale tensors ('*",
               kScaleSuffix, "') belong to no i8 tensor");
  file.tensors = std::move(tensors);
}

}  // namespace detail
}  // namespace attend::io
