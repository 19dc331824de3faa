// Checkpoints of translation and speech models for tests, written the way nmt::Train writes them.
#pragma once

#include <cstdint>
#include <string>

#include "attend/audio.h"
#include "attend/nmt.h"
#include "attend/nn.h"

namespace attend::testing {

// Saves `model` as nmt::LoadModel reads it: the config {"model": model_json} (any JSON text, to
// test bad ones) and the vocabulary in the metadata; no optimizer state.
void SaveTranslationCheckpoint(const std::string& path, const nn::Module& model,
                               const nmt::Vocabulary& vocab, const std::string& model_json);
// The same for a speech model: the config also records the feature options
// ({"model": model_json, "features": nmt::FeatureOptionsJson(features)}), as nmt::LoadModel
// requires of a model with feature_dim > 0.
void SaveSpeechCheckpoint(const std::string& path, const nn::Module& model,
                          const nmt::Vocabulary& vocab, const std::string& model_json,
                          const audio::FeatureOptions& features);

// Expects two checkpoints to hold the same tensors, bit for bit (f32 and i64 entries), and
// both to record `step` (trainer.step): how the resume tests compare runs.
void ExpectSameCheckpoints(const std::string& a, const std::string& b, int64_t step);

}  // namespace attend::testing
