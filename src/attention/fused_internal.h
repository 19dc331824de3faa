// Internal hooks of the fused scaled dot-product attention op, for tests (not public API).
#pragma once

#include <cstdint>

namespace attend::attention::internal {

// How many times FusedScaledDotProductAttention has run its forward kernel in this process, so
// a test can tell that a caller (MultiHeadAttention) took the fused path.
uint64_t FusedSdpaCalls();

}  // namespace attend::attention::internal
