// The backward engine: dependency counting over the graph reachable from the roots, gradients
// summed per node, nodes released (saved tensors freed) unless the graph is retained.
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"

namespace attend {
namespace {
thread_local bool grad_mode_enabled = true;

// Gradient terms a^T b kept for one node (DeferGradientProduct), in the order they arrived.
struct Factors {
  std::vector<Tensor> a, b;
};

// The node whose backward function is running and the engine's running sums (PendingGradient),
// deferred products (DeferGradientProduct) and counts of the edges still to deliver a gradient.
struct Running {
  Node* node;
  std::unordered_map<Node*, Tensor>* sums;
  std::unordered_map<Node*, Factors>* deferred;
  const std::unordered_map<Node*, int>* deps;
  bool frees_saved;  // the node is released after its function (no retain_graph)
};
thread_local const Running* running = nullptr;

// Sets `running` for one backward function and restores it afterwards (also when it throws).
class RunningScope {
 public:
  explicit RunningScope(const Running* r) : prev_(running) { running = r; }
  ~RunningScope() { running = prev_; }
  RunningScope(const RunningScope&) = delete;
  RunningScope& operator=(const RunningScope&) = delete;

 private:
  const Running* prev_;
};
}  // namespace

bool GradMode::enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool on) { grad_mode_enabled = on; }

Node::~Node() {
  // A node whose last owner is this stack gives its edges to the stack before it dies, so its own
  // destructor finds `next` empty; a node someone else still holds is only unreferenced.
  std::vector<std::shared_ptr<Node>> stack = std::move(next);
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& e : n->next) stack.push_back(std::move(e));
      n->next.clear();
    }
  }
}

std::vector<Tensor> AccumulateGrad::Apply(const Tensor& grad_output) {
  auto leaf = leaf_.lock();
  if (!leaf) return {};
  if (!leaf->grad.defined()) {
    // Later accumulation is done in place, so .grad must not alias anything else: a gradient
    // nobody else holds (the engine's own buffer) is taken as it is, any other is copied.
    const auto& impl = grad_output.impl_ptr();
    const bool sole_owner = impl.use_count() == 1 && impl->storage.use_count() == 1 &&
                            grad_output.is_contiguous() && grad_output.shape() == leaf->shape &&
                            grad_output.dtype() == leaf->dtype;
    leaf->grad = sole_owner ? grad_output : grad_output.Clone();
  } else {
    Tensor& g = leaf->grad;
    ATTEND_ASSERT(g.shape() == grad_output.shape(), "grad shape ", g.shape().str(), " vs ",
                  grad_output.shape().str());
    AccumulateGradient(g, grad_output);
  }
  return {};
}

std::shared_ptr<Node> GradientEdge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->grad_accumulator)
    impl->grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
  return impl->grad_accumulator;
}

bool AnyRequiresGrad(std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

namespace {
// Whether a running sum may be written in place by a gradient of `shape` and `dtype`: the engine
// holds it alone (nothing else can see the change) and it is a plain contiguous tensor (not a view
// such as a broadcast, whose elements share memory).
bool WritableSum(const Tensor& sum, const Shape& shape, DType dtype) {
  return sum.defined() && sum.impl_ptr().use_count() == 1 && sum.impl()->storage.use_count() == 1 &&
         sum.is_contiguous() && sum.shape() == shape && sum.dtype() == dtype;
}
}  // namespace

Tensor* PendingGradient(size_t input, const Shape& shape, DType dtype) {
  if (!running || input >= running->node->next.size() || !running->node->next[input])
    return nullptr;
  auto it = running->sums->find(running->node->next[input].get());
  if (it == running->sums->end() || !WritableSum(it->second, shape, dtype)) return nullptr;
  return &it->second;
}

bool DeferGradientProduct(size_t input, const Tensor& a, const Tensor& b) {
  if (!running || input >= running->node->next.size() || !running->node->next[input]) return false;
  if (a.dim() != 2 || b.dim() != 2 || a.size(0) != b.size(0) || a.dtype() != b.dtype() ||
      a.size(0) >= kDeferredProductRows)
    return false;
  Node* target = running->node->next[input].get();
  auto it = running->deferred->find(target);
  if (it == running->deferred->end()) {
    // Only a term that others will join: this edge is still counted, so more than one edge left
    // means another gradient is on its way.
    auto d = running->deps->find(target);
    if (d == running->deps->end() || d->second <= 1) return false;
    it = running->deferred->emplace(target, Factors{}).first;
  } else {
    // Every term of one input is that input's gradient: [M, N] of its dtype.
    ATTEND_ASSERT(a.size(1) == it->second.a.front().size(1) &&
                      b.size(1) == it->second.b.front().size(1) &&
                      a.dtype() == it->second.a.front().dtype(),
                  "DeferGradientProduct: a term of another shape for the same input");
  }
  it->second.a.push_back(a.Contiguous());
  it->second.b.push_back(b.Contiguous());
  return true;
}

bool SavedTensorsFreedAfterThis() { return running && running->frees_saved; }

namespace {
// sum += g for the engine's running sum of a node's incoming gradients: in place when it may be
// written (WritableSum), else into a fresh tensor. A tensor many steps read (an RNN's encoder
// states, its attention keys) gets one pass per step, not a temporary and a copy.
void AddInto(Tensor& sum, const Tensor& g) {
  if (WritableSum(sum, g.shape(), g.dtype())) AccumulateGradient(sum, g);
  else sum = SumGradients(sum, g);
}

// A node's deferred terms, once its last gradient has arrived, added to its running sum: by the
// product's own GEMM when the sum may be written, else as a fresh product summed with it.
void AddDeferred(Tensor& sum, const Factors& f) {
  const Shape shape{f.a.front().size(1), f.b.front().size(1)};
  if (WritableSum(sum, shape, f.a.front().dtype())) {
    AddGradientProducts(f.a, f.b, &sum);
    return;
  }
  Tensor product = AddGradientProducts(f.a, f.b, nullptr);
  sum = sum.defined() ? SumGradients(sum, product) : product;
}

void Attach(const char* name, Tensor& out, std::vector<std::shared_ptr<Node>> edges,
            BackwardFn fn) {
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  node->next = std::move(edges);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}
}  // namespace

void RecordOp(const char* name, Tensor& out, std::initializer_list<const Tensor*> inputs,
              BackwardFn fn) {
  if (!GradMode::enabled() || !AnyRequiresGrad(inputs)) return;
  std::vector<std::shared_ptr<Node>> edges;
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(GradientEdge(*t));
  Attach(name, out, std::move(edges), std::move(fn));
}

void RecordOp(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!GradMode::enabled()) return;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return;
  std::vector<std::shared_ptr<Node>> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(GradientEdge(t));
  Attach(name, out, std::move(edges), std::move(fn));
}

namespace {

// Runs backward. With `captures`, gradients reaching those nodes are stored there instead of
// being accumulated into leaves (used by Grad()).
void RunBackward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                 bool retain_graph, std::unordered_map<Node*, Tensor>* captures) {
  ATTEND_CHECK(grads.empty() || grads.size() == roots.size(), "Backward: got ", roots.size(),
               " roots but ", grads.size(), " gradients");
  std::unordered_map<Node*, Tensor> buffers;
  std::vector<std::shared_ptr<Node>> root_nodes;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    ATTEND_CHECK(r.defined(), "Backward: the root tensor is undefined");
    ATTEND_CHECK(r.requires_grad(), "Backward: tensor ", r.str(),
                 " does not require grad and has no grad_fn");
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      ATTEND_CHECK(r.numel() == 1,
                   "Backward: a gradient can be created implicitly only for a "
                   "one-element output; got ",
                   r.str(), " (pass the gradient explicitly)");
      g = Tensor::Ones(r.shape(), r.dtype());
    } else {
      ATTEND_CHECK(g.shape() == r.shape(), "Backward: gradient shape ", g.shape().str(),
                   " does not match the output shape ", r.shape().str());
      ATTEND_CHECK(g.dtype() == r.dtype(), "Backward: gradient dtype ", DTypeName(g.dtype()),
                   " does not match the output dtype ", DTypeName(r.dtype()));
    }
    auto node = GradientEdge(r);
    auto it = buffers.find(node.get());
    if (it == buffers.end()) buffers.emplace(node.get(), g);
    else it->second = SumGradients(it->second, g);
    root_nodes.push_back(node);
  }

  // Count how many edges lead into each node of the reachable graph.
  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (auto& n : root_nodes)
    if (seen.insert(n.get()).second) stack.push_back(n.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    ATTEND_CHECK(!n->released(),
                 "Backward: trying to backward through the graph a second time "
                 "(op ",
                 n->name(),
                 "): its saved tensors were freed by the first backward; pass "
                 "retain_graph=true to the first call if you need to backward twice");
    for (auto& e : n->next) {
      if (!e) continue;
      deps[e.get()]++;
      if (seen.insert(e.get()).second) stack.push_back(e.get());
    }
  }

  // Products held back for a node until its last gradient has arrived (DeferGradientProduct).
  std::unordered_map<Node*, Factors> deferred;
  std::vector<Node*> ready;
  {
    std::unordered_set<Node*> pushed;
    for (auto& n : root_nodes)
      if (deps[n.get()] == 0 && pushed.insert(n.get()).second) ready.push_back(n.get());
  }
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    if (auto d = deferred.find(n); d != deferred.end()) {
      // Every gradient of n has arrived: its deferred terms as one product, added to the rest.
      AddDeferred(buffers[n], d->second);
      deferred.erase(d);
    }
    Tensor g = std::move(buffers[n]);
    buffers.erase(n);
    if (captures && captures->count(n)) {
      (*captures)[n] = g;
      if (dynamic_cast<AccumulateGrad*>(n)) continue;
    } else if (captures && dynamic_cast<AccumulateGrad*>(n)) {
      continue;  // Grad() never touches .grad
    }
    std::vector<Tensor> input_grads;
    {
      const Running r{n, &buffers, &deferred, &deps, !retain_graph};
      RunningScope scope(&r);
      input_grads = n->Apply(g);
    }
    if (!retain_graph) n->Release();
    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* e = n->next[i].get();
      if (!e) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        auto it = buffers.find(e);
        if (it == buffers.end()) buffers.emplace(e, std::move(input_grads[i]));
        else AddInto(it->second, input_grads[i]);
      }
      if (--deps[e] == 0) {
        if (buffers.count(e) || deferred.count(e)) ready.push_back(e);
        else {
          // No gradient arrived (every path gave none): still release it and its subgraph.
          std::vector<Node*> skip{e};
          while (!skip.empty()) {
            Node* s = skip.back();
            skip.pop_back();
            if (!retain_graph) s->Release();
            for (auto& ee : s->next)
              if (ee && --deps[ee.get()] == 0) {
                if (buffers.count(ee.get()) || deferred.count(ee.get())) ready.push_back(ee.get());
                else skip.push_back(ee.get());
              }
          }
        }
      }
    }
  }
}

}  // namespace

void Backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph) {
  NoGradGuard no_grad;  // gradients are computed without recording a new graph
  RunBackward(roots, grads, retain_graph, nullptr);
}

std::vector<Tensor> Grad(const Tensor& output, const std::vector<Tensor>& inputs,
                         const Tensor& grad_output) {
  NoGradGuard no_grad;
  std::unordered_map<Node*, Tensor> captures;
  std::vector<Node*> keys;
  for (const Tensor& t : inputs) {
    ATTEND_CHECK(t.requires_grad(), "Grad: input ", t.str(), " does not require grad");
    auto edge = GradientEdge(t);
    keys.push_back(edge.get());
    captures[edge.get()] = Tensor();
  }
  RunBackward({output}, {grad_output}, /*retain_graph=*/true, &captures);
  std::vector<Tensor> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = captures[keys[i]];
    result.push_back(g.defined() ? g : Tensor::Zeros(inputs[i].shape(), inputs[i].dtype()));
  }
  return result;
}

void Tensor::Backward(const Tensor& grad, bool retain_graph) const {
  attend::Backward({*this}, {grad}, retain_graph);
}

}  // namespace attend
