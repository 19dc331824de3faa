// Training checkpoints: a model's state dict, its optimizer's and schedule's state and the run's
// configuration in one checksummed safetensors file, loaded back with every name checked.
#include <charconv>
#include <map>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "io/checkpoint_format.h"

namespace attend::io {
namespace {

using detail::kFormat;
using detail::kFormatKey;
constexpr const char* kConfigKey = "config";
const std::string kOptimPrefix = "optim.";
const std::string kSchedPrefix = "sched.";
const std::string kOptimType = "optim.type";
const std::string kSchedType = "sched.type";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Shortest text that reads back as the same double ("inf", "nan" included).
std::string FormatNumber(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

double ParseNumber(const std::string& text, const std::string& key, const std::string& where) {
  double v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  ATTEND_CHECK(r.ec == std::errc() && r.ptr == end && !text.empty(), where, ": metadata '", key,
               "' is not a number: '", text, "'");
  return v;
}

// The metadata entries under `prefix` other than its ".type", as numbers keyed without prefix.
optim::Scalars ScalarsUnder(const Metadata& metadata, const std::string& prefix,
                            const std::string& where) {
  optim::Scalars out;
  for (const auto& [key, value] : metadata) {
    if (!StartsWith(key, prefix) || key == prefix + "type") continue;
    out[key.substr(prefix.size())] = ParseNumber(value, key, where);
  }
  return out;
}

// The scalars stored under `prefix` for a component (`what`: "optimizer", "schedule") of type
// `type`, after checking that the checkpoint holds one of that type and that check(scalars)
// accepts its state.
template <typename Check>
optim::Scalars ComponentState(const Metadata& meta, const std::string& prefix, const char* what,
                              const std::string& type, const std::string& where, Check&& check) {
  const auto stored = meta.find(prefix + "type");
  ATTEND_CHECK(stored != meta.end(), where, ": the checkpoint holds no ", what, " state");
  ATTEND_CHECK(stored->second == type, where, ": the checkpoint's ", what, " is ", stored->second,
               ", not ", type);
  optim::Scalars scalars = ScalarsUnder(meta, prefix, where);
  try {
    check(scalars);
  } catch (const Error& e) {
    ATTEND_CHECK(false, where, ": ", what, " state: ", e.what());
  }
  return scalars;
}

}  // namespace

void SaveCheckpoint(const std::string& path, const nn::Module& model,
                    const optim::Optimizer* optimizer, const optim::LRScheduler* scheduler,
                    const std::string& config_json, const Metadata& extra) {
  const std::string where = "SaveCheckpoint " + path;
  ATTEND_CHECK(nlohmann::json::accept(config_json), where,
               ": the config is not valid JSON (pass \"{}\" for none)");
  for (const auto& [key, value] : extra) {
    ATTEND_CHECK(key != kConfigKey && !StartsWith(key, "attend.") &&
                     !StartsWith(key, kOptimPrefix) && !StartsWith(key, kSchedPrefix),
                 where, ": extra metadata key '", key,
                 "' is reserved ('config' and the prefixes attend., optim., sched.)");
  }
  NamedTensors tensors = model.StateDict();
  for (const auto& [name, t] : tensors)
    ATTEND_CHECK(!StartsWith(name, kOptimPrefix), where, ": model tensor '", name,
                 "' would collide with the optimizer's names (prefix optim.)");
  Metadata metadata = extra;
  metadata[kFormatKey] = kFormat;
  metadata[kConfigKey] = config_json;
  if (optimizer != nullptr) {
    for (const auto& [name, t] : optimizer->State()) tensors.emplace_back(kOptimPrefix + name, t);
    metadata[kOptimType] = optimizer->type();
    for (const auto& [key, value] : optimizer->ScalarState())
      metadata[kOptimPrefix + key] = FormatNumber(value);
  }
  if (scheduler != nullptr) {
    metadata[kSchedType] = scheduler->type();
    for (const auto& [key, value] : scheduler->State())
      metadata[kSchedPrefix + key] = FormatNumber(value);
  }
  SaveSafetensors(path, tensors, metadata);
}

std::string LoadCheckpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer,
                           optim::LRScheduler* scheduler, Metadata* extra) {
  return LoadCheckpoint(LoadSafetensors(path, /*require_checksum=*/true), path, model, optimizer,
                        scheduler, extra);
}

std::string LoadCheckpoint(SafetensorsContents file, const std::string& path, nn::Module& model,
                           optim::Optimizer* optimizer, optim::LRScheduler* scheduler,
                           Metadata* extra) {
  const std::string where = "LoadCheckpoint " + path;
  const Metadata& meta = file.metadata;
  detail::CheckCheckpointFormat(meta, where);
  if (meta.count(kQuantizedKey)) {
    ATTEND_CHECK(optimizer == nullptr && scheduler == nullptr, where,
                 ": a quantized checkpoint (attend quantize) holds no optimizer or schedule "
                 "state; resume training from the f32 checkpoint it was made from");
    detail::DequantizeTensors(file, where);
  }
  const auto config = meta.find(kConfigKey);
  ATTEND_CHECK(config != meta.end(), where, ": the metadata has no '", kConfigKey, "'");

  // ---- check everything first ----
  std::unordered_map<std::string, const Tensor*> stored;
  for (const auto& [name, t] : file.tensors) stored.emplace(name, &t);
  const NamedTensors state = model.StateDict();
  std::set<std::string> model_names;
  for (const auto& [name, t] : state) {
    model_names.insert(name);
    const auto it = stored.find(name);
    ATTEND_CHECK(it != stored.end(), where, ": model tensor '", name, "' (", t.str(),
                 ") is missing from the checkpoint");
    const Tensor& s = *it->second;
    ATTEND_CHECK(s.dtype() == t.dtype() && s.shape() == t.shape(), where, ": tensor '", name,
                 "' is ", s.str(), " in the checkpoint but ", t.str(), " in the model");
  }
  NamedTensors optim_state;
  for (const auto& [name, t] : file.tensors) {
    if (StartsWith(name, kOptimPrefix)) {
      optim_state.emplace_back(name.substr(kOptimPrefix.size()), t);
      continue;
    }
    ATTEND_CHECK(model_names.count(name), where, ": unexpected tensor '", name, "' (", t.str(),
                 "): the model has no tensor of that name");
  }
  optim::Scalars optim_scalars, sched_state;
  if (optimizer != nullptr) {
    optim_scalars = ComponentState(meta, kOptimPrefix, "optimizer", optimizer->type(), where,
                                   [&](const optim::Scalars& scalars) {
                                     optimizer->CheckState(optim_state);
                                     optimizer->CheckScalarState(scalars);
                                   });
  }
  if (scheduler != nullptr) {
    sched_state =
        ComponentState(meta, kSchedPrefix, "schedule", scheduler->type(), where,
                       [&](const optim::Scalars& scalars) { scheduler->CheckState(scalars); });
  }

  // ---- then load (nothing below can fail on the file's contents) ----
  {
    NoGradGuard no_grad;
    for (const auto& [name, t] : state) {
      Tensor dst = t;
      dst.CopyFrom(*stored.at(name));
    }
  }
  if (optimizer != nullptr) {
    optimizer->LoadState(optim_state);
    optimizer->LoadScalarState(optim_scalars);
  }
  if (scheduler != nullptr) scheduler->LoadState(sched_state);
  if (extra != nullptr) {
    extra->clear();
    for (const auto& [key, value] : meta) {
      if (key == kConfigKey || StartsWith(key, "attend.") || StartsWith(key, kOptimPrefix) ||
          StartsWith(key, kSchedPrefix))
        continue;
      (*extra)[key] = value;
    }
  }
  return config->second;
}

namespace detail {

void CheckCheckpointFormat(const Metadata& meta, const std::string& where) {
  const auto format = meta.find(kFormatKey);
  ATTEND_CHECK(format != meta.end(), where, ": not an attend checkpoint (no '", kFormatKey,
               "' in the metadata)");
  ATTEND_CHECK(format->second == kFormat, where, ": checkpoint format '", format->second,
               "' is not the supported '", kFormat, "'");
}

}  // namespace detail

}  // namespace attend::io
