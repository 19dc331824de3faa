// One training step of a catalogue system (docs/tasks.md), timed beside the same step of its
// PyTorch mirror (bench/torch_tasks/NAME.py) by bench/tasks_compare.py. A step is what the one
// trainer does per batch, less clipping and logging: zero the gradients, forward, loss,
// backward, one Adam update. The batch is fixed and synthetic with the shapes of the system's
// bench/NAME.sh run: the cost of a step depends on the shapes, not on the values.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>

#include "attend/nn.h"
#include "attend/optim.h"
#include "attend/tensor.h"

namespace attend::bench {

// Runs the benchmark loop over `loss` (a closure that builds the batch's loss from `model`) and
// reports items/s and the parameter count, the items being what the system's trainer counts
// (images, scenes, pairs...).
inline void TimeTrainingSteps(benchmark::State& state, nn::Module& model,
                              const std::function<Tensor()>& loss, int64_t items_per_step) {
  optim::Adam adam(model.Parameters(), optim::AdamOptions{.lr = 1e-3});
  for (auto _ : state) {
    adam.ZeroGrad();
    Tensor l = loss();
    l.Backward();
    adam.Step();
  }
  state.counters["items/s"] = benchmark::Counter(
      static_cast<double>(items_per_step) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  // The driver checks that both sides train the same number of parameters.
  int64_t params = 0;
  for (const Tensor& p : model.Parameters()) params += p.numel();
  state.counters["params"] = static_cast<double>(params);
}

}  // namespace attend::bench
