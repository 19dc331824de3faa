// Fused scaled dot-product attention in f32 (Highway, dispatched once per call; OpenMP threads
// inside). Same contract as the scalar reference in backend/cpu/reference/attention_kernels.h.
#pragma once

#include "backend/cpu/attention_args.h"

namespace attend::cpu::simd {

// out [B, H, Tq, Dv], lse [B, H, Tq] (+inf for rows whose keys are all excluded).
void SdpaForward(const SdpaArgs& a, const float* q, const float* k, const float* v, float* out,
                 float* lse);
// dq [B, H, Tq, D], dk [B, H, Tk, D], dv [B, H, Tk, Dv] (overwritten); dout [B, H, Tq, Dv].
void SdpaBackward(const SdpaArgs& a, const float* q, const float* k, const float* v,
                  const float* out, const float* dout, const float* lse, float* dq, float* dk,
                  float* dv);

// Tile sizes (queries and keys per block), for tests that want sizes straddling them.
constexpr int64_t kSdpaQueryBlock = 64;
constexpr int64_t kSdpaKeyBlock = 128;
// Single-query decoding splits the keys into chunks of this many blocks (at least two chunks).
int64_t SdpaSplitChunks(int64_t tq, int64_t tk);

}  // namespace attend::cpu::simd
