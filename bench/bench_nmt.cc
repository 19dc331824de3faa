// End-to-end translation costs: one training step (forward, backward, Adam) and batched greedy
// and beam decoding, for the RNN with attention and the Transformer at the quickstart's sizes.
#include <benchmark/benchmark.h>

#include "attend/attention.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/ops.h"
#include "attend/optim.h"

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
  Generator gen(1);
  auto model = models::MakeModel(Config(arch), gen);
  optim::Adam adam(model->Parameters(), optim::AdamOptions{.lr = 1e-4});
  auto ex = Examples(batch, len);
  std::vector<int64_t> order(batch);
  for (int i = 0; i < batch; ++i) order[i] = i;
  models::Batch b = nmt::MakeBatch(ex, order);
  for (auto _ : state) {
    Tensor logits = model->Forward(b);
    Tensor loss = CrossEntropy(logits.View({-1, 8000}), b.tgt_out.View({-1}), 0, 0.1);
    loss.Backward();
    adam.Step();
    adam.ZeroGrad();
  }
  state.counters["tgt_tok/s"] = benchmark::Counter(
      static_cast<double>(b.tgt_tokens) * state.iterations(), benchmark::Counter::kIsRate);
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
