// The JSON of translated lines, shared by /api/translate and /api/watch: tokens on both sides,
// scores, and every attention site of every hypothesis.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/models.h"
#include "attend/nmt.h"

namespace attend::serve {

// Every attention site of each hypothesis of one source ([hypothesis][site], weights [H, Tq,
// Tk] padded to the longest hypothesis): one teacher-forced pass in eval mode, which computes
// the weights decoding computed. The model's training mode is restored.
std::vector<std::vector<models::AttentionMap>> HypothesisMaps(
    models::Seq2Seq& model, const std::vector<int64_t>& source,
    const std::vector<nmt::Hypothesis>& hypotheses);

// {"source_tokens", "hypotheses": [{"text", "tokens" (y and </s>), "decoder_inputs" (<s> and y),
// "score", "log_prob", "attention": [{"name", "kind", "side", "layer", "heads": [H][Tq][Tk]}]}]}
// with weights rounded to 4 decimals; no "attention" when maps is null.
nlohmann::json LineJson(const nmt::Vocabulary& vocab, const std::vector<int64_t>& source,
                        const std::vector<nmt::Hypothesis>& hypotheses,
                        const std::vector<std::vector<models::AttentionMap>>* maps);

}  // namespace attend::serve
