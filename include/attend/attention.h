// The attention mechanisms of the source articles: score functions, ways of turning scores into
// weights, windows, query-key-value (multi-head) attention. Every mechanism returns its weights
// with its output, takes masks where they apply (bool, true = excluded) and works in batches.
#pragma once

#include <memory>
#include <vector>

#include "attend/nn.h"
#include "attend/ops.h"
#include "attend/tensor.h"

namespace attend::attention {

// What every mechanism returns: the attended summary and the weights that produced it.
struct Attended {
  Tensor context;  // [B, Tq, Dv]
  Tensor weights;  // [B, Tq, Tk] (multi-head: [B, H, Tq, Tk], or averaged [B, Tq, Tk])
};

// Whether the fused kernels run where they apply: FusedScaledDotProductAttention inside
// MultiHeadAttention (no weights asked for) and the Transformer, FusedAdditiveScores inside
// AdditiveScore. On by default; off runs the compositions of engine ops instead, which give the
// same results (within rounding and the fast tanh's 4e-7) - for measuring what the kernels buy
// end to end (`attend translate --no-fused`). Process-wide.
void SetFusedKernels(bool enabled);
bool FusedKernels();

// Checks that `mask` is bool and broadcasts to `scores_shape`, naming `op` and both shapes.
void CheckMask(const Tensor& mask, const Shape& scores_shape, const char* op);

// context = weights @ values: [B, Tq, Tk] x [B, Tk, Dv] -> [B, Tq, Dv].
Tensor WeightedSum(const Tensor& weights, const Tensor& values);

// ---------------------------------------------------------------------------------------------
// Scores between queries [B, Tq, Dq] (decoder states) and keys [B, Tk, Dk] (encoder states),
// giving [B, Tq, Tk]. PrepareKeys holds the work that does not depend on the query, so a
// decoder computes it once per source sentence and reuses it at every step.
class ScoreFunction : public nn::Module {
 public:
  virtual Tensor PrepareKeys(const Tensor& keys) const { return keys; }
  virtual Tensor Scores(const Tensor& query, const Tensor& prepared_keys) const = 0;
  virtual const char* name() const = 0;
  // Checks that query [B, Tq, Dq] and keys [B, Tk, Dk] share the batch, then scores.
  Tensor Forward(const Tensor& query, const Tensor& keys) const;
};

// Bahdanau: e_j = v^T tanh(W q + U k_j + b). PrepareKeys returns U k_j + b, [B, Tk, A].
class AdditiveScore : public ScoreFunction {
 public:
  const char* name() const override { return "AdditiveScore"; }
  AdditiveScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, Generator& gen,
                DType dtype = DType::kF32);
  Tensor PrepareKeys(const Tensor& keys) const override;
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys) const override;
  // The same with W applied by `packed_query` (query_proj packed for decoding steps).
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys,
                const nn::PrepackedLinear* packed_query) const;
  std::shared_ptr<nn::Linear> query_proj, key_proj;  // W (no bias), U (bias b)
  Tensor v;                                          // [A]
};

// Luong dot: q . k_j (Dq == Dk).
class DotScore : public ScoreFunction {
 public:
  const char* name() const override { return "DotScore"; }
  Tensor Scores(const Tensor& query, const Tensor& keys) const override;
};

// Vaswani: q . k_j / sqrt(d).
class ScaledDotScore : public ScoreFunction {
 public:
  const char* name() const override { return "ScaledDotScore"; }
  Tensor Scores(const Tensor& query, const Tensor& keys) const override;
};

// Luong general (bilinear; MwAN's bilinear): q^T W k_j. PrepareKeys returns W k_j.
class GeneralScore : public ScoreFunction {
 public:
  const char* name() const override { return "GeneralScore"; }
  GeneralScore(int64_t query_dim, int64_t key_dim, Generator& gen, DType dtype = DType::kF32);
  Tensor PrepareKeys(const Tensor& keys) const override;
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys) const override;
  Tensor weight;  // [Dq, Dk]
};

// Luong concat (MwAN's concat): v^T tanh(W [q; k_j]) with W = [W_q W_k], no bias.
class ConcatScore : public ScoreFunction {
 public:
  const char* name() const override { return "ConcatScore"; }
  ConcatScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, Generator& gen,
              DType dtype = DType::kF32);
  Tensor PrepareKeys(const Tensor& keys) const override;
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys) const override;
  Tensor weight;  // [A, Dq + Dk]
  Tensor v;       // [A]
  int64_t query_dim = 0, key_dim = 0;
};

// Luong location: scores from the query alone, a = W_a h_t over max_source_len positions; the
// first Tk of them are used. The keys only give Tk.
class LocationScore : public ScoreFunction {
 public:
  const char* name() const override { return "LocationScore"; }
  LocationScore(int64_t query_dim, int64_t max_source_len, Generator& gen,
                DType dtype = DType::kF32);
  Tensor Scores(const Tensor& query, const Tensor& keys) const override;
  std::shared_ptr<nn::Linear> proj;  // Dq -> max_source_len
};

// Chorowski et al. 2015's location-aware ("hybrid") score for speech: the additive score plus
// convolutional features of the previous step's weights,
//   f = F * alpha_{i-1} (k filters of odd width r, zero-padded: one k-vector per key),
//   e_j = v^T tanh(W q + V h_j + U f_j + b).
// PrepareKeys returns V h_j + b. The previous weights make it a one-step score: Scores takes a
// query [B, 1, Dq]; without previous weights (the two-argument form) f is zero.
class LocationAwareScore : public ScoreFunction {
 public:
  const char* name() const override { return "LocationAwareScore"; }
  LocationAwareScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, int64_t filters,
                     int64_t width, Generator& gen, DType dtype = DType::kF32);
  Tensor PrepareKeys(const Tensor& keys) const override;
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys) const override;
  // previous: the last step's weights [B, Tk] -> scores [B, 1, Tk].
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys, const Tensor& previous) const;
  std::shared_ptr<nn::Linear> query_proj, key_proj, location_proj;  // W, V (bias b), U
  Tensor filters;                                                   // F [k, 1, r]
  Tensor v;                                                         // [A]
};

// Query-key-value attention over a decoder's query (the encyclopedia's "encoder-decoder QKV";
// with the keys as the queries, its "encoder QKV" self-attention): q = W_q s, k_j = W_k h_j,
// v_j = W_v h_j, e_j = q . k_j / sqrt(A), context = sum_j alpha_j v_j. No biases. Unlike the
// other scores the context is not a mix of the keys themselves but of their values, Dv wide:
// PrepareKeys gives W_k h_j [B, Tk, A] and PrepareValues W_v h_j [B, Tk, Dv], both once per
// source sentence; Scores takes a query [B, Tq, Dq] and the prepared keys.
class QkvScore : public ScoreFunction {
 public:
  const char* name() const override { return "QkvScore"; }
  QkvScore(int64_t query_dim, int64_t key_dim, int64_t attn_dim, int64_t value_dim, Generator& gen,
           DType dtype = DType::kF32);
  Tensor PrepareKeys(const Tensor& keys) const override;
  Tensor PrepareValues(const Tensor& keys) const;
  Tensor Scores(const Tensor& query, const Tensor& prepared_keys) const override;
  // The whole layer: softmax of the scores over the keys (mask bool, broadcastable to
  // [B, Tq, Tk], true = excluded), context [B, Tq, Dv] and weights [B, Tq, Tk].
  Attended Attend(const Tensor& query, const Tensor& keys, const Tensor& mask = Tensor()) const;
  std::shared_ptr<nn::Linear> query_proj, key_proj, value_proj;  // W_q, W_k, W_v
};

// Neural Turing Machine content addressing: beta * cos(q, k_j), with a sharpening strength beta
// (a scalar, or a tensor [B, Tq] emitted by the controller).
class CosineScore : public ScoreFunction {
 public:
  const char* name() const override { return "CosineScore"; }
  explicit CosineScore(double beta = 1.0, double eps = 1e-8) : beta(beta), eps(eps) {}
  Tensor Scores(const Tensor& query, const Tensor& keys) const override;
  Tensor ScoresWithStrength(const Tensor& query, const Tensor& keys, const Tensor& beta) const;
  double beta, eps;
};

// MwAN (Tan et al. 2018) element-wise scores: dot  v^T tanh(W (q ⊙ k_j)),
// minus  v^T tanh(W (q − k_j)). (MwAN's concat and bilinear are ConcatScore and GeneralScore.)
class MwanScore : public ScoreFunction {
 public:
  const char* name() const override { return "MwanScore"; }
  enum class Kind { kDot, kMinus };
  MwanScore(Kind kind, int64_t dim, int64_t attn_dim, Generator& gen, DType dtype = DType::kF32);
  Tensor Scores(const Tensor& query, const Tensor& keys) const override;
  Kind kind;
  Tensor weight;  // [A, D]
  Tensor v;       // [A]
};

// ABCNN match score 1 / (1 + |q − k_j|) (Euclidean distance), in (0, 1]. Used as an attention
// matrix as it is (no softmax) in ABCNN.
Tensor MatchScore(const Tensor& query, const Tensor& keys);

// ---------------------------------------------------------------------------------------------
// Turning scores [.., Tk] into weights over the last dim. Masks are bool, broadcastable to the
// scores, true = excluded. A row with every position excluded gives all-zero weights (defined
// output, zero gradient) for soft, top-k and sparsemax.
Tensor SoftWeights(const Tensor& scores, const Tensor& mask = Tensor());
// Keeps the k largest scores' weights, renormalised over them; the others get weight 0 and no
// gradient (Sparse Attentive Backtracking). k larger than the unmasked count keeps them all.
Tensor TopKWeights(const Tensor& scores, int64_t k, const Tensor& mask = Tensor());
// Sparsemax (Martins & Astudillo 2016): the Euclidean projection onto the simplex.
Tensor Sparsemax(const Tensor& scores, const Tensor& mask = Tensor());

// Hard attention (Show, Attend and Tell): all weight on one position.
class HardAttention {
 public:
  enum class Mode {
    kArgmax,                // inference: the highest-scoring position
    kReinforce,             // training: sample from softmax(scores); gradient by the score-function
                            // estimator with a moving-average baseline (ReinforceLoss, once the
                            // reward is known, covers every Weights call since the last one)
    kGumbelStraightThrough  // training: one-hot of argmax(scores + Gumbel noise) forward,
                            // gradient of softmax((scores + noise) / tau) backward
  };
  HardAttention(Mode mode, uint64_t seed = 0, double tau = 1.0, double baseline_decay = 0.9)
      : mode(mode), tau(tau), baseline_decay(baseline_decay), gen(seed) {}
  // One-hot weights [.., Tk].
  Tensor Weights(const Tensor& scores, const Tensor& mask = Tensor());
  // kReinforce: the surrogate loss whose gradient is the score-function estimate
  // -(reward - baseline) * d log p(sampled) / d scores, summed over every sample drawn since the
  // last call (e.g. every decoding step of a sentence) and averaged over the batch; `reward` is
  // [B] (higher is better, e.g. minus the per-sentence loss). Updates the baseline.
  Tensor ReinforceLoss(const Tensor& reward);
  Mode mode;
  double tau, baseline_decay, baseline = 0.0;
  bool baseline_initialized = false;
  Generator gen;

 private:
  std::vector<Tensor> log_probs_;  // per Weights call: [B, ..] log-probability of the samples
};

// ---------------------------------------------------------------------------------------------
// Where to look (Luong et al. 2015).
// local-m: target position t looks at source positions [t − D, t + D] only. Returns the bool
// mask [Tq, Tk] (true = outside the window).
Tensor LocalMonotonicMask(int64_t tq, int64_t tk, int64_t window);

// local-p: a predicted centre p_t = S · sigmoid(v_p^T tanh(W_p h_t)) per query, S the source
// length of each sentence; weights = softmax over the window [p_t − D, p_t + D] of the scores,
// times exp(−(j − p_t)² / (2σ²)), σ = D / 2.
class LocalPredictive : public nn::Module {
 public:
  LocalPredictive(int64_t query_dim, int64_t hidden_dim, int64_t window, Generator& gen,
                  DType dtype = DType::kF32);
  // scores [B, Tq, Tk], query [B, Tq, Dq], source_lengths i64 [B] (undefined: all Tk).
  // Returns the weights [B, Tq, Tk] and sets `centers` [B, Tq].
  Tensor Weights(const Tensor& scores, const Tensor& query, const Tensor& source_lengths,
                 Tensor* centers = nullptr) const;
  std::shared_ptr<nn::Linear> proj;  // W_p
  Tensor v;                          // v_p [hidden]
  int64_t window;
};

// ---------------------------------------------------------------------------------------------
// Query-key-value attention (Vaswani et al. 2017).
// q [.., Tq, D], k [.., Tk, D], v [.., Tk, Dv]; mask bool broadcastable to [.., Tq, Tk];
// causal: position i sees keys j <= i (+ Tk − Tq, so a decoder's last queries line up with the
// last keys; with Tq > Tk the first Tq − Tk queries see nothing and get zero weights). Dropout on
// the weights when training; the returned weights are those before dropout.
Attended ScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const Tensor& mask = Tensor(), bool causal = false,
                                   double dropout = 0.0, bool training = false,
                                   Generator* gen = nullptr);
// The causal mask [Tq, Tk] (true = future, excluded).
Tensor CausalMask(int64_t tq, int64_t tk);

// The same context as ScaledDotProductAttention(...).context, computed by one fused kernel
// (online softmax over streamed key blocks; backward recomputes the weights block by block), so
// no [Tq, Tk] tensor is ever held. q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv], or all
// 3-D ([B, T, D], one head); key_padding_mask bool [B, Tk] (true = excluded); causal as above.
// Rows that see no key give zeros (and zero gradients). Dropout draws the counters that
// ScaledDotProductAttention's Dropout on the weights [B, H, Tq, Tk] would, so with the same
// generator state both give the same result. Returns the context [B, H, Tq, Dv].
Tensor FusedScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor& key_padding_mask = Tensor(),
                                      bool causal = false, double dropout = 0.0,
                                      bool training = false, Generator* gen = nullptr);

// Inference only (records no graph): the fused kernel's context, without dropout, of q
// [N, H, Tq, D] over IndexSelect(k, 0, rows) and IndexSelect(v, 0, rows) with the padding
// IndexSelect(key_padding_mask, 0, rows), read in place: query batch n reads batch rows[n] of k
// [B, H, Tk, D], v [B, H, Tk, Dv] and key_padding_mask bool [B, Tk]. rows: i64 [N], each in
// [0, B). Beam search's hypotheses attend over their sentence's memory this way, with no copy of
// it per hypothesis. Returns [N, H, Tq, Dv].
Tensor GatheredScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& key_padding_mask, const Tensor& rows);

// Keys and values of one attention layer, per head, for incremental decoding: k, v
// [N, H, capacity, hd], of which positions [0, length) are filled. Cross-attention fills one
// once from the encoder's output; self-attention appends one position per decoding step.
struct KVCache {
  Tensor k, v;
  int64_t length = 0;
  int64_t capacity() const { return k.defined() ? k.size(2) : 0; }
  // Room for `capacity` positions of n rows, none filled.
  static KVCache Empty(int64_t n, int64_t heads, int64_t capacity, int64_t head_dim, DType dtype);
  // Keeps rows `rows`, in that order (beam search reorders its hypotheses), with room for
  // `capacity` >= length positions: one copy per (row, head) of the filled positions, made in
  // place when the rows increase, the capacity stays and nothing else holds the cache (greedy
  // search dropping finished sentences).
  void Reorder(const std::vector<int64_t>& rows, int64_t capacity);
};

// One MultiHeadAttention's weights packed once for decoding steps (nn::PrepackedLinear, eval
// mode): the in-projection (q, k and v for self-attention; q alone for cross-attention) and
// out_proj.
struct PrepackedAttention {
  nn::PrepackedLinear in_proj, out_proj;
};

// Multi-head attention, the one implementation: torch.nn.MultiheadAttention's layout and
// semantics (batch_first) through Forward, and the building blocks a Transformer needs
// (self-attention with q, k, v in one GEMM, cross-attention over keys and values projected once,
// cached incremental decoding). in_proj_weight [3E, E] holds q, k, v's projections in that
// order, in_proj_bias [3E], out_proj (Linear E -> E). Every path goes through AttendHeads, which
// owns the rule for when the fused kernel runs (UsesFusedKernel).
class MultiHeadAttention : public nn::Module {
 public:
  MultiHeadAttention(int64_t embed_dim, int64_t num_heads, Generator& gen, double dropout = 0.0,
                     bool bias = true, DType dtype = DType::kF32);
  // query [B, Tq, E], key/value [B, Tk, E]; key_padding_mask bool [B, Tk]; attn_mask bool
  // [Tq, Tk] or [B*H, Tq, Tk]. Weights [B, H, Tq, Tk], or averaged over heads [B, Tq, Tk].
  // need_weights = false (as torch): the weights come back undefined and, unless an attn_mask
  // is given, the heads may run through FusedScaledDotProductAttention (UsesFusedKernel).
  Attended Forward(const Tensor& query, const Tensor& key, const Tensor& value,
                   const Tensor& key_padding_mask = Tensor(), const Tensor& attn_mask = Tensor(),
                   bool causal = false, bool average_weights = true, bool need_weights = true);

  // Self-attention of x [B, T, E] (q, k, v in one GEMM); pad_mask bool [B, T] (true = padding)
  // or undefined. Returns [B, T, E]; with `weights`, the weights averaged over heads [B, T, T].
  // `packed` (nullable, eval mode): Pack(false)'s weights.
  Tensor SelfAttention(const Tensor& x, const Tensor& pad_mask, bool causal,
                       Tensor* weights = nullptr, bool average_weights = true,
                       const PrepackedAttention* packed = nullptr);
  // Keys and values of memory [B, S, E] for cross-attention, projected in one GEMM (views; a
  // decoder that keeps them makes them contiguous); `packed` (nullable): PackKeysValues'.
  KVCache CrossKeysValues(const Tensor& memory, const nn::PrepackedLinear* packed = nullptr) const;
  // Cross-attention of x [B, Tq, E] over CrossKeysValues(memory); pad_mask bool [B, S].
  // `packed` (nullable): Pack(true)'s weights. Returns [B, Tq, E]; `weights` as above [B, Tq, S],
  // or per head [B, H, Tq, S] when average_weights is false (also for SelfAttention). With
  // `memory_rows` (i64 [B]), the memory and pad_mask hold B' rows and row b of x attends over
  // memory row memory_rows[b] (beam search: hypotheses share their sentence's memory), read in
  // place by GatheredScaledDotProductAttention where the fused kernel may run, else gathered.
  Tensor CrossAttention(const Tensor& x, const KVCache& memory, const Tensor& pad_mask,
                        Tensor* weights = nullptr, const PrepackedAttention* packed = nullptr,
                        bool average_weights = true, const Tensor& memory_rows = Tensor());
  // One decoding step of self-attention: x [N, 1, E] is position cache.length; its key and value
  // are appended (the cache must have room) and it attends over positions [0, length]. No mask
  // is needed: every cached position precedes it. `packed` (nullable): Pack(false)'s weights.
  Tensor SelfAttentionStep(const Tensor& x, KVCache& cache,
                           const PrepackedAttention* packed = nullptr);
  // The weights packed for decoding steps: q, k, v (self-attention) or q alone, in `precision`.
  PrepackedAttention Pack(bool query_only, nn::Precision precision = nn::Precision::kF32) const;
  // The key and value projections (in_proj rows [E, 3E)) packed for CrossKeysValues.
  nn::PrepackedLinear PackKeysValues(nn::Precision precision) const;

  // The core every path shares: q [B, H, Tq, hd], k, v [B, H, Tk, hd] already projected;
  // pad_mask bool [B, Tk] or undefined. Returns out_proj (or `out_proj_packed`) of the merged
  // context [B, Tq, E]; with `weights`, the weights averaged over heads [B, Tq, Tk] (or per head,
  // [B, H, Tq, Tk], when average_weights is false).
  Tensor AttendHeads(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& pad_mask,
                     bool causal, Tensor* weights = nullptr,
                     const nn::PrepackedLinear* out_proj_packed = nullptr,
                     bool average_weights = true);
  // Whether AttendHeads runs FusedScaledDotProductAttention for tq queries over tk keys: only
  // when no weights are wanted and FusedKernels() is on, and then for at least kFusedMinPairs
  // (query, key) pairs per head, or for a single query in eval mode (a decoding step, which has
  // its own path in the kernel). The kernel is tiled and threaded for long sequences; on a
  // ~20x20 training batch its fixed costs lose to the composition, which gives the same result
  // (docs/results.md).
  bool UsesFusedKernel(int64_t tq, int64_t tk, bool need_weights) const;
  static constexpr int64_t kFusedMinPairs = 128 * 128;

  // x [B, T, E] times rows [first, first + count) of in_proj_weight, transposed, plus the same
  // rows of in_proj_bias: q is rows [0, E), k [E, 2E), v [2E, 3E).
  Tensor Project(const Tensor& x, int64_t first, int64_t count) const;
  Tensor SplitHeads(const Tensor& x) const;   // [B, T, E] -> [B, H, T, hd] (a view if it can)
  static Tensor MergeHeads(const Tensor& x);  // [B, H, T, hd] -> [B, T, E]

  int64_t embed_dim, num_heads, head_dim;
  double dropout;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<nn::Linear> out_proj;
  // The attention-dropout stream, mirrored into the buffer `rng_state` (i64 [2]: seed, offset)
  // after every use so a checkpoint holds it; a checkpoint loaded into the buffer, or a state set
  // on `gen` directly, is adopted by the next use.
  Generator gen;
  Tensor rng_state;

 private:
  Generator& DropoutGenerator();
  void RecordDropoutGenerator();
  int64_t mirrored_[2] = {0, 0};
};

}  // namespace attend::attention
