// Engine benchmarks: matmul (beside raw cblas_sgemm on the same shapes), softmax, layer norm,
// elementwise, reductions and one training step of a small MLP. Names match bench/torch_ops.py,
// so bench/compare.py can print each beside PyTorch. Also the checkpoints' CRC-32 (io::Crc32)
// beside its scalar twin and, where the benchmark links it, zlib's crc32.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdint>
#include <vector>

#include "attend/attend.h"
#include "attend/checkpoint.h"
#include "backend/cpu/reference/crc32.h"
#if ATTEND_BENCH_ZLIB
#include <zlib.h>
#endif

namespace {

using attend::Shape;
using attend::Tensor;

Tensor Rand(const Shape& s, uint64_t seed = 1) {
  attend::Generator g(seed);
  return Tensor::Randn(s, g);
}

// ---- CRC-32 of a checkpoint-sized buffer: io::Crc32 (carry-less folding where the CPU has it),
// the scalar twin (tables, 8 bytes a step) and zlib's crc32 on the same bytes ----
enum class Crc { kAttend, kTables, kZlib };
void BM_Crc32(benchmark::State& st, int64_t bytes, Crc which) {
  std::vector<uint8_t> data(static_cast<size_t>(bytes));
  uint64_t x = 88172645463325252ull;  // xorshift64: any bytes will do, but not all zero
  for (auto& b : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = static_cast<uint8_t>(x >> 56);
  }
  for (auto _ : st) {
    uint32_t crc = 0;
    switch (which) {
      case Crc::kAttend: crc = attend::io::Crc32(data.data(), data.size()); break;
      case Crc::kTables: crc = attend::cpu::ref::Crc32(data.data(), data.size()); break;
      case Crc::kZlib:
#if ATTEND_BENCH_ZLIB
        crc = static_cast<uint32_t>(crc32(0L, data.data(), static_cast<uInt>(data.size())));
#endif
        break;
    }
    benchmark::DoNotOptimize(crc);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * bytes);
}

// ---- matmul: ours vs raw sgemm ----
void BM_Matmul(benchmark::State& st, int64_t m, int64_t k, int64_t n, bool trans_b) {
  Tensor a = Rand({m, k}), b = trans_b ? Rand({n, k}).T() : Rand({k, n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Matmul(a, b).raw_data());
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
// A linear layer's forward x W^T + b: the fused op (the bias where the GEMM's tiles start) or
// the composition Matmul then Add (a second pass over the output and a second tensor).
void BM_Linear(benchmark::State& st, int64_t m, int64_t k, int64_t n, bool fused) {
  Tensor x = Rand({m, k}), w = Rand({n, k}, 2), b = Rand({n}, 3);
  for (auto _ : st) {
    Tensor y = fused ? attend::Linear(x, w, b) : attend::Add(attend::Matmul(x, w.T()), b);
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
void BM_Sgemm(benchmark::State& st, int64_t m, int64_t k, int64_t n, bool trans_b) {
  Tensor a = Rand({m, k}), b = Rand(trans_b ? Shape{n, k} : Shape{k, n});
  Tensor c = Tensor::Empty({m, n});
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                a.data<float>(), k, b.data<float>(), trans_b ? k : n, 0.0f, c.data<float>(), n);
    benchmark::DoNotOptimize(c.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
void BM_BatchedMatmul(benchmark::State& st, int64_t b, int64_t m, int64_t k, int64_t n) {
  Tensor x = Rand({b, m, k}), y = Rand({b, n, k}).Transpose(1, 2);
  for (auto _ : st) benchmark::DoNotOptimize(attend::Matmul(x, y).raw_data());
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * b * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}
void BM_BatchedSgemm(benchmark::State& st, int64_t b, int64_t m, int64_t k, int64_t n) {
  Tensor x = Rand({b, m, k}), y = Rand({b, n, k}), c = Tensor::Empty({b, m, n});
  for (auto _ : st) {
    for (int64_t i = 0; i < b; ++i)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f,
                  x.data<float>() + i * m * k, k, y.data<float>() + i * n * k, k, 0.0f,
                  c.data<float>() + i * m * n, n);
    benchmark::DoNotOptimize(c.raw_data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * b * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// ---- softmax / layer norm ----
void BM_Softmax(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor x = Rand({rows, n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Softmax(x, -1).raw_data());
}
void BM_SoftmaxBackward(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor x = Rand({rows, n}).set_requires_grad(true);
  Tensor g = Rand({rows, n}, 2);
  for (auto _ : st) {
    Tensor y = attend::Softmax(x, -1);
    y.Backward(g);
    benchmark::DoNotOptimize(x.grad().raw_data());
    x.ZeroGrad();
  }
}
void BM_LayerNorm(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor x = Rand({rows, n}), w = Rand({n}, 2), b = Rand({n}, 3);
  for (auto _ : st) benchmark::DoNotOptimize(attend::LayerNorm(x, 1, w, b).raw_data());
}
void BM_LayerNormBackward(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor x = Rand({rows, n}).set_requires_grad(true);
  Tensor w = Rand({n}, 2).set_requires_grad(true), b = Rand({n}, 3).set_requires_grad(true);
  Tensor g = Rand({rows, n}, 4);
  for (auto _ : st) {
    attend::LayerNorm(x, 1, w, b).Backward(g);
    benchmark::DoNotOptimize(x.grad().raw_data());
    x.ZeroGrad();
    w.ZeroGrad();
    b.ZeroGrad();
  }
}

// ---- elementwise and reductions ----
void BM_Add(benchmark::State& st, int64_t n) {
  Tensor a = Rand({n}), b = Rand({n}, 2);
  for (auto _ : st) benchmark::DoNotOptimize(attend::Add(a, b).raw_data());
  st.SetBytesProcessed(st.iterations() * n * 12);
}
void BM_MulBroadcast(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor a = Rand({rows, n}), b = Rand({n}, 2);
  for (auto _ : st) benchmark::DoNotOptimize(attend::Mul(a, b).raw_data());
}
void BM_Gelu(benchmark::State& st, int64_t n) {
  Tensor a = Rand({n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Gelu(a).raw_data());
}
// Training-mode dropout (p 0.1): the mask's counter-based draws, the kept values' scale and the
// product, as every Transformer sublayer runs it.
void BM_Dropout(benchmark::State& st, int64_t n) {
  Tensor a = Rand({n});
  attend::Generator gen(7);
  for (auto _ : st) benchmark::DoNotOptimize(attend::Dropout(a, 0.1, true, gen).raw_data());
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * n * 4);
}
void BM_Exp(benchmark::State& st, int64_t n) {
  Tensor a = Rand({n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Exp(a).raw_data());
}
void BM_Tanh(benchmark::State& st, int64_t n) {
  Tensor a = Rand({n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Tanh(a).raw_data());
}
void BM_SumLastDim(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor a = Rand({rows, n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Sum(a, {-1}).raw_data());
}
void BM_SumFirstDim(benchmark::State& st, int64_t rows, int64_t n) {
  Tensor a = Rand({rows, n});
  for (auto _ : st) benchmark::DoNotOptimize(attend::Sum(a, {0}).raw_data());
}
// Concatenation along dim 0 of `parts` pieces of [rows, n]: a weight's deferred gradient terms
// laid end to end (the RNN decoder's 20 steps of 64 rows).
void BM_Concat(benchmark::State& st, int64_t parts, int64_t rows, int64_t n) {
  std::vector<Tensor> xs;
  for (int64_t i = 0; i < parts; ++i) xs.push_back(Rand({rows, n}, static_cast<uint64_t>(i + 1)));
  for (auto _ : st) benchmark::DoNotOptimize(attend::Concat(xs, 0).raw_data());
  st.SetBytesProcessed(st.iterations() * parts * rows * n * 4);
}

// ---- one training step of an MLP: forward, backward, SGD update ----
void BM_MlpStep(benchmark::State& st, int64_t batch, int64_t in, int64_t hidden, int64_t out) {
  attend::Generator gen(7);
  Tensor x = Tensor::Randn({batch, in}, gen);
  Tensor y = Tensor::Randint({batch}, 0, out, gen);
  Tensor w1 = (Tensor::Randn({in, hidden}, gen) * 0.05).set_requires_grad(true);
  Tensor b1 = Tensor::Zeros({hidden}).set_requires_grad(true);
  Tensor w2 = (Tensor::Randn({hidden, hidden}, gen) * 0.05).set_requires_grad(true);
  Tensor b2 = Tensor::Zeros({hidden}).set_requires_grad(true);
  Tensor w3 = (Tensor::Randn({hidden, out}, gen) * 0.05).set_requires_grad(true);
  Tensor b3 = Tensor::Zeros({out}).set_requires_grad(true);
  std::vector<Tensor*> params{&w1, &b1, &w2, &b2, &w3, &b3};
  for (auto _ : st) {
    Tensor h = attend::Gelu(attend::Matmul(x, w1) + b1);
    h = attend::LayerNorm(attend::Gelu(attend::Matmul(h, w2) + b2), 1);
    Tensor loss = attend::CrossEntropy(attend::Matmul(h, w3) + b3, y);
    loss.Backward();
    attend::NoGradGuard ng;
    for (Tensor* p : params) {
      p->CopyFrom(attend::Sub(*p, attend::MulScalar(p->grad(), 0.01)));
      p->ZeroGrad();
    }
    benchmark::DoNotOptimize(w1.raw_data());
  }
}

#define REG(name, fn, ...) \
  benchmark::RegisterBenchmark(name, fn, __VA_ARGS__)->UseRealTime()->Unit(benchmark::kMicrosecond)

int RegisterAll() {
  REG("matmul/256x256x256", BM_Matmul, 256, 256, 256, false);
  REG("sgemm/256x256x256", BM_Sgemm, 256, 256, 256, false);
  REG("matmul/1024x1024x1024", BM_Matmul, 1024, 1024, 1024, false);
  REG("sgemm/1024x1024x1024", BM_Sgemm, 1024, 1024, 1024, false);
  REG("matmul_bt/1024x1024x1024", BM_Matmul, 1024, 1024, 1024, true);
  REG("sgemm_bt/1024x1024x1024", BM_Sgemm, 1024, 1024, 1024, true);
  REG("matmul/4096x512x512", BM_Matmul, 4096, 512, 512, false);
  REG("sgemm/4096x512x512", BM_Sgemm, 4096, 512, 512, false);
  // The Transformer's training GEMMs (2048 tokens, d 256, ff 1024, vocabulary 8000): forward
  // x W^T and the input gradient dY W.
  REG("matmul_bt/2048x256x1024", BM_Matmul, 2048, 256, 1024, true);
  REG("sgemm_bt/2048x256x1024", BM_Sgemm, 2048, 256, 1024, true);
  REG("matmul/2048x1024x256", BM_Matmul, 2048, 1024, 256, false);
  REG("sgemm/2048x1024x256", BM_Sgemm, 2048, 1024, 256, false);
  REG("matmul_bt/2048x256x8000", BM_Matmul, 2048, 256, 8000, true);
  REG("sgemm_bt/2048x256x8000", BM_Sgemm, 2048, 256, 8000, true);
  REG("linear/2048x256x1024", BM_Linear, 2048, 256, 1024, true);
  REG("matmul_add/2048x256x1024", BM_Linear, 2048, 256, 1024, false);
  REG("linear/64x256x768", BM_Linear, 64, 256, 768, true);  // a decoder step's projection
  REG("matmul_add/64x256x768", BM_Linear, 64, 256, 768, false);
  REG("bmm_bt/32x128x64x128", BM_BatchedMatmul, 32, 128, 64, 128);
  REG("bsgemm_bt/32x128x64x128", BM_BatchedSgemm, 32, 128, 64, 128);
  REG("softmax/4096x1024", BM_Softmax, 4096, 1024);
  REG("softmax/16384x128", BM_Softmax, 16384, 128);
  REG("softmax_fwd_bwd/4096x1024", BM_SoftmaxBackward, 4096, 1024);
  REG("layer_norm/4096x1024", BM_LayerNorm, 4096, 1024);
  REG("layer_norm/16384x256", BM_LayerNorm, 16384, 256);
  REG("layer_norm_fwd_bwd/4096x1024", BM_LayerNormBackward, 4096, 1024);
  REG("add/4194304", BM_Add, 4194304);
  REG("add/65536", BM_Add, 65536);
  REG("mul_broadcast/4096x1024", BM_MulBroadcast, 4096, 1024);
  REG("gelu/4194304", BM_Gelu, 4194304);
  REG("exp/4194304", BM_Exp, 4194304);
  REG("dropout/327680", BM_Dropout, 327680);  // a Transformer sublayer's output: 1280 x 256
  REG("dropout/4194304", BM_Dropout, 4194304);
  REG("tanh/4194304", BM_Tanh, 4194304);
  REG("sum_last/4096x1024", BM_SumLastDim, 4096, 1024);
  REG("sum_first/4096x1024", BM_SumFirstDim, 4096, 1024);
  REG("concat/20x64x768", BM_Concat, 20, 64, 768);
  REG("concat/20x64x256", BM_Concat, 20, 64, 256);
  REG("mlp_step/256x512x1024x10", BM_MlpStep, 256, 512, 1024, 10);
  REG("mlp_step/32x128x256x10", BM_MlpStep, 32, 128, 256, 10);
  // 92 MiB: the size of the quickstart Transformer's checkpoint.
  REG("crc32/96468992", BM_Crc32, 96468992, Crc::kAttend);
  REG("crc32_tables/96468992", BM_Crc32, 96468992, Crc::kTables);
#if ATTEND_BENCH_ZLIB
  REG("crc32_zlib/96468992", BM_Crc32, 96468992, Crc::kZlib);
#endif
  return 0;
}
const int registered = RegisterAll();

}  // namespace

BENCHMARK_MAIN();
