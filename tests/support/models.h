// Model-level test helpers: random padded batches, torch weights loaded into a model, and the
// f32 agreement of two computations.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attend/models.h"
#include "support/gradcheck.h"
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

// The gradient of sum_k <out_k, w_k> with respect to every parameter of `m` (an f64 model), for
// fixed random cotangents w_k (options.seed), against central differences taken by moving each
// parameter element in place (gradcheck::GradCheck does the same for inputs; the tolerances
// are options'). `forward` runs the model on fixed inputs. With stride > 1 every stride-th
// element of each parameter is checked, the first included. Fails when nothing was checked.
::testing::AssertionResult ParametersMatchFiniteDifferences(
    nn::Module& m, const std::function<std::vector<Tensor>()>& forward, int64_t stride = 1,
    const gradcheck::Options& options = gradcheck::Options());

}  // namespace attend::testing
