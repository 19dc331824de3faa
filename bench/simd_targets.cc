// Linked into every benchmark: ATTEND_SIMD_TARGETS=avx2 runs the library's AVX2 kernels on a CPU
// that has better ones (every Highway target above AVX2 disabled before the first dispatch), so
// an AVX-512 machine can time the kernels a Zen 3 runs: a Zen 4 executes AVX-512 as two 256-bit
// halves on the same FMA pipes, so its FMA peak is the same for both (docs/results.md, issue 20,
// twenty-second pass). Unset or "best": the best target the CPU has. Every run records in Google
// Benchmark's context (the header and the JSON) the targets it allowed ("simd_targets") and the
// one the library's kernels run ("simd_kernels").
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/simd/elementwise_kernels.h"
#include "hwy/targets.h"

namespace {

// Highway's names of the targets in `mask`, best first.
std::string TargetNames(int64_t mask) {
  std::string names;
  for (int64_t t = mask; t != 0; t &= t - 1) {
    if (!names.empty()) names += ' ';
    names += hwy::TargetName(t & -t);
  }
  return names;
}

struct SimdTargets {
  SimdTargets() {
    int64_t allowed = hwy::SupportedTargets(), disabled = 0;
    const char* want = std::getenv("ATTEND_SIMD_TARGETS");
    if (want && *want && std::strcmp(want, "best") != 0) {
      if (std::strcmp(want, "avx2") != 0) {
        std::fprintf(stderr, "ATTEND_SIMD_TARGETS: unknown value '%s' (expected avx2 or best)\n",
                     want);
        std::exit(2);
      }
      if ((allowed & HWY_AVX2) == 0) {
        std::fprintf(stderr, "ATTEND_SIMD_TARGETS=avx2: this CPU has no AVX2\n");
        std::exit(2);
      }
      disabled = HWY_AVX2 - 1;  // every target better than AVX2
      allowed &= ~disabled;
    }
    benchmark::AddCustomContext("simd_targets", TargetNames(allowed));
    // Last: hwy::SupportedTargets() (Highway 1.0) arms the dispatch with every target it detects,
    // so a call to it after DisableTargets would undo the override; DisableTargets resets the
    // dispatch, which then picks from the allowed targets at its first call.
    if (disabled != 0) hwy::DisableTargets(disabled);
    // The target the library's kernels dispatch to (its first dispatch happens here).
    benchmark::AddCustomContext("simd_kernels", attend::cpu::simd::TargetName());
  }
};
const SimdTargets simd_targets;

}  // namespace
