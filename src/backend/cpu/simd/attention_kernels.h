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

// The softmax's exp (FastExp in math-inl.h) element by element, for its test: relative error at
// most kFastExpMaxRelError against exp in double for -87 <= x <= 88 on every target; 0 below
// -87 (and for -inf); exp(0) = 1 exactly.
void FastExp(const float* x, float* y, int64_t n);
inline constexpr double kFastExpMaxRelError = 1.5e-7;  // measured 8.4e-8 (AVX), 1.05e-7 (scalar)
// FastExp2 (math-inl.h), the fused kernels' exp, the same way: against exp2 in double for
// -126 <= x <= 127; 0 below -126 (and for -inf); 2^0 = 1 exactly.
void FastExp2(const float* x, float* y, int64_t n);
inline constexpr double kFastExp2MaxRelError = 1.5e-7;  // measured 7.7e-8 (AVX2), 9.6e-8 (scalar)
// FastExp2Below128 (math-inl.h), the fused softmaxes' FastExp2 for x <= 127: the same bits as
// FastExp2 there.
void FastExp2Below128(const float* x, float* y, int64_t n);

// Tile sizes (queries and keys per block), for tests that want sizes straddling them.
constexpr int64_t kSdpaQueryBlock = 64;
constexpr int64_t kSdpaKeyBlock = 128;
// Single-query decoding splits the keys into chunks of this many blocks (at least two chunks).
int64_t SdpaSplitChunks(int64_t tq, int64_t tk);

}  // namespace attend::cpu::simd
