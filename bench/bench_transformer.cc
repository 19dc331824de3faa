// Transformer decoding cost: one key/value-cached Step at target position 50 against what a
// decoder without a cache repeats at every step (the whole model over the 50-token prefix).
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "attend/attend.h"
#include "attend/models.h"

namespace {

using attend::Tensor;
using attend::models::Batch;
using attend::models::ModelConfig;
using attend::models::SpecialIds;

constexpr int64_t kSourceLen = 30, kTargetLen = 50, kVocab = 8000;

// The default Transformer (d_model 256, 4 heads, ff 1024, 3 layers) with a shared 8000-subword
// vocabulary, in eval mode.
std::shared_ptr<attend::models::Seq2Seq> MakeBenchModel() {
  ModelConfig c;
  c.arch = attend::models::Arch::kTransformer;
  c.src_vocab = c.tgt_vocab = kVocab;
  attend::Generator gen(1);
  auto model = attend::models::MakeModel(c, gen);
  model->Eval();
  return model;
}

// `rows` copies of one source sentence and one target prefix of `tgt_len` tokens (BOS first).
Batch MakeBenchBatch(int64_t rows, int64_t tgt_len) {
  attend::Generator gen(2);
  Batch b;
  b.src = Tensor::Randint({1, kSourceLen}, 4, kVocab, gen).Expand({rows, kSourceLen}).Contiguous();
  b.src_lengths = Tensor::Full({rows}, static_cast<double>(kSourceLen), attend::DType::kI64);
  std::vector<int64_t> t = Tensor::Randint({tgt_len}, 4, kVocab, gen).ToVector<int64_t>();
  t[0] = SpecialIds::kBos;
  b.tgt_in = Tensor::FromVector(t, {1, tgt_len}).Expand({rows, tgt_len}).Contiguous();
  return b;
}

// One cached Step at position kTargetLen - 1 (the 50th target token) for `rows` hypotheses; the
// encoder and the 49 steps before it run outside the timing.
void BM_CachedStepAt50(benchmark::State& st) {
  const int64_t rows = st.range(0);
  auto model = MakeBenchModel();
  Batch b = MakeBenchBatch(rows, kTargetLen);
  attend::NoGradGuard no_grad;
  for (auto _ : st) {
    st.PauseTiming();
    auto state = model->Start(b.src, b.src_lengths);
    for (int64_t pos = 0; pos + 1 < kTargetLen; ++pos)
      model->Step(*state, b.tgt_in.Select(1, pos).Contiguous());
    Tensor last = b.tgt_in.Select(1, kTargetLen - 1).Contiguous();
    st.ResumeTiming();
    benchmark::DoNotOptimize(model->Step(*state, last));
  }
}

// Without a cache, producing the 50th token means running the model over the 50-token prefix:
// Forward (encoder, decoder over every position, logits at every position).
void BM_RecomputePrefix50(benchmark::State& st) {
  const int64_t rows = st.range(0);
  auto model = MakeBenchModel();
  Batch b = MakeBenchBatch(rows, kTargetLen);
  attend::NoGradGuard no_grad;
  for (auto _ : st) benchmark::DoNotOptimize(model->Forward(b));
}

// The parts of that Forward a smarter cache-less decoder would not repeat, to subtract: the
// encoder with the cross-attention projections (Start) ...
void BM_Start(benchmark::State& st) {
  const int64_t rows = st.range(0);
  auto model = MakeBenchModel();
  Batch b = MakeBenchBatch(rows, 1);
  attend::NoGradGuard no_grad;
  for (auto _ : st) benchmark::DoNotOptimize(model->Start(b.src, b.src_lengths));
}

// ... and the output projection of the 49 positions before the last.
void BM_OutputProjection49(benchmark::State& st) {
  const int64_t rows = st.range(0);
  attend::Generator gen(3);
  Tensor y = Tensor::Randn({rows, kTargetLen - 1, 256}, gen);  // [N, 49, d_model]
  Tensor e = Tensor::Randn({kVocab, 256}, gen);                // [V, d_model]
  attend::NoGradGuard no_grad;
  for (auto _ : st) benchmark::DoNotOptimize(attend::Matmul(y, e.T()));
}

BENCHMARK(BM_CachedStepAt50)->Arg(1)->Arg(5)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RecomputePrefix50)->Arg(1)->Arg(5)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Start)->Arg(1)->Arg(5)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OutputProjection49)->Arg(1)->Arg(5)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
