// A checkpoint's config JSON on arbitrary bytes: the model section as nmt::LoadModel reads it
// (ModelConfig::FromJson, which validates), also wrapped as the whole config ({"model": ...}).
// An accepted config is valid and survives ToJson / FromJson unchanged. Models are not built here
// (fuzz_checkpoint builds them, from files whose tensors must match).
#include <nlohmann/json.hpp>

#include "attend/models.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  const std::string text(reinterpret_cast<const char*>(data), size);
  models::ModelConfig config;
  if (fuzz::Accepts([&] { config = models::ModelConfig::FromJson(text); })) {
    FUZZ_CHECK(fuzz::Accepts([&] { config.Validate(); }), "FromJson accepted an invalid config");
    const std::string json = config.ToJson();
    models::ModelConfig again;
    FUZZ_CHECK(fuzz::Accepts([&] { again = models::ModelConfig::FromJson(json); }),
               "ToJson wrote a config FromJson refuses: %s", json.c_str());
    FUZZ_CHECK(again.ToJson() == json, "round trip changed %s into %s", json.c_str(),
               again.ToJson().c_str());
  }
  // The whole config as the trainer stores it: {"model": {...}, "train": {...}}.
  const nlohmann::json whole = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (whole.is_object() && whole.contains("model"))
    fuzz::Accepts([&] { models::ModelConfig::FromJson(whole["model"].dump()); });
  return 0;
}
