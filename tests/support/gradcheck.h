// GradCheck (Backward gradients against central finite differences in f64) and test-data helpers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "attend/tensor.h"
#include "support/errors.h"

namespace attend::gradcheck {

// Tolerances for |analytic - numeric| <= atol + rtol * |numeric|.
//
// With a central difference the truncation error is eps^2 * f''' / 6, about 1e-13 for the O(1)
// derivatives of the smooth inputs the tests use, and the rounding error is about
// ulp(out) / eps = 2.2e-16 * |out| / 1e-6, about 2e-10 per output of size 1 (the harness sums
// only the differences out(x+eps) - out(x-eps), never the full objective, so large outputs that
// do not move add nothing). Measured: the ops here agree to 1e-9 relative and absolute, except
// a sum over 44k elements, whose output rounds differently when one input moves (4e-9 absolute).
// atol 1e-7 and rtol 1e-5 leave well over an order of magnitude of headroom for that while still
// catching any real error in a backward rule, which shows up at the 1e-2 level or above. Inputs
// must be O(1) and kept away from kinks and poles (see RandomAway) for these bounds to hold.
struct Options {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 20240607;  // for the cotangents
  int max_reported = 8;      // mismatching elements listed in a failure message
  // Finite differences cost two forward passes per input element, so inputs large enough to
  // reach the threaded and blocked kernels are checked at this many elements each (always
  // including the first and the last, where partial blocks sit); 0 checks every element.
  int64_t max_checked_per_input = 0;
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using MultiFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Checks the gradient of sum(fn(inputs) * w) w.r.t. every element of every input, for a fixed
// random cotangent w of the output's shape. The inputs must be f64; fresh contiguous leaf copies
// requiring grad are passed to fn, so fn may apply any views to them. Anything fn needs that is
// not checked (indices, masks, generators) should be captured by the lambda.
::testing::AssertionResult GradCheck(const Fn& fn, const std::vector<Tensor>& inputs,
                                     const Options& options = Options());

// As GradCheck for a function with several outputs (Split, Chunk, ...): each output gets its own
// cotangent and the analytic side uses attend::Backward over all of them at once.
::testing::AssertionResult GradCheckMulti(const MultiFn& fn, const std::vector<Tensor>& inputs,
                                          const Options& options = Options());

// ---- deterministic f64 test data (std::mt19937_64, independent of attend's own generator) ----

// Uniform in [lo, hi).
Tensor RandomUniform(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0);
// Uniform in [lo, hi) but at least `margin` away from every point in `kinks` (values too close
// are moved up by 2 * margin, so kinks must be more than 4 * margin apart).
Tensor RandomAway(const Shape& shape, uint64_t seed, double lo, double hi,
                  const std::vector<double>& kinks, double margin = 1e-2);
// Values with magnitude in [lo, hi) and a random sign: away from 0 for Abs, Relu, Div.
Tensor RandomSigned(const Shape& shape, uint64_t seed, double lo = 0.2, double hi = 2.0);
// Pairwise distinct values (gaps of at least 0.06) in random order, so max/min/top-k selections
// are unique and do not change under an eps perturbation.
Tensor RandomDistinct(const Shape& shape, uint64_t seed);
// Bernoulli(p) bool mask.
Tensor RandomMask(const Shape& shape, uint64_t seed, double p);

// Builds an i64 / bool tensor from a list (saves spelling std::vector at each call site).
Tensor Indices(const std::vector<int64_t>& values, const Shape& shape);
Tensor Mask(const std::vector<bool>& values, const Shape& shape);

using attend::testing::ThrownMessage;  // support/errors.h, for the tests that use this header

}  // namespace attend::gradcheck
