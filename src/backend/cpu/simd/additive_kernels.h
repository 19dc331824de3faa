// Vectorised f32 kernels of fused additive (Bahdanau) attention scores, forward and backward
// (Highway, dispatched once per call). Same contract as backend/cpu/reference/additive_kernels.h,
// over a whole batch: q [B, Tq, A], k [B, Tk, A], v [A], s and g [B, Tq, Tk], rows contiguous.
#pragma once

#include <cstdint>

namespace attend::cpu::simd {

// The largest |FastTanh(x) - tanh(x)| over all finite floats x
// (tests/attention/test_additive_attention.cc checks it on a dense grid against std::tanh in
// double; derivation in additive_kernels.cc).
inline constexpr double kFastTanhMaxError = 4e-7;

// y[i] = tanh(x[i]) by the fast rational form the attention kernels use.
void FastTanh(const float* x, float* y, int64_t n);

// s[b, t, j] = sum_a v[a] tanh(q[b, t, a] + k[b, j, a]). `threads` > 1 splits the batch x query
// rows over that many OpenMP threads (the caller decides whether the work is worth it).
void AdditiveScoresForward(const float* q, const float* k, const float* v, float* s, int64_t nb,
                           int64_t nq, int64_t nk, int64_t na, int threads);

// Backward given g = dL/ds: writes dq [B, Tq, A], dk [B, Tk, A] and dv [A], recomputing tanh
// block by block; with accumulate_dk, dk's gradient is added to what dk holds (the running sum of
// keys every decoding step reads) instead of overwriting it.
void AdditiveScoresBackward(const float* q, const float* k, const float* v, const float* g,
                            float* dq, float* dk, float* dv, int64_t nb, int64_t nq, int64_t nk,
                            int64_t na, int threads, bool accumulate_dk = false);

}  // namespace attend::cpu::simd
