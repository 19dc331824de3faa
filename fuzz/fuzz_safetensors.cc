// The safetensors reader on arbitrary bytes: LoadSafetensors from a file and ParseSafetensors from
// memory must agree (with and without a required checksum), and whatever loads saves again and
// reloads to the same names, dtypes, shapes, bytes and metadata.
#include <cstring>
#include <map>

#include "attend/checkpoint.h"
#include "fuzz_support.h"

namespace {

using attend::io::SafetensorsContents;

size_t Bytes(const attend::Tensor& t) {
  return static_cast<size_t>(t.numel()) * attend::DTypeSize(t.dtype());
}

// By name: tensors without bytes may sit at one offset in any order.
void CheckSame(const SafetensorsContents& a, const SafetensorsContents& b, const char* what) {
  FUZZ_CHECK(a.tensors.size() == b.tensors.size(), "%s: %zu vs %zu tensors", what, a.tensors.size(),
             b.tensors.size());
  std::map<std::string, const attend::Tensor*> by_name;
  for (const auto& [name, t] : b.tensors) by_name.emplace(name, &t);
  for (const auto& [name, ta] : a.tensors) {
    const auto it = by_name.find(name);
    FUZZ_CHECK(it != by_name.end(), "%s: tensor '%s' is missing", what, name.c_str());
    const attend::Tensor& tb = *it->second;
    FUZZ_CHECK(ta.dtype() == tb.dtype() && ta.shape() == tb.shape(), "%s: tensor '%s' differs",
               what, name.c_str());
    const attend::Tensor ca = ta.Contiguous(), cb = tb.Contiguous();
    FUZZ_CHECK(Bytes(ca) == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), Bytes(ca)) == 0,
               "%s: data of tensor '%s' differs", what, name.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("safetensors");
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string& path = file.Write(bytes);

  SafetensorsContents from_memory, from_file, checked;
  const bool memory_ok = fuzz::Accepts([&] { from_memory = io::ParseSafetensors(bytes, "fuzz"); });
  const bool file_ok = fuzz::Accepts([&] { from_file = io::LoadSafetensors(path); });
  FUZZ_CHECK(memory_ok == file_ok, "ParseSafetensors %s, LoadSafetensors %s",
             memory_ok ? "accepts" : "refuses", file_ok ? "accepts" : "refuses");
  const bool checked_ok =
      fuzz::Accepts([&] { checked = io::ParseSafetensors(bytes, "fuzz", true); });
  FUZZ_CHECK(!checked_ok || memory_ok, "accepted only when the checksum is required");
  if (!memory_ok) return 0;
  CheckSame(from_memory, from_file, "memory vs file");
  FUZZ_CHECK(from_memory.metadata == from_file.metadata);
  FUZZ_CHECK(checked_ok == (from_memory.metadata.count(io::kChecksumKey) != 0),
             "a file with a verified checksum is refused when the checksum is required");

  // What loads saves again (the writer adds its own checksum) and reloads the same.
  io::Metadata metadata = from_memory.metadata;
  metadata.erase(io::kChecksumKey);
  std::string again;
  FUZZ_CHECK(
      fuzz::Accepts([&] { again = io::SerializeSafetensors(from_memory.tensors, metadata); }),
      "a loaded file cannot be written back");
  SafetensorsContents reloaded;
  FUZZ_CHECK(fuzz::Accepts([&] { reloaded = io::ParseSafetensors(again, "again", true); }),
             "a written file does not load");
  CheckSame(from_memory, reloaded, "round trip");
  metadata[io::kChecksumKey] = reloaded.metadata[io::kChecksumKey];
  FUZZ_CHECK(reloaded.metadata == metadata, "metadata changed in the round trip");
  return 0;
}
