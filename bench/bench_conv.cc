// Convolution benchmarks: one training step of a small CNN (the headline), and each of its conv
// and pooling layers forward and forward+backward. Names match bench/torch_conv.py, so
// bench/conv_compare.py can print each beside PyTorch.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "attend/attend.h"
#include "attend/nn.h"
#include "attend/nn/conv.h"

namespace {

using attend::Shape;
using attend::Tensor;
namespace nn = attend::nn;

Tensor Rand(const Shape& s, uint64_t seed = 1) {
  attend::Generator g(seed);
  return Tensor::Randn(s, g);
}

// One layer: x [B, C, H, H] -> Conv2d(C -> O, 3x3, padding 1), bias included.
void BM_Conv2dForward(benchmark::State& st, int64_t b, int64_t c, int64_t h, int64_t o) {
  Tensor x = Rand({b, c, h, h}), w = Rand({o, c, 3, 3}, 2), bias = Rand({o}, 3);
  for (auto _ : st) benchmark::DoNotOptimize(attend::Conv2d(x, w, bias, 1, 1).raw_data());
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * b * h * h * o * c * 9, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// Forward and backward; the input needs a gradient except for the first layer (as in the step).
void BM_Conv2dForwardBackward(benchmark::State& st, int64_t b, int64_t c, int64_t h, int64_t o) {
  const bool input_grad = c != 3;
  Tensor x = Rand({b, c, h, h}).set_requires_grad(input_grad);
  Tensor w = Rand({o, c, 3, 3}, 2).set_requires_grad(true);
  Tensor bias = Rand({o}, 3).set_requires_grad(true);
  Tensor g = Rand({b, o, h, h}, 4);
  for (auto _ : st) {
    attend::Conv2d(x, w, bias, 1, 1).Backward(g);
    benchmark::DoNotOptimize(w.grad().raw_data());
    x.ZeroGrad();
    w.ZeroGrad();
    bias.ZeroGrad();
  }
  const double passes = input_grad ? 3.0 : 2.0;
  st.counters["GFLOP/s"] = benchmark::Counter(passes * 2.0 * b * h * h * o * c * 9,
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

void BM_MaxPoolForwardBackward(benchmark::State& st, int64_t b, int64_t c, int64_t h) {
  Tensor x = Rand({b, c, h, h}).set_requires_grad(true);
  Tensor g = Rand({b, c, h / 2, h / 2}, 2);
  for (auto _ : st) {
    attend::MaxPool2d(x, 2).Backward(g);
    benchmark::DoNotOptimize(x.grad().raw_data());
    x.ZeroGrad();
  }
}

// The CNN of the step: [B, 3, 32, 32] -> Conv(3->32) + ReLU -> MaxPool 2 -> Conv(32->64) + ReLU
// -> MaxPool 2 -> Conv(64->128) + ReLU -> GlobalAvgPool -> Linear(128->10), all 3x3 convs with
// padding 1; cross-entropy, backward, SGD update (p -= 0.01 * grad, as bench/torch_conv.py).
void BM_CnnStep(benchmark::State& st, int64_t batch) {
  attend::Generator gen(7);
  nn::Sequential net;
  auto relu = [](const Tensor& t) { return attend::Relu(t); };
  net.Add(std::make_shared<nn::Conv2dModule>(3, 32, 3, gen, nn::Conv2dOptions{.padding = 1}));
  net.AddFunction(relu);
  net.Add(std::make_shared<nn::MaxPool2dModule>(2));
  net.Add(std::make_shared<nn::Conv2dModule>(32, 64, 3, gen, nn::Conv2dOptions{.padding = 1}));
  net.AddFunction(relu);
  net.Add(std::make_shared<nn::MaxPool2dModule>(2));
  net.Add(std::make_shared<nn::Conv2dModule>(64, 128, 3, gen, nn::Conv2dOptions{.padding = 1}));
  net.AddFunction(relu);
  net.Add(std::make_shared<nn::GlobalAvgPoolModule>());
  net.Add(std::make_shared<nn::Linear>(128, 10, true, gen));
  Tensor x = Tensor::Randn({batch, 3, 32, 32}, gen);
  Tensor y = Tensor::Randint({batch}, 0, 10, gen);
  std::vector<Tensor> params = net.Parameters();
  for (auto _ : st) {
    Tensor loss = attend::CrossEntropy(net.Forward(x), y);
    loss.Backward();
    attend::NoGradGuard ng;
    for (Tensor& p : params) {
      p.CopyFrom(attend::Sub(p, attend::MulScalar(p.grad(), 0.01)));
      p.ZeroGrad();
    }
    benchmark::DoNotOptimize(params[0].raw_data());
  }
}

#define REG(name, fn, ...) \
  benchmark::RegisterBenchmark(name, fn, __VA_ARGS__)->UseRealTime()->Unit(benchmark::kMicrosecond)

int RegisterAll() {
  REG("cnn_step/32x3x32x32", BM_CnnStep, 32);
  REG("conv2d_fwd/32x3x32x32-32", BM_Conv2dForward, 32, 3, 32, 32);
  REG("conv2d_fwd/32x32x16x16-64", BM_Conv2dForward, 32, 32, 16, 64);
  REG("conv2d_fwd/32x64x8x8-128", BM_Conv2dForward, 32, 64, 8, 128);
  REG("conv2d_fwd_bwd/32x3x32x32-32", BM_Conv2dForwardBackward, 32, 3, 32, 32);
  REG("conv2d_fwd_bwd/32x32x16x16-64", BM_Conv2dForwardBackward, 32, 32, 16, 64);
  REG("conv2d_fwd_bwd/32x64x8x8-128", BM_Conv2dForwardBackward, 32, 64, 8, 128);
  REG("max_pool2d_fwd_bwd/32x32x32x32", BM_MaxPoolForwardBackward, 32, 32, 32);
  REG("max_pool2d_fwd_bwd/32x64x16x16", BM_MaxPoolForwardBackward, 32, 64, 16);
  return 0;
}
const int registered = RegisterAll();

}  // namespace

BENCHMARK_MAIN();
