// Checkpoints of translation models for tests, written the way nmt::Train writes them.
#pragma once

#include <cstdint>
#include <string>

#include "attend/nmt.h"
#include "attend/nn.h"

namespace attend::testing {

// Saves `model` as nmt::LoadModel reads it: the config {"model": model_json} (any JSON text, to
// test bad ones) and the vocabulary in the metadata; no optimizer state.
void SaveTranslationCheckpoint(const std::string& path, const nn::Module& model,
                               const nmt::Vocabulary& vocab, const std::string& model_json);

// Expects two checkpoints to hold the same tensors, bit for bit (f32 and i64 entries), and
// both to record `step` (trainer.step): how the resume tests compare runs.
void ExpectSameCheckpoints(const std::string& a, const std::string& b, int64_t step);

}  // namespace attend::testing
