// The differentiable ops. Every op checks its inputs and throws attend::Error naming itself and
// the shapes involved; every floating op has a backward rule (src/ops/*.cc).
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "attend/tensor.h"

namespace attend {

// ---- elementwise, with NumPy broadcasting ----
Tensor Add(const Tensor& a, const Tensor& b);
Tensor Sub(const Tensor& a, const Tensor& b);
Tensor Mul(const Tensor& a, const Tensor& b);
Tensor Div(const Tensor& a, const Tensor& b);
Tensor AddScalar(const Tensor& a, double s);
Tensor MulScalar(const Tensor& a, double s);
Tensor Pow(const Tensor& a, double exponent);
Tensor Neg(const Tensor& a);
Tensor Abs(const Tensor& a);
Tensor Exp(const Tensor& a);
Tensor Log(const Tensor& a);
Tensor Sqrt(const Tensor& a);
Tensor Rsqrt(const Tensor& a);
Tensor Tanh(const Tensor& a);
Tensor Sigmoid(const Tensor& a);
Tensor Relu(const Tensor& a);
Tensor Gelu(const Tensor& a);  // exact (erf) form, as torch.nn.functional.gelu
Tensor Clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi);

// ---- comparisons (bool results, not differentiable) and selection ----
Tensor Eq(const Tensor& a, const Tensor& b);
Tensor Ne(const Tensor& a, const Tensor& b);
Tensor Lt(const Tensor& a, const Tensor& b);
Tensor Le(const Tensor& a, const Tensor& b);
Tensor Gt(const Tensor& a, const Tensor& b);
Tensor Ge(const Tensor& a, const Tensor& b);
Tensor LogicalNot(const Tensor& mask);
Tensor LogicalAnd(const Tensor& a, const Tensor& b);  // bool, broadcasting
Tensor LogicalOr(const Tensor& a, const Tensor& b);
// cond ? a : b, all three broadcast together.
Tensor Where(const Tensor& cond, const Tensor& a, const Tensor& b);
// a with `value` where mask is true (mask broadcasts to a).
Tensor MaskedFill(const Tensor& a, const Tensor& mask, double value);

// ---- reductions over dims (empty dims = all), keepdim as in PyTorch ----
Tensor Sum(const Tensor& a, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor Mean(const Tensor& a, const std::vector<int>& dims = {}, bool keepdim = false);
// amax/amin: ties share the gradient equally, as torch.amax.
Tensor Max(const Tensor& a, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor Min(const Tensor& a, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor Argmax(const Tensor& a, int dim, bool keepdim = false);  // first maximum, i64
Tensor Argmin(const Tensor& a, int dim, bool keepdim = false);
// correction 1 = unbiased (PyTorch's default), 0 = population variance.
Tensor Var(const Tensor& a, const std::vector<int>& dims = {}, int correction = 1,
           bool keepdim = false);

// ---- linear algebra ----
// 1-D, 2-D and batched operands with broadcast batch dims, as torch.matmul. Transposed operands
// are passed to the BLAS as transposes, never copied.
Tensor Matmul(const Tensor& a, const Tensor& b);
// x [..., in] @ weight [out, in]^T + bias [out] (undefined: none), as torch.nn.functional.linear:
// one GEMM whose tiles start from the bias (no second pass over the output). Gradients are those
// of Matmul(x, weight.T()) + bias.
Tensor Linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- normalisation and probabilities ----
// mask (bool, broadcastable to a): true = excluded. Excluded positions get weight 0; a row with
// every position excluded gives all zeros (softmax) or all -inf (log_softmax) and zero gradient.
Tensor Softmax(const Tensor& a, int dim, const Tensor& mask = Tensor());
Tensor LogSoftmax(const Tensor& a, int dim, const Tensor& mask = Tensor());
// Normalises over the trailing `normalized_dims` dims; weight and bias optional (undefined).
Tensor LayerNorm(const Tensor& a, int normalized_dims, const Tensor& weight = Tensor(),
                 const Tensor& bias = Tensor(), double eps = 1e-5);
// Inverted dropout: kept elements are scaled by 1/(1-p). Identity when !training or p == 0.
Tensor Dropout(const Tensor& a, double p, bool training, Generator& gen);

// ---- indexing ----
// weight [V, D], indices i64 of any shape -> [..., D]; gradient scatter-added into weight.
Tensor Embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
Tensor IndexSelect(const Tensor& a, int dim, const Tensor& index);  // index: 1-D i64
Tensor Gather(const Tensor& a, int dim, const Tensor& index);       // as torch.gather
// Largest (or smallest) k along dim, sorted; values are differentiable, indices i64.
std::pair<Tensor, Tensor> TopK(const Tensor& a, int64_t k, int dim = -1, bool largest = true);

// ---- joining and splitting ----
Tensor Concat(const std::vector<Tensor>& xs, int dim);
Tensor Stack(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> Split(const Tensor& a, int64_t split_size, int dim);  // views
std::vector<Tensor> Chunk(const Tensor& a, int64_t chunks, int dim);      // views, as torch.chunk

// ---- losses ----
enum class Reduction { kNone, kSum, kMean };
// logits [N, C] (or [C]), target i64 [N]; targets equal to ignore_index contribute nothing and
// the mean is over the others. label_smoothing as torch.nn.functional.cross_entropy.
Tensor CrossEntropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                    double label_smoothing = 0.0, Reduction reduction = Reduction::kMean);

}  // namespace attend
