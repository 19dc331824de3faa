// The problem description shared by the fused scaled dot-product attention kernels (scalar
// reference and Highway): sizes, operand strides, masks, scale and the dropout stream.
#pragma once

#include <cstdint>

namespace attend::cpu {

// softmax(q k^T * scale + masks) v for q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv].
// q, k and v may be strided over (b, h, t); their last dim is contiguous. Outputs (out, lse and
// the gradients) and the incoming gradient dout are contiguous.
struct SdpaArgs {
  int64_t batch = 0, heads = 0, tq = 0, tk = 0, d = 0, dv = 0;
  int64_t q_stride[3] = {}, k_stride[3] = {}, v_stride[3] = {};  // elements, over (b, h, t)
  const bool* key_padding = nullptr;  // [B', Tk], true = excluded; null: no padding mask
  // Forward only: query batch b reads the keys, values and padding of batch kv_batch[b] (k, v
  // and key_padding then hold B' batches; beam search's hypotheses share their sentence's
  // memory). Null: batch b reads batch b.
  const int64_t* kv_batch = nullptr;
  bool causal = false;  // query i sees keys j <= i + Tk - Tq
  double scale = 1.0;
  // Attention dropout on the normalised weights: weight (b, h, i, j) is kept when
  // Generator::UniformD(seed, offset + ((b * H + h) * Tq + i) * Tk + j) >= dropout and then
  // scaled by 1 / (1 - dropout): the counters of attend::Dropout on a contiguous [B, H, Tq, Tk].
  double dropout = 0.0;
  uint64_t seed = 0, offset = 0;

  // The batch of k, v and key_padding that query batch b reads.
  int64_t KvBatch(int64_t b) const { return kv_batch != nullptr ? kv_batch[b] : b; }
  // Whether key j is excluded for query i of batch b (padding or causal).
  bool Excluded(int64_t b, int64_t i, int64_t j) const {
    if (key_padding != nullptr && key_padding[KvBatch(b) * tk + j]) return true;
    return causal && j > i + tk - tq;
  }
};

}  // namespace attend::cpu
