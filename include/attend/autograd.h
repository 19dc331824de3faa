// Reverse-mode automatic differentiation over a dynamic graph: grad mode and its scopes.
#pragma once

#include <vector>

#include "attend/tensor.h"

namespace attend {

// Whether ops record history on this thread.
class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool on);
};

// Inference scope: nothing inside records history (outputs never require grad).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Backward from several roots at once (each with its gradient, or a one-element root).
void Backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads = {},
              bool retain_graph = false);

// Gradients of `output` w.r.t. `inputs` without touching their .grad (retains the graph).
std::vector<Tensor> Grad(const Tensor& output, const std::vector<Tensor>& inputs,
                         const Tensor& grad_output = Tensor());

}  // namespace attend
