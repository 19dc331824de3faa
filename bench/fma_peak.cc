// The FMA peak loops (see fma_peak.h).
#include "fma_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace attend::bench {

namespace {

// kChains accumulators, each a chain of dependent FMAs: with more chains than FMA latency x FMA
// ports, the ports never wait. 24 zmm accumulators cover 4-cycle latency on 2+ ports.
constexpr int kChains = 24;

// Keeps `x` (and the loop that made it) from being optimised away.
void Keep(float x) { asm volatile("" : : "x"(x) : "memory"); }

__attribute__((target("avx512f"))) double FmaLoop512(int64_t iters) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1.0f + c * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  // Summed through memory: GCC 12 warns (-Wuninitialized, a false positive) inside its own
  // _mm512_reduce_add_ps.
  alignas(64) float lanes[16];
  float sum = 0.0f;
  for (int c = 0; c < kChains; ++c) {
    _mm512_store_ps(lanes, acc[c]);
    for (float x : lanes) sum += x;
  }
  Keep(sum);
  return 2.0 * 16 * kChains * static_cast<double>(iters);
}

__attribute__((target("avx2,fma"))) double FmaLoop256(int64_t iters) {
  __m256 acc[12];
  for (int c = 0; c < 12; ++c) acc[c] = _mm256_set1_ps(1.0f + c * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < 12; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  float lanes[8], sum = 0.0f;
  for (int c = 0; c < 12; ++c) {
    _mm256_storeu_ps(lanes, acc[c]);
    for (float x : lanes) sum += x;
  }
  Keep(sum);
  return 2.0 * 8 * 12 * static_cast<double>(iters);
}

}  // namespace

double FmaLoop(int64_t iters) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 ? FmaLoop512(iters) : FmaLoop256(iters);
}

double FmaLoopThreads(int threads, int64_t iters) {
  double flops = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops)
  flops += FmaLoop(iters);
  return flops;
}

double MeasureFmaPeakGflops(int threads, double seconds, int rounds) {
  using Clock = std::chrono::steady_clock;
  auto timed = [&](int64_t iters, double* flops) {
    const auto t0 = Clock::now();
    *flops = FmaLoopThreads(threads, iters);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  // Calibrate the round's length on a short run (which also wakes the threads up).
  double flops = 0;
  int64_t iters = 1 << 16;
  double t = timed(iters, &flops);
  while (t < seconds / 8) {
    iters *= 2;
    t = timed(iters, &flops);
  }
  iters = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iters) * seconds / t));
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    t = timed(iters, &flops);
    best = std::max(best, flops / t * 1e-9);
  }
  return best;
}

}  // namespace attend::bench
