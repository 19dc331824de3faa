// Sparse Attentive Backtracking's training step (bench/sab.sh's models: hidden 64, ktop 5,
// katt 10, ktrunc 10; batch 32), SAB against the LSTM trained with full and with truncated BPTT,
// on the run's two tasks:
//   copy    input [32, 121, 10] one-hot (10 symbols of 8, a gap of 100 blanks, the delimiter, 10
//           blanks), targets i64 [32 * 121], -1 except the last 10 steps; 8 classes
//   pixels  input [32, 196, 1] (a 14 x 14 image, one pixel per step), targets i64 [32 * 196], -1
//           except the last step; 10 classes
// The loss is the task's cross-entropy over the scored steps; the items are sequence steps
// (batch x steps), what the trainer counts.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "attend/ops.h"
#include "attend/tasks/sab.h"
#include "tasks/step.h"

namespace {

using namespace attend;

constexpr int64_t kBatch = 32;

void BM_TaskStep_Sab(benchmark::State& state, const std::string& task, const std::string& model) {
  tasks::SabConfig config;
  config.task = task;
  config.model = model;
  config.hidden = 64;
  config.ktop = 5;
  config.katt = 10;
  config.ktrunc = 10;
  std::vector<int64_t> rows(kBatch);
  for (int64_t i = 0; i < kBatch; ++i) rows[i] = i;
  std::mt19937_64 draw(1);
  tasks::SabBatch batch;
  int64_t inputs = 0;
  if (task == "copy") {
    tasks::SabCopyData data;
    data.gap = 100;
    for (int64_t i = 0; i < kBatch; ++i) {
      std::vector<uint8_t> symbols(tasks::kSabCopySymbols);
      for (uint8_t& s : symbols) s = static_cast<uint8_t>(draw() % tasks::kSabAlphabet);
      data.train.symbols.push_back(symbols);
    }
    batch = tasks::MakeSabCopyBatch(data, data.train, rows);
    inputs = tasks::kSabCopyInputs;
  } else {
    tasks::SabPixelData data;
    data.side = 14;
    std::normal_distribution<float> pixel;
    data.train.pixels.resize(static_cast<size_t>(kBatch * data.side * data.side));
    for (float& p : data.train.pixels) p = pixel(draw);
    for (int64_t i = 0; i < kBatch; ++i) data.train.labels.push_back(i % 10);
    batch = tasks::MakeSabPixelBatch(data, data.train, rows);
    inputs = 1;
  }
  Generator gen(1);
  tasks::SabModel net(config, inputs, batch.classes, gen);
  const int64_t steps = batch.input.size(1);
  bench::TimeTrainingSteps(
      state, net,
      [&] {
        return CrossEntropy(net.Forward(batch.input).Reshape({-1, batch.classes}), batch.target,
                            -1);
      },
      kBatch * steps);
}

BENCHMARK_CAPTURE(BM_TaskStep_Sab, sab_copy_sab, "copy", "sab")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Sab, sab_copy_full, "copy", "lstm-full")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Sab, sab_copy_truncated, "copy", "lstm-truncated")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Sab, sab_pixels_sab, "pixels", "sab")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Sab, sab_pixels_full, "pixels", "lstm-full")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Sab, sab_pixels_truncated, "pixels", "lstm-truncated")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
