// Fused additive (Bahdanau) attention scores: v^T tanh(W q + U k + b) for every (query, key)
// pair in one op, forward and backward, without the [B, Tq, Tk, A] intermediate.
#pragma once

#include "attend/tensor.h"

namespace attend::attention {

// scores[b, t, j] = sum_a v[a] * tanh(query_proj[b, t, a] + key_proj[b, j, a]).
//   query_proj [B, Tq, A] (= W q), key_proj [B, Tk, A] (= U k + b, computed once per sentence),
//   v [A]  ->  [B, Tq, Tk].
// Differentiable in all three inputs. f32 runs the vectorised kernel (a fast tanh within 4e-7 of
// tanh, see backend/cpu/simd/additive_kernels.h), threaded over batch x query rows when the work
// is large; f64 runs the scalar reference. Equal, up to that tanh error and rounding, to
// Matmul(Tanh(Add(query_proj.Unsqueeze(2), key_proj.Unsqueeze(1))), v).
Tensor FusedAdditiveScores(const Tensor& query_proj, const Tensor& key_proj, const Tensor& v);

}  // namespace attend::attention
