// Scaled dot-product attention benchmarks: the fused kernels (forward, backward), the unfused
// composition, raw cblas_sgemm on the same two GEMMs, the machine's FMA peak, peak memory of
// the fused op at long sequences, and single-query decoding against a copy's memory bandwidth.
// bench/attention_compare.py runs them beside PyTorch; every case reports its FLOPs per iteration
// as the counter "flop".
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/attention.h"
#include "backend/cpu/attention_args.h"
#include "backend/cpu/simd/attention_kernels.h"
#include "fma_peak.h"

namespace {

using attend::Tensor;

// ---- FMA peak: independent FMA chains in registers (bench/fma_peak.cc) ---------------------

void BM_FmaPeak(benchmark::State& st, int threads) {
  const int64_t iters = 1 << 20;
  double flops = 0;
  for (auto _ : st) flops = attend::bench::FmaLoopThreads(threads, iters);
  st.counters["flop"] = flops;
}

// ---- attention -------------------------------------------------------------------------------

struct Shape4 {
  int64_t b, h, n, d;
  bool causal;
  double dropout = 0.0;  // on the weights, as in training
};

// Forward FLOPs of the two GEMMs (q k^T and p v), halved when causal; backward is 2.5x.
double ForwardFlops(const Shape4& s) {
  return 4.0 * s.b * s.h * s.n * s.n * s.d * (s.causal ? 0.5 : 1.0);
}

void BM_FusedForward(benchmark::State& st, Shape4 s) {
  attend::Generator gen(1);
  Tensor q = Tensor::Randn({s.b, s.h, s.n, s.d}, gen), k = Tensor::Randn({s.b, s.h, s.n, s.d}, gen),
         v = Tensor::Randn({s.b, s.h, s.n, s.d}, gen);
  attend::NoGradGuard no_grad;
  for (auto _ : st) {
    Tensor out = attend::attention::FusedScaledDotProductAttention(
        q, k, v, Tensor(), s.causal, s.dropout, s.dropout > 0.0, &gen);
    benchmark::DoNotOptimize(out.raw_data());
  }
  st.counters["flop"] = ForwardFlops(s);
}

// The backward kernel alone, from the forward's output and log-sum-exp.
void BM_FusedBackward(benchmark::State& st, Shape4 s) {
  attend::Generator gen(1);
  const int64_t rows = s.b * s.h * s.n;
  Tensor q = Tensor::Randn({rows, s.d}, gen), k = Tensor::Randn({rows, s.d}, gen),
         v = Tensor::Randn({rows, s.d}, gen), g = Tensor::Randn({rows, s.d}, gen);
  Tensor out = Tensor::Empty({rows, s.d}), lse = Tensor::Empty({rows});
  Tensor dq = Tensor::Empty({rows, s.d}), dk = Tensor::Empty({rows, s.d}),
         dv = Tensor::Empty({rows, s.d});
  attend::cpu::SdpaArgs a;
  a.batch = s.b, a.heads = s.h, a.tq = s.n, a.tk = s.n, a.d = s.d, a.dv = s.d;
  a.causal = s.causal;
  a.dropout = s.dropout;
  a.seed = 1;
  a.scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  for (int64_t* st3 : {a.q_stride, a.k_stride, a.v_stride}) {
    st3[0] = s.h * s.n * s.d;
    st3[1] = s.n * s.d;
    st3[2] = s.d;
  }
  attend::cpu::simd::SdpaForward(a, q.data<float>(), k.data<float>(), v.data<float>(),
                                 out.data<float>(), lse.data<float>());
  for (auto _ : st) {
    attend::cpu::simd::SdpaBackward(a, q.data<float>(), k.data<float>(), v.data<float>(),
                                    out.data<float>(), g.data<float>(), lse.data<float>(),
                                    dq.data<float>(), dk.data<float>(), dv.data<float>());
    benchmark::DoNotOptimize(dq.raw_data());
  }
  st.counters["flop"] = 2.5 * ForwardFlops(s);
}

// The composition in this project: Matmul, Softmax (masked), Matmul. backward = true times
// forward and backward together (the compare script subtracts the forward).
void BM_Unfused(benchmark::State& st, Shape4 s, bool backward) {
  attend::Generator gen(1);
  Tensor q = Tensor::Randn({s.b, s.h, s.n, s.d}, gen).set_requires_grad(backward),
         k = Tensor::Randn({s.b, s.h, s.n, s.d}, gen).set_requires_grad(backward),
         v = Tensor::Randn({s.b, s.h, s.n, s.d}, gen).set_requires_grad(backward);
  Tensor g = Tensor::Randn({s.b, s.h, s.n, s.d}, gen);
  for (auto _ : st) {
    Tensor out = attend::attention::ScaledDotProductAttention(q, k, v, Tensor(), s.causal).context;
    if (backward) out.Backward(g);
    benchmark::DoNotOptimize(out.raw_data());
  }
  st.counters["flop"] = (backward ? 3.5 : 1.0) * ForwardFlops(s);
}

// Raw cblas_sgemm on the same two GEMMs, head by head: S = q k^T [N, N], O = S v. The FLOPs are
// those of the non-causal problem (a GEMM cannot skip the masked half).
void BM_Sgemm(benchmark::State& st, Shape4 s) {
  s.causal = false;
  attend::Generator gen(1);
  Tensor q = Tensor::Randn({s.n, s.d}, gen), k = Tensor::Randn({s.n, s.d}, gen),
         v = Tensor::Randn({s.n, s.d}, gen);
  Tensor p = Tensor::Empty({s.n, s.n}), o = Tensor::Empty({s.n, s.d});
  for (auto _ : st) {
    for (int64_t bh = 0; bh < s.b * s.h; ++bh) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.n, s.n, s.d, 1.0f, q.data<float>(),
                  s.d, k.data<float>(), s.d, 0.0f, p.data<float>(), s.n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.n, s.d, s.n, 1.0f, p.data<float>(),
                  s.n, v.data<float>(), s.d, 0.0f, o.data<float>(), s.d);
    }
    benchmark::DoNotOptimize(o.raw_data());
  }
  st.counters["flop"] = ForwardFlops(s);
}

// ---- peak memory of the fused op, forward + backward -----------------------------------------

// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS; Linux's clear_refs "5".
void ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}
double ReadStatusKb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::string(key).size()));
  return 0.0;
}

// B = 1, heads H, length N, D = 64: tensor bytes at the allocator's peak and the process's peak
// RSS above its RSS before the step (both include q, k, v, the output and the gradients).
void BM_Memory(benchmark::State& st, int64_t h, int64_t n) {
  const int64_t d = 64;
  attend::EmptyCache();
  attend::Generator gen(1);
  double peak_alloc = 0, peak_rss = 0;
  for (auto _ : st) {
    Tensor q = Tensor::Randn({1, h, n, d}, gen).set_requires_grad(true),
           k = Tensor::Randn({1, h, n, d}, gen).set_requires_grad(true),
           v = Tensor::Randn({1, h, n, d}, gen).set_requires_grad(true);
    Tensor g = Tensor::Randn({1, h, n, d}, gen);
    attend::ResetPeakBytes();
    ResetPeakRss();
    const double rss0 = ReadStatusKb("VmRSS:");
    const double base = static_cast<double>(attend::GetAllocatorStats().bytes_in_use);
    Tensor out = attend::attention::FusedScaledDotProductAttention(q, k, v, Tensor(), true);
    out.Backward(g);
    peak_alloc = static_cast<double>(attend::GetAllocatorStats().peak_bytes_in_use) - base;
    peak_rss = (ReadStatusKb("VmHWM:") - rss0) * 1024.0;
  }
  st.counters["peak_alloc_bytes"] = peak_alloc;  // above q, k, v and g
  st.counters["peak_rss_bytes"] = peak_rss;
  st.counters["qkv_bytes"] = 3.0 * h * n * d * 4;
  st.counters["flop"] = 3.5 * 4.0 * h * n * n * d * 0.5;
}

// ---- single-query decoding against the memory's bandwidth -------------------------------------

// One decoding step's attention: q [B, H, 1, D] over k, v [B, H, S, D], larger together than the
// last-level cache, so that every step streams them from memory. "bytes" is what the kernel must
// read (k and v); bytes/s beside copy_bandwidth's is the share of the bandwidth it reaches.
void BM_Decode(benchmark::State& st, int64_t b, int64_t s) {
  const int64_t h = 8, d = 64;
  attend::Generator gen(1);
  Tensor q = Tensor::Randn({b, h, 1, d}, gen), k = Tensor::Randn({b, h, s, d}, gen),
         v = Tensor::Randn({b, h, s, d}, gen);
  attend::NoGradGuard no_grad;
  for (auto _ : st) {
    Tensor out = attend::attention::FusedScaledDotProductAttention(q, k, v);
    benchmark::DoNotOptimize(out.raw_data());
  }
  const double bytes = 2.0 * b * h * s * d * sizeof(float);
  st.counters["bytes"] = bytes;
  st.counters["bytes_per_second"] =
      benchmark::Counter(bytes * static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["flop"] = 4.0 * b * h * s * d;
}

// memcpy of `mib` MiB: bytes read + written per second (what a copy moves through memory).
void BM_CopyBandwidth(benchmark::State& st, int64_t mib) {
  const size_t n = static_cast<size_t>(mib) << 20;
  std::vector<char> src(n, 1), dst(n, 0);
  for (auto _ : st) {
    std::memcpy(dst.data(), src.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  st.counters["bytes"] = 2.0 * static_cast<double>(n);
  st.counters["bytes_per_second"] =
      benchmark::Counter(2.0 * static_cast<double>(n) * static_cast<double>(st.iterations()),
                         benchmark::Counter::kIsRate);
}

// A read-only stream of `mib` MiB (an integer sum the compiler vectorises): bytes read per
// second, the yardstick of a kernel that only reads.
void BM_ReadBandwidth(benchmark::State& st, int64_t mib) {
  const size_t n = (static_cast<size_t>(mib) << 20) / sizeof(uint64_t);
  std::vector<uint64_t> src(n, 1);
  for (auto _ : st) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) sum += src[i];
    benchmark::DoNotOptimize(sum);
  }
  const double bytes = static_cast<double>(n * sizeof(uint64_t));
  st.counters["bytes"] = bytes;
  st.counters["bytes_per_second"] =
      benchmark::Counter(bytes * static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

#define REG(name, ...)                                      \
  benchmark::RegisterBenchmark((name).c_str(), __VA_ARGS__) \
      ->UseRealTime()                                       \
      ->Unit(benchmark::kMicrosecond)

int RegisterAll() {
  // Names built by appending: GCC 12's -Wrestrict misfires on "literal" + std::string&&.
  for (int t : {1, 2})
    REG(std::string("fma_peak/threads:").append(std::to_string(t)), BM_FmaPeak, t);
  for (int64_t b : {1, 4})
    for (int64_t n : {128, 512, 1024, 4096})
      for (int64_t d : {64, 128}) {
        const std::string shape = std::string("B")
                                      .append(std::to_string(b))
                                      .append("_H8_N")
                                      .append(std::to_string(n))
                                      .append("_D")
                                      .append(std::to_string(d));
        // The composition's [B, H, N, N] tensors at B = 4, N = 4096 (2 GiB each, several alive
        // in backward) do not fit beside other work on the 23 GiB machine: skipped there.
        const bool unfused_fits = b * n < 4 * 4096;
        for (bool causal : {false, true}) {
          const std::string name = shape + (causal ? "_causal" : "");
          const Shape4 s{b, 8, n, d, causal};
          REG("fused_fwd/" + name, BM_FusedForward, s);
          REG("fused_bwd/" + name, BM_FusedBackward, s);
          if (unfused_fits) {
            REG("unfused_fwd/" + name, BM_Unfused, s, false);
            REG("unfused_fwdbwd/" + name, BM_Unfused, s, true);
          }
        }
        REG("sgemm/" + shape, BM_Sgemm, Shape4{b, 8, n, d, false});
        if (b == 1 && n == 1024 && d == 64) {  // training's dropout on the weights (p 0.1)
          const Shape4 s{b, 8, n, d, false, 0.1};
          REG("fused_fwd/" + shape + "_dropout", BM_FusedForward, s);
          REG("fused_bwd/" + shape + "_dropout", BM_FusedBackward, s);
        }
      }
  // Keys and values of 64 MiB (B 16, S 1024), 32 MiB in short rows (B 256, S 32: a beam's
  // cross-attention) and 1 GiB (B 256, S 1024: beyond any cache), beside a copy and a read of
  // 64 MiB and of 1 GiB (this machine's last-level cache holds part of 64 MiB).
  REG(std::string("decode/B16_H8_S1024_D64"), BM_Decode, 16, 1024);
  REG(std::string("decode/B256_H8_S32_D64"), BM_Decode, 256, 32);
  REG(std::string("decode/B256_H8_S1024_D64"), BM_Decode, 256, 1024);
  for (int64_t mib : {64, 1024}) {
    REG(std::string("copy_bandwidth/").append(std::to_string(mib)).append("MiB"), BM_CopyBandwidth,
        mib);
    REG(std::string("read_bandwidth/").append(std::to_string(mib)).append("MiB"), BM_ReadBandwidth,
        mib);
  }
  for (int64_t h : {1, 2, 4, 8})
    REG("memory/H" + std::to_string(h) + "_N16384", BM_Memory, h, 16384)->Iterations(1);
  for (int64_t n : {2048, 4096, 8192})
    REG("memory/H1_N" + std::to_string(n), BM_Memory, 1, n)->Iterations(1);
  return 0;
}
const int registered = RegisterAll();

}  // namespace

BENCHMARK_MAIN();
