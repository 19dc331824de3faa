// The Perceiver's training step (bench/perceiver.sh's models and batch, the program's defaults):
// a batch of 32 Fashion-MNIST images, [32, 28, 28] with values uniform in [0, 1), and their
// labels [32]. perceiver_perceiver: 32 latents of width 64 cross-attending (1 head) to the 784
// pixels (value and 8 Fourier bands per axis), then 2 latent self-attention blocks of 4 heads,
// MLP ratio 2, one pass; perceiver_cnn: the baseline CNN of 32/64/128 channels. The loss is the
// task's cross-entropy of the logits; the items are images. The trainer asks for no attention
// weights, so the cross-attention takes the fused path where attend has one.
#include <memory>
#include <vector>

#include "attend/ops.h"
#include "attend/tasks/perceiver.h"
#include "tasks/step.h"

namespace {

using namespace attend;

void BM_TaskStep_Perceiver(benchmark::State& state, const char* model_name) {
  const int64_t batch = 32;
  tasks::PerceiverConfig config;
  config.model = model_name;
  Generator gen(1);
  std::shared_ptr<tasks::ImageModel> model = tasks::MakePerceiverTaskModel(config, gen);
  const Tensor images = Tensor::Rand({batch, config.image_size, config.image_size}, gen);
  std::vector<int64_t> labels(batch);
  for (int64_t i = 0; i < batch; ++i) labels[i] = i % config.classes;
  const Tensor y = Tensor::FromVector(labels, {batch});
  bench::TimeTrainingSteps(
      state, *model, [&] { return CrossEntropy(model->Logits(images), y); }, batch);
}

BENCHMARK_CAPTURE(BM_TaskStep_Perceiver, perceiver_perceiver, "perceiver")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Perceiver, perceiver_cnn, "cnn")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
