// Graph nodes of reverse-mode autograd and the helper every op uses to record itself.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "attend/autograd.h"
#include "core/tensor_impl.h"

namespace attend {

// One recorded op with a single output. next[i] is where the gradient of input i goes (null when
// that input needs none).
class Node {
 public:
  explicit Node(const char* name) : name_(name) {}
  // Releases the graph below iteratively (engine.cc): letting `next` go member by member would
  // recurse once per node, and a chain of 10^5 ops overflows the stack.
  virtual ~Node();
  // Given the gradient of the output, returns one gradient per input (undefined = none).
  virtual std::vector<Tensor> Apply(const Tensor& grad_output) = 0;
  // Frees saved tensors once backward has run through this node.
  virtual void Release() { released_ = true; }
  bool released() const { return released_; }
  const char* name() const { return name_; }
  std::vector<std::shared_ptr<Node>> next;

 protected:
  const char* name_;
  bool released_ = false;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class FunctionNode : public Node {
 public:
  FunctionNode(const char* name, BackwardFn fn) : Node(name), fn_(std::move(fn)) {}
  std::vector<Tensor> Apply(const Tensor& grad_output) override { return fn_(grad_output); }
  void Release() override {
    Node::Release();
    fn_ = nullptr;  // drops the saved tensors the closure holds
  }

 private:
  BackwardFn fn_;
};

// Adds the incoming gradient into a leaf's .grad.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
      : Node("AccumulateGrad"), leaf_(leaf) {}
  std::vector<Tensor> Apply(const Tensor& grad_output) override;
  void Release() override {}  // a leaf's accumulator outlives every backward
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// a + b for two gradients of one tensor (same shape and dtype), which the backward pass sums.
// Declared here and defined by ops (src/ops/elementwise.cc, the Add op): autograd runs the
// graph, ops own the arithmetic. Includes point down; at link time core, autograd and ops are
// one unit (docs/design.md, "Layers").
Tensor SumGradients(const Tensor& a, const Tensor& b);
// into += g in place (a leaf's .grad, which nothing else aliases): the same sums as
// into.CopyFrom(SumGradients(into, g)) in one pass without a temporary. Defined by ops too.
void AccumulateGradient(Tensor& into, const Tensor& g);

// Inside a backward function: the engine's running sum of the gradients already delivered to
// input `input` of the node being run, when the function may add its own gradient for that input
// into it in place (only the engine holds the sum, and it is contiguous, of `shape` and `dtype`);
// the function then returns an undefined gradient for that input. Null otherwise: no gradient has
// arrived yet, or the sum cannot be written. A tensor that receives many gradients (a recurrent
// weight, one per time step; a fused projection, one per slice) is then summed by the ops that
// produce its gradients (a GEMM with beta = 1, an add into a slice) instead of by a temporary
// and one more pass over the sum.
Tensor* PendingGradient(size_t input, const Shape& shape, DType dtype);

// Inside a backward function: offers input `input`'s gradient as the product a^T b (a [K, M],
// b [K, N], of one dtype: the gradient [M, N]) of a thin product, K < kDeferredProductRows (a
// weight's gradient at one time step: K = the batch's rows). When more gradients are still to
// arrive for that input (the same weight at the other steps), the engine keeps the factors and,
// once the last gradient has arrived, adds all such terms to the input's sum as one product over
// their K rows laid end to end (AddGradientProducts): one GEMM of steps x rows instead of a
// rank-K update of the sum at every step, whose K = 64 products ran at 80-88 GFLOP/s against 105
// for the whole (docs/results.md, issue 20, twentieth pass). Returns true when it took them (the
// function then returns an undefined gradient for that input); false: the function computes the
// gradient as before.
inline constexpr int64_t kDeferredProductRows = 256;
bool DeferGradientProduct(size_t input, const Tensor& a, const Tensor& b);
// sum_i a[i]^T b[i] as one product over the a[i] and b[i] laid end to end along their rows:
// added into *into (contiguous, [M, N], the engine's writable sum) and undefined returned, or
// returned as a fresh tensor when `into` is null. The engine's end of DeferGradientProduct;
// defined by ops (src/ops/matmul.cc).
Tensor AddGradientProducts(const std::vector<Tensor>& a, const std::vector<Tensor>& b,
                           Tensor* into);

// Inside a backward function: whether the engine frees the node's saved tensors once the function
// returns (a backward that does not retain the graph). A function may then write its gradient
// over a saved tensor that nothing else holds (cross-entropy over its logits: the [tokens,
// vocabulary] gradient takes the logits' memory instead of a second buffer of that size).
bool SavedTensorsFreedAfterThis();

// The node a gradient for `t` should flow into: its grad_fn, its accumulator, or null.
std::shared_ptr<Node> GradientEdge(const Tensor& t);

bool AnyRequiresGrad(std::initializer_list<const Tensor*> inputs);

// Records `out` as produced by an op over `inputs` when grad mode is on and some input requires
// grad. The closure must capture saved tensors Detach()ed, so a node never owns its own output.
void RecordOp(const char* name, Tensor& out, std::initializer_list<const Tensor*> inputs,
              BackwardFn fn);
void RecordOp(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

}  // namespace attend
