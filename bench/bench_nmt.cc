// End-to-end translation costs: one training step (forward, backward, Adam) and batched greedy
// and beam decoding, for the RNN with attention and the Transformer at the quickstart's sizes.
// The training step reports its FLOPs (bench/train_flops.h), the GFLOP/s reached, the FMA peak of
// the threads it ran on (measured in the same process, bench/fma_peak.h) and their ratio, MFU.
// Threads: OMP_NUM_THREADS, read from the environment by attend's kernels and by OpenBLAS's
// OpenMP build (the benchmark does not change it); bench/training_mfu.sh runs it for 1 and 2.
#include <benchmark/benchmark.h>

#include <chrono>

#include "attend/attention.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "attend/optim.h"
#include "fma_peak.h"
#include "train_flops.h"

namespace {

using namespace attend;

models::ModelConfig Config(const std::string& arch) {
  models::ModelConfig c;
  c.arch = models::ParseEnum<models::Arch>(arch, "arch");
  c.src_vocab = c.tgt_vocab = 8000;
  c.dropout = 0.1;
  return c;
}

// Sentences of length 20 with ids drawn from the vocabulary.
std::vector<nmt::Example> Examples(int n, int len) {
  Generator g(1);
  std::vector<nmt::Example> ex(n);
  for (auto& e : ex) {
    for (int j = 0; j < len; ++j) {
      e.src.push_back(4 + static_cast<int64_t>(Generator::Bits(1, g.Reserve(1)) % 7990));
      e.tgt.push_back(4 + static_cast<int64_t>(Generator::Bits(1, g.Reserve(1)) % 7990));
    }
  }
  return ex;
}

void BM_TrainStep(benchmark::State& state, const std::string& arch) {
  const int batch = static_cast<int>(state.range(0)), len = 20;
  const int threads = GetNumThreads();
  // The FMA peak of the threads used: one core's (best of 5 rounds of 50 ms, measured here, just
  // before the steps, so that it sees the machine as they do) times the threads.
  const double peak = bench::MeasureFmaPeakGflops(1) * threads;
  Generator gen(1);
  const models::ModelConfig config = Config(arch);
  auto model = models::MakeModel(config, gen);
  optim::Adam adam(model->Parameters(), optim::AdamOptions{.lr = 1e-4});
  auto ex = Examples(batch, len);
  std::vector<int64_t> order(batch);
  for (int i = 0; i < batch; ++i) order[i] = i;
  models::Batch b = nmt::MakeBatch(ex, order);
  auto step = [&] {
    // As the trainer: the logits let go before backward (the loss's gradient takes their memory).
    Tensor loss = CrossEntropy(model->Forward(b).View({-1, 8000}), b.tgt_out.View({-1}), 0, 0.1);
    loss.Backward();
    adam.Step();
    adam.ZeroGrad();
  };
  // One step before the clock starts (training's steady state: Adam's moments exist, the
  // tensor buffer cache holds what a step uses), then the timed steps.
  step();
  const uint64_t allocs_before = GetAllocatorStats().system_allocs;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto iters = static_cast<double>(state.iterations());
  // Buffers the timed steps still took from the system (each a fresh, page-faulting block).
  state.counters["system_allocs/step"] =
      static_cast<double>(GetAllocatorStats().system_allocs - allocs_before) / iters;
  const double flops = bench::TrainStepFlops(config, bench::ShapeOf(b)).total();
  state.counters["tgt_tok/s"] =
      benchmark::Counter(static_cast<double>(b.tgt_tokens) * iters, benchmark::Counter::kIsRate);
  state.counters["omp_threads"] = threads;
  state.counters["FLOP/step"] = flops;
  const double achieved = flops * iters / seconds * 1e-9;  // GFLOP/s over the timed steps
  state.counters["GFLOP/s"] = achieved;
  state.counters["peak_GFLOP/s"] = peak;
  state.counters["MFU"] = achieved / peak;
}

void BM_Translate(benchmark::State& state, const std::string& arch) {
  const int n = 32, len = 20;
  Generator gen(1);
  auto model = models::MakeModel(Config(arch), gen);
  auto ex = Examples(n, len);
  std::vector<std::vector<int64_t>> sources;
  for (auto& e : ex) sources.push_back(e.src);
  nmt::SearchOptions o;
  o.beam = state.range(0);
  // range(1) = 0 runs the compositions instead of the fused kernels (attend translate --no-fused).
  attention::SetFusedKernels(state.range(1) != 0);
  // An untrained model rarely ends early: cap the output at the source length.
  o.max_len_ratio = 1.0;
  o.max_len_extra = 1;
  for (auto _ : state) benchmark::DoNotOptimize(nmt::Translate(*model, sources, o));
  attention::SetFusedKernels(true);
  state.counters["sent/s"] =
      benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_TrainStep, rnn_attention, std::string("rnn-attention"))
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, transformer, std::string("transformer"))
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Args: beam, fused (1) or composed (0).
BENCHMARK_CAPTURE(BM_Translate, rnn_attention, std::string("rnn-attention"))
    ->ArgsProduct({{1, 4}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Translate, transformer, std::string("transformer"))
    ->ArgsProduct({{1, 4}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
