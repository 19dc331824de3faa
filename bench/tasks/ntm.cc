// The Neural Turing Machine's training step on the copy task (bench/ntm.sh's models: memory
// 128 x 20, LSTM controller 100, one read and one write head; the baseline an LSTM with about as
// many parameters, tasks::MatchedLstmHidden; batch 16). Training lengths are 1..20; the batch is
// 16 sequences of length 20, the longest, so input [16, 41, 9] (8 random bits and the delimiter
// channel), targets [16, 41, 8] and mask [16, 41, 1] over the 20 output steps. The loss is
// CopyLoss (binary cross-entropy over the masked bits); the items are output bits, 16 x 20 x 8.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attend/tasks/ntm.h"
#include "tasks/step.h"

namespace {

using namespace attend;

void BM_TaskStep_Ntm(benchmark::State& state, const std::string& controller) {
  const int64_t batch = 16, length = 20;
  tasks::NtmConfig config;
  config.controller = controller;
  std::shared_ptr<tasks::CopyModel> model = tasks::MakeCopyModel(config);
  tasks::CopySet set;
  std::mt19937_64 draw(1);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < batch; ++i) {
    std::vector<uint8_t> bits(static_cast<size_t>(length * tasks::kCopyBits));
    for (uint8_t& b : bits) b = static_cast<uint8_t>(draw() % 2);
    set.lengths.push_back(length);
    set.bits.push_back(bits);
    rows.push_back(i);
  }
  const tasks::CopyBatch copy = tasks::MakeCopyBatch(set, rows);
  bench::TimeTrainingSteps(
      state, *model, [&] { return tasks::CopyLoss(model->Forward(copy.input), copy); },
      batch * length * tasks::kCopyBits);
}

BENCHMARK_CAPTURE(BM_TaskStep_Ntm, ntm_ntm, "ntm")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Ntm, ntm_lstm, "lstm")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
