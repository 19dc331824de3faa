// SENet's training step (bench/senet.sh's model and batch: channels 32,64,128, r = 4, batch 64
// of 28 x 28 images), with and without the SE blocks.
#include "attend/ops.h"
#include "attend/tasks/senet.h"
#include "tasks/step.h"

namespace {

using namespace attend;

void BM_TaskStep_Senet(benchmark::State& state, bool se) {
  const int64_t batch = 64;
  tasks::SenetConfig config;
  config.channel_attention = se;
  Generator gen(1);
  tasks::SenetModel model(config, gen);
  const Tensor x = Tensor::Randn({batch, 1, 28, 28}, gen);
  std::vector<int64_t> labels(batch);
  for (int64_t i = 0; i < batch; ++i) labels[i] = i % 10;
  const Tensor y = Tensor::FromVector(labels, {batch});
  bench::TimeTrainingSteps(
      state, model, [&] { return CrossEntropy(model.Forward(x).logits, y); }, batch);
}

BENCHMARK_CAPTURE(BM_TaskStep_Senet, senet_se, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Senet, senet_none, false)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
