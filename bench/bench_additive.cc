// Additive (Bahdanau) attention scores: the fused op against this project's unfused composition,
// forward and forward + backward. Names match bench/additive_compare.py, which times PyTorch's
// composition of the same formula beside them.
//
// Shapes: additive[_unfused]_{fwd,fwd_bwd}/A{A}_B{B}_Tq{Tq}_Tk{Tk}; query_proj [B, Tq, A],
// key_proj [B, Tk, A], v [A] -> scores [B, Tq, Tk]. The counter Mpairs/s is million
// (query, key) pairs per second (all threads together).
#include <benchmark/benchmark.h>

#include <string>

#include "attend/additive_attention.h"
#include "attend/attend.h"

namespace {

using attend::Tensor;

// Work is a time step of the decoder (Tq = 1) or a teacher-forced sentence (Tq = 32).
void BM_Additive(benchmark::State& st, bool fused, bool backward, int64_t na, int64_t nb,
                 int64_t nq, int64_t nk) {
  attend::Generator gen(1);
  // Magnitudes of a trained model's projections: mostly in tanh's curved region.
  Tensor qp = attend::MulScalar(Tensor::Randn({nb, nq, na}, gen), 0.7).Detach();
  Tensor kp = attend::MulScalar(Tensor::Randn({nb, nk, na}, gen), 0.7).Detach();
  Tensor v = attend::MulScalar(Tensor::Randn({na}, gen), 0.1).Detach();
  Tensor g = Tensor::Randn({nb, nq, nk}, gen);
  if (backward) {
    qp.set_requires_grad(true);
    kp.set_requires_grad(true);
    v.set_requires_grad(true);
  }
  for (auto _ : st) {
    Tensor s = fused ? attend::attention::FusedAdditiveScores(qp, kp, v)
                     : attend::Matmul(attend::Tanh(attend::Add(qp.Unsqueeze(2), kp.Unsqueeze(1))),
                                      v);  // [B, Tq, Tk]
    if (backward) {
      s.Backward(g);
      benchmark::DoNotOptimize(qp.grad().raw_data());
      qp.ZeroGrad();
      kp.ZeroGrad();
      v.ZeroGrad();
    }
    benchmark::DoNotOptimize(s.raw_data());
  }
  st.counters["Mpairs/s"] = benchmark::Counter(static_cast<double>(nb * nq * nk) * 1e-6,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void Register() {
  for (bool fused : {true, false}) {
    for (bool backward : {false, true}) {
      for (int64_t na : {128, 256}) {
        for (int64_t nb : {1, 32}) {
          for (int64_t nq : {1, 32}) {
            for (int64_t nk : {32, 128}) {
              const std::string name = std::string(fused ? "additive" : "additive_unfused") +
                                       (backward ? "_fwd_bwd" : "_fwd") + "/A" +
                                       std::to_string(na) + "_B" + std::to_string(nb) + "_Tq" +
                                       std::to_string(nq) + "_Tk" + std::to_string(nk);
              benchmark::RegisterBenchmark(name.c_str(), BM_Additive, fused, backward, na, nb, nq,
                                           nk)
                  ->Unit(benchmark::kMicrosecond)
                  ->UseRealTime();
            }
          }
        }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
