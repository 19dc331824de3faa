// The machine's f32 FMA peak, measured in the run that uses it: independent FMA chains held in
// registers (no loads, no stores), on AVX-512 when the CPU has it, else AVX2. Shared by
// bench_attention (its fma_peak/threads:N cases), bench_nmt (MFU of a training step) and
// bench_flops (the peak that bench/translation_compare.sh divides by).
#pragma once

#include <cstdint>

namespace attend::bench {

// One thread's FMA loop: `iters` rounds of independent FMAs; returns the FLOPs done (2 per lane
// per FMA).
double FmaLoop(int64_t iters);

// Runs FmaLoop(iters) on `threads` OpenMP threads at once; returns the FLOPs of all threads.
double FmaLoopThreads(int threads, int64_t iters);

// Peak GFLOP/s on `threads` threads: the best of `rounds` timed rounds of about `seconds` each
// (the best, since a shared machine only ever slows a round down).
double MeasureFmaPeakGflops(int threads, double seconds = 0.05, int rounds = 5);

}  // namespace attend::bench
