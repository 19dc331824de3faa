// GAU's training step (bench/gau.sh's model and batch, the program's defaults): a batch of 16
// scenes, images [16, 1, 64, 64] with values uniform in [0, 1) and per-pixel labels [16, 64, 64]
// in 0..10; encoder 16-32-64-64, decoder width 32. gau_gau: the decoder with global attention
// upsample; gau_skip: the same decoder with plain skip connections. The loss is the task's mean
// per-pixel cross-entropy; the items are scenes.
#include "attend/ops.h"
#include "attend/tasks/gau.h"
#include "tasks/step.h"

namespace {

using namespace attend;

void BM_TaskStep_Gau(benchmark::State& state, bool gau) {
  const int64_t batch = 16, side = 64;
  tasks::GauConfig config;
  config.gau = gau;
  Generator gen(1);
  tasks::GauModel model(config, gen);
  const Tensor x = Tensor::Rand({batch, 1, side, side}, gen);
  const Tensor labels = Tensor::Randint({batch, side, side}, 0, tasks::kGauClasses, gen);
  bench::TimeTrainingSteps(
      state, model, [&] { return tasks::GauPixelLoss(model.Forward(x).logits, labels); }, batch);
}

BENCHMARK_CAPTURE(BM_TaskStep_Gau, gau_gau, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Gau, gau_skip, false)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
