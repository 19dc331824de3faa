// Model-level test helpers: random padded batches, torch weights loaded into a model, and the
// f32 agreement of two computations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attend/models.h"
#include "support/reference_file.h"

namespace attend::testing {

// A padded batch: src rows of `src_lengths` random tokens (>= 4) then padding; tgt_in = BOS y..
// and tgt_out = y.. EOS with tgt_lengths = len(y) + 1. Tokens are drawn from c's vocabularies.
models::Batch RandomBatch(const models::ModelConfig& c, const std::vector<int64_t>& src_lengths,
                          const std::vector<int64_t>& tgt_lengths, uint64_t seed);

// Two results of different computations of the same values (other shapes, so other BLAS
// blocking; a step against the full forward) agree to f32 rounding: 1e-5 relative plus 2e-6
// absolute (log-probabilities and logits are O(1..10)). Reports at most five elements.
void ExpectClose(const Tensor& got, const Tensor& want, const std::string& what);

// Copies torch's weights (tensors named p:<name> in the case) into the model's StateDict. Both
// sides must name exactly the same parameters with the same shapes; the model's buffers
// (random-stream states) have no torch counterpart and are left alone.
void LoadTorchWeights(const reference::RefCase& c, nn::Module& model);

}  // namespace attend::testing
