// Recurrent-layer benchmarks: one training step (forward, loss, backward, Adam update) of GRU and
// LSTM encoders. Names and work match bench/torch_rnn.py, so bench/rnn_compare.py can print each
// beside PyTorch.
#include <benchmark/benchmark.h>

#include <functional>
#include <memory>
#include <vector>

#include "attend/attend.h"
#include "attend/nn.h"
#include "attend/nn/rnn.h"
#include "attend/optim.h"

namespace {

using attend::Shape;
using attend::Tensor;

// One training step of a `layers`-layer GRU or LSTM with input and hidden width `width` on a
// [batch, length, width] batch: loss = sum(output * w) for a fixed random w, backward, Adam.
// With `padded`, lengths are spread over [length/2, length] (the first at full length).
void BM_RnnStep(benchmark::State& st, bool lstm, int64_t layers, bool bidir, int64_t batch,
                int64_t length, int64_t width, bool padded) {
  attend::Generator gen(1);
  attend::nn::RnnOptions o;
  o.num_layers = layers;
  o.bidirectional = bidir;
  const int64_t nd = bidir ? 2 : 1;
  std::shared_ptr<attend::nn::RnnBase> model;
  std::function<Tensor(const Tensor&, const Tensor&)> forward;  // [B, T, in] -> [B, T, D*H]
  if (lstm) {
    auto m = std::make_shared<attend::nn::LSTM>(width, width, gen, o);
    forward = [m](const Tensor& x, const Tensor& len) { return m->Forward(x, len).output; };
    model = m;
  } else {
    auto m = std::make_shared<attend::nn::GRU>(width, width, gen, o);
    forward = [m](const Tensor& x, const Tensor& len) { return m->Forward(x, len).output; };
    model = m;
  }
  Tensor x = Tensor::Randn({batch, length, width}, gen);
  Tensor w = Tensor::Randn({batch, length, nd * width}, gen);
  Tensor lengths;
  if (padded) {
    lengths = Tensor::Randint({batch}, length / 2, length + 1, gen);
    std::vector<int64_t> v = lengths.ToVector<int64_t>();
    v[0] = length;
    lengths = Tensor::FromVector(v, Shape{batch});
  }
  attend::optim::AdamOptions ao;
  ao.lr = 1e-3;
  attend::optim::Adam opt(model->Parameters(), ao);
  uint64_t allocs_before = 0;
  int64_t iter = 0;
  for (auto _ : st) {
    if (iter++ == 1) allocs_before = attend::GetAllocatorStats().system_allocs;
    Tensor out = forward(x, lengths);
    Tensor loss = attend::Sum(attend::Mul(out, w));
    opt.ZeroGrad();
    loss.Backward();
    opt.Step();
    benchmark::DoNotOptimize(loss.raw_data());
  }
  // Buffers the caching allocator had to take from the system after the first step (0 when
  // steady-state steps reuse their buffers).
  st.counters["sys_allocs"] =
      static_cast<double>(attend::GetAllocatorStats().system_allocs - allocs_before);
  // FLOPs of the GEMMs per step of training: forward W_ih x and W_hh h; backward dW_ih, dW_hh,
  // the recurrent dh = dgates @ W_hh, and dx = dgates @ W_ih except for the first layer (its
  // input needs no gradient).
  const int64_t gates = lstm ? 4 : 3;
  double flops = 0;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t in = l == 0 ? width : nd * width;
    const double per_width = 2.0 * nd * batch * length * gates * width;
    flops += per_width * ((in + width) + (in + 2 * width) + (l > 0 ? in : 0));
  }
  st.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

#define REG(name, ...)                                        \
  benchmark::RegisterBenchmark(name, BM_RnnStep, __VA_ARGS__) \
      ->UseRealTime()                                         \
      ->Unit(benchmark::kMicrosecond)

int RegisterAll() {
  // The target: a 2-layer bidirectional LSTM encoder at 32 x 50 x 256.
  REG("lstm_step/2L_bi_32x50x256", true, 2, true, 32, 50, 256, false);
  REG("gru_step/2L_bi_32x50x256", false, 2, true, 32, 50, 256, false);
  REG("lstm_step_padded/2L_bi_32x50x256", true, 2, true, 32, 50, 256, true);
  REG("lstm_step/1L_uni_32x50x256", true, 1, false, 32, 50, 256, false);
  return 0;
}
const int registered = RegisterAll();

}  // namespace

BENCHMARK_MAIN();
