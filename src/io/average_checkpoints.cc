// Checkpoint averaging (`attend average`): the element-wise mean of the model tensors of several
// checkpoints of one model, checked to be the same model, written as a checkpoint without
// optimizer state.
#include <cstring>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/checkpoint.h"
#include "io/checkpoint_format.h"
#include "io/untrusted_json.h"

namespace attend::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using detail::kFormat;
using detail::kFormatKey;
constexpr const char* kConfigKey = "config";
constexpr const char* kAveragedFromKey = "attend.averaged_from";
// Where nmt::Train stores the vocabulary (named in messages; compared like any other entry).
constexpr const char* kVocabKey = "vocab.spm.base64";
// The config section holding the training options, which may differ between the inputs.
constexpr const char* kTrainSection = "train";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// What becomes of an input's metadata entry.
enum class Entry {
  kDropped,   // the checksum, the optimizer's and the schedule's state, an earlier averaged_from
  kLast,      // "config" (compared apart) and the trainer's progress: the last input's
  kCompared,  // everything else (format, vocabulary, ...): equal in all inputs, copied
};

Entry Kind(const std::string& key) {
  if (key == kChecksumKey || key == kAveragedFromKey || StartsWith(key, "optim.") ||
      StartsWith(key, "sched."))
    return Entry::kDropped;
  if (key == kConfigKey || StartsWith(key, "trainer.")) return Entry::kLast;
  return Entry::kCompared;
}

std::string Describe(const std::string& key) {
  return key == kVocabKey ? "metadata '" + key + "' (the vocabulary)" : "metadata '" + key + "'";
}

// True when `a` and `b` name the same file, or would (the output need not exist yet).
bool SamePath(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::equivalent(a, b, ec) && !ec) return true;
  std::error_code ea, eb;
  const fs::path ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  if (ea || eb) return fs::path(a).lexically_normal() == fs::path(b).lexically_normal();
  return ca == cb;
}

// The first place where `a` and `b` differ, as a dotted path ("model.hidden_dim"); false when
// they are equal. Parsed values are nested at most kMaxJsonDepth, which bounds the recursion.
bool FirstDifference(const json& a, const json& b, const std::string& path, std::string* at) {
  if (a == b) return false;
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string here = path.empty() ? it.key() : path + "." + it.key();
      if (!b.contains(it.key())) {
        *at = here;
        return true;
      }
      if (FirstDifference(it.value(), b.at(it.key()), here, at)) return true;
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (!a.contains(it.key())) {
        *at = path.empty() ? it.key() : path + "." + it.key();
        return true;
      }
    }
  }
  *at = path;
  return true;
}

// The value at a dotted path (object keys only, as FirstDifference builds them), for messages.
std::string ValueAt(const json& root, const std::string& path) {
  const json* v = &root;
  size_t begin = 0;
  while (!path.empty() && begin <= path.size()) {
    size_t end = path.find('.', begin);
    if (end == std::string::npos) end = path.size();
    const std::string key = path.substr(begin, end - begin);
    if (!v->is_object() || !v->contains(key)) return "absent";
    v = &v->at(key);
    begin = end + 1;
  }
  return JsonExcerpt(*v);
}

// The model's part of a checkpoint's config: every section but the training options.
json ModelConfig(const Metadata& meta, const std::string& where) {
  const auto it = meta.find(kConfigKey);
  ATTEND_CHECK(it != meta.end(), where, ": the metadata has no '", kConfigKey, "'");
  json config = ParseUntrustedJson(it->second, where + ": the config");
  ATTEND_CHECK(config.is_object(), where, ": the config is not a JSON object");
  config.erase(kTrainSection);
  return config;
}

// True for the state of a training stream: the last name component ends in "state" (the
// random streams' [seed, position] of dropout, attention dropout and teacher forcing,
// "rng_state" and "tf_rng_state"; the hard-attention sampler's "hard_state"). They advance with
// every training step, so they differ between any two checkpoints of a run; like the trainer's
// progress, the last input's are kept.
bool TrainingStreamState(const std::string& name) {
  const size_t dot = name.rfind('.');
  const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  const std::string suffix = "state";
  return last.size() >= suffix.size() &&
         last.compare(last.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One model tensor of the output as the inputs are read.
struct Slot {
  std::string name;
  DType dtype = DType::kF32;  // in the first input
  Shape shape;
  std::string desc;         // "f32[2, 3]", for messages
  Tensor values;            // i64/bool: the values copied to the output
  std::vector<double> sum;  // f32/f64: the running sum of the inputs' values, in f64
  size_t seen = 0;          // how many inputs held it
};

}  // namespace

void AverageCheckpoints(const std::vector<std::string>& inputs, const std::string& output) {
  ATTEND_CHECK(!inputs.empty(), "average: no checkpoint to average (give at least one)");
  ATTEND_CHECK(!output.empty(), "average: the output path is empty");
  for (const std::string& in : inputs)
    ATTEND_CHECK(!SamePath(in, output), "average: the output ", output, " is one of the inputs (",
                 in, "): write the average to a new file");

  // The inputs are read one at a time (memory: the f64 sums and one file), every check made as
  // each is read; nothing is written before the last has been read and checked.
  const std::string& first_path = inputs.front();
  std::vector<Slot> slots;
  std::unordered_map<std::string, size_t> index;
  json first_model;
  Metadata compared;  // the first input's kCompared entries
  Metadata last;      // the last input's kLast entries
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& path = inputs[i];
    const std::string where = "average: " + path;
    SafetensorsContents file;
    try {
      file = LoadSafetensors(path, /*require_checksum=*/true);
    } catch (const Error& e) {
      ATTEND_CHECK(false, "average: ", e.what());
    }
    const Metadata& meta = file.metadata;
    detail::CheckCheckpointFormat(meta, where);

    // ---- the same model: config, metadata ----
    json model = ModelConfig(meta, where);
    if (i == 0) {
      first_model = std::move(model);
    } else {
      std::string at;
      if (FirstDifference(model, first_model, "", &at))
        ATTEND_CHECK(false, where, ": another model than ", first_path, ": config '", at, "' is ",
                     ValueAt(model, at), " there, ", ValueAt(first_model, at), " in ", first_path);
    }
    last.clear();
    for (const auto& [key, value] : meta) {
      const Entry kind = Kind(key);
      if (kind == Entry::kLast) last[key] = value;
      if (kind != Entry::kCompared) continue;
      if (i == 0) {
        compared[key] = value;
        continue;
      }
      const auto it = compared.find(key);
      ATTEND_CHECK(it != compared.end(), where, ": ", Describe(key), " is not in ", first_path);
      ATTEND_CHECK(it->second == value, where, ": ", Describe(key), " differs from ", first_path,
                   "'s: not the same model");
    }
    for (const auto& [key, value] : compared)
      ATTEND_CHECK(meta.count(key), where, ": ", Describe(key), " of ", first_path, " is missing");

    // ---- the same tensors; summed ----
    for (const auto& [name, stored] : file.tensors) {
      if (StartsWith(name, "optim.")) continue;
      const Tensor t = stored.Contiguous();
      const size_t n = static_cast<size_t>(t.numel());
      Slot* slot = nullptr;
      if (i == 0) {
        index.emplace(name, slots.size());
        slots.push_back(Slot{name, t.dtype(), t.shape(), t.str(), Tensor(), {}, 0});
        slot = &slots.back();
        if (IsFloating(t.dtype())) slot->sum.assign(n, 0.0);
        else slot->values = t;
      } else {
        const auto it = index.find(name);
        ATTEND_CHECK(it != index.end(), where, ": tensor '", name, "' (", t.str(), ") is not in ",
                     first_path, ": not the same model");
        slot = &slots[it->second];
        ATTEND_CHECK(t.dtype() == slot->dtype && t.shape() == slot->shape, where, ": tensor '",
                     name, "' is ", t.str(), " there but ", slot->desc, " in ", first_path);
      }
      ++slot->seen;
      // Each value is added in f64 and the mean rounded once at the end (below): summing in f32
      // would round after every addition, so the mean of n checkpoints would carry up to n
      // roundings and depend on their order. Every f32 value is exact in f64 and the f64 sum's
      // error is far below half an f32 ulp, so an f32 mean is the f64 mean rounded once.
      if (t.dtype() == DType::kF32) {
        const float* x = t.data<float>();
        for (size_t k = 0; k < n; ++k) slot->sum[k] += static_cast<double>(x[k]);
      } else if (t.dtype() == DType::kF64) {
        const double* x = t.data<double>();
        for (size_t k = 0; k < n; ++k) slot->sum[k] += x[k];
      } else if (i > 0 && TrainingStreamState(name)) {
        slot->values = t;  // the last input's
      } else if (i > 0) {
        // Other i64 and bool tensors (counters, masks) are not averaged: they must agree.
        const size_t bytes = n * DTypeSize(t.dtype());
        ATTEND_CHECK(bytes == 0 || std::memcmp(t.raw_data(), slot->values.raw_data(), bytes) == 0,
                     where, ": tensor '", name, "' (", t.str(), ") differs from ", first_path,
                     "'s: ", DTypeName(t.dtype()),
                     " tensors are copied, not averaged, so they must be equal in every input");
      }
    }
    ATTEND_CHECK(!slots.empty(), where, ": the checkpoint holds no model tensor");
    for (const Slot& slot : slots)
      ATTEND_CHECK(slot.seen == i + 1, where, ": tensor '", slot.name, "' (", slot.desc, ") of ",
                   first_path, " is missing: not the same model");
  }

  // ---- the means ----
  const double count = static_cast<double>(inputs.size());
  NamedTensors tensors;
  tensors.reserve(slots.size());
  for (Slot& slot : slots) {
    const DType dtype = slot.dtype;
    if (!IsFloating(dtype)) {
      tensors.emplace_back(slot.name, slot.values);
      continue;
    }
    Tensor mean = Tensor::Empty(slot.shape, dtype);
    const size_t n = slot.sum.size();
    if (dtype == DType::kF32) {
      float* y = mean.data<float>();
      for (size_t k = 0; k < n; ++k) y[k] = static_cast<float>(slot.sum[k] / count);
    } else {
      double* y = mean.data<double>();
      for (size_t k = 0; k < n; ++k) y[k] = slot.sum[k] / count;
    }
    std::vector<double>().swap(slot.sum);
    tensors.emplace_back(slot.name, mean);
  }

  Metadata metadata = compared;
  for (const auto& [key, value] : last) metadata[key] = value;
  metadata[kAveragedFromKey] = json(inputs).dump(-1, ' ', false, json::error_handler_t::replace);
  SaveSafetensors(output, tensors, metadata);
}

}  // namespace attend::io
