// Random inputs for kernel tests that take plain arrays (tensors: gradcheck::RandomUniform).
#pragma once

#include <cstdint>
#include <vector>

namespace attend::testing {

// n floats drawn uniformly from [lo, hi) by std::mt19937(seed): the same values on every machine.
std::vector<float> RandomFloats(int64_t n, float lo, float hi, unsigned seed);

}  // namespace attend::testing
