// The sentence-pair system's training step (bench/pairs.sh's models and batch: vocabulary 2,855
// words, the size the pinned packages' catalogs give; strings padded to 12 words, embeddings 50,
// 64 filters of width 3 or GRUs of 64 per direction, attention 32, classifier 64, MwAN's four
// attention functions; batch 32 pairs). Both strings of every synthetic pair have 4 words, the
// training split's mean (4.0 words for either side), padded to 12. Items are pairs, as the
// trainer counts them. Cases: ABCNN-1, -2, -3 and the siamese CNN without attention; MwAN and
// the siamese BiGRU without attention.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "attend/ops.h"
#include "attend/tasks/pairs.h"
#include "tasks/step.h"

namespace {

using namespace attend;

void BM_TaskStep_Pairs(benchmark::State& state, const std::string& name) {
  const int64_t batch = 32, max_len = 12, len = 4, vocab = 2855;
  tasks::PairsModelConfig config;
  config.model = name;
  config.vocab = vocab;
  config.max_len = max_len;
  Generator gen(1);
  const std::shared_ptr<tasks::PairModel> model = tasks::MakePairModel(config, gen);
  // Word ids from 1 (unknown) up in the first `len` positions, 0 (padding) after.
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> id(1, vocab - 1);
  std::vector<int64_t> a(batch * max_len, 0), b(batch * max_len, 0), labels(batch);
  for (int64_t i = 0; i < batch; ++i) {
    for (int64_t t = 0; t < len; ++t) {
      a[i * max_len + t] = id(rng);
      b[i * max_len + t] = id(rng);
    }
    labels[i] = i % 2;
  }
  tasks::PairBatch input;
  input.a = Tensor::FromVector(a, {batch, max_len});
  input.b = Tensor::FromVector(b, {batch, max_len});
  input.a_len = Tensor::FromVector(std::vector<int64_t>(batch, len), {batch});
  input.b_len = Tensor::FromVector(std::vector<int64_t>(batch, len), {batch});
  input.label = Tensor::FromVector(labels, {batch});
  bench::TimeTrainingSteps(
      state, *model, [&] { return CrossEntropy(model->Forward(input), input.label); }, batch);
}

BENCHMARK_CAPTURE(BM_TaskStep_Pairs, pairs_abcnn1, std::string("abcnn1"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Pairs, pairs_abcnn2, std::string("abcnn2"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Pairs, pairs_abcnn3, std::string("abcnn3"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Pairs, pairs_siamese, std::string("siamese"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Pairs, pairs_mwan, std::string("mwan"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TaskStep_Pairs, pairs_siamese_gru, std::string("siamese-gru"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
