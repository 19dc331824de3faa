#!/usr/bin/env bash
# libFuzzer targets of the readers of untrusted input (fuzz/fuzz_<name>.cc), built with clang-16,
# AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/ (CMake option ATTEND_FUZZ).
#
#   bash scripts/fuzz.sh TARGET SECONDS [libFuzzer flags]  fuzz one target (e.g. mo_catalog 600)
#   bash scripts/fuzz.sh --ci [SECONDS]                    CI: replay every seed corpus, then fuzz
#                                                          each target FUZZ_CI_RUNS inputs (1000,
#                                                          seed 1), at most SECONDS (default 120)
#   bash scripts/fuzz.sh --list                            the targets
#   bash scripts/fuzz.sh --seeds                           rewrite fuzz/corpus/ (fuzz/make_seeds.sh)
#   bash scripts/fuzz.sh --build                           configure and build only
#
# Each target starts from fuzz/corpus/TARGET (the seeds in the repository, read only) and keeps
# what it finds in build-fuzz/corpus/TARGET; crashes, leaks, timeouts and out-of-memory inputs go
# to build-fuzz/artifacts/TARGET/ and make the run fail. Limits: -rss_limit_mb=2048 and
# -timeout=5 (seconds per input; FUZZ_TIMEOUT changes it). FUZZ_BUILD_DIR and JOBS override the
# build directory and the parallel compile jobs.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
JOBS="${JOBS:-$(nproc)}"
# Seconds one input may take (wall clock: raise it on a machine shared with heavy jobs).
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-5}"
FUZZ_FLAGS=(-rss_limit_mb=2048 -timeout="$FUZZ_TIMEOUT" -print_final_stats=1)
# The readers are single-threaded; the library's OpenMP pool would only add idle threads.
export OMP_NUM_THREADS=1
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# Symbolized stack traces in the reports (llvm-16 from scripts/setup.sh).
if [ -x /usr/lib/llvm-16/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer
fi

targets() {
  local f
  for f in fuzz/fuzz_*.cc; do
    f="${f#fuzz/fuzz_}"
    echo "${f%.cc}"
  done
}

build() {
  bash scripts/setup.sh
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    CC=clang-16 CXX=clang++-16 cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DATTEND_FUZZ=ON -DATTEND_BUILD_TESTS=OFF -DATTEND_BUILD_BENCH=OFF -DATTEND_BUILD_PYTHON=OFF -DATTEND_WITH_MPI=OFF
  fi
  cmake --build "$BUILD_DIR" -j"$JOBS" --target fuzz "$@"
}

# run TARGET SECONDS [flags]: fuzz from the seeds, keeping new inputs in the work corpus.
run() {
  local target="$1" seconds="$2"
  shift 2
  local work="${FUZZ_WORK:-$BUILD_DIR/corpus}/$target" artifacts="$BUILD_DIR/artifacts/$target"
  mkdir -p "$work" "$artifacts"
  local dict=()
  if [ -f "fuzz/dict/$target.dict" ]; then dict=(-dict="fuzz/dict/$target.dict"); fi
  "$BUILD_DIR/fuzz/fuzz_$target" "${FUZZ_FLAGS[@]}" "${dict[@]}" -max_total_time="$seconds" \
    -artifact_prefix="$artifacts/" "$@" "$work" "fuzz/corpus/$target"
}

# replay TARGET: every seed once (regressions: the inputs of past findings live there too).
replay() {
  local target="$1"
  "$BUILD_DIR/fuzz/fuzz_$target" "${FUZZ_FLAGS[@]}" -runs=0 "fuzz/corpus/$target"
}

case "${1:-}" in
  --list)
    targets
    ;;
  --build)
    build
    ;;
  --seeds)
    build --target make_fuzz_seeds
    bash fuzz/make_seeds.sh "$BUILD_DIR/fuzz/make_fuzz_seeds" fuzz/corpus
    ;;
  --ci)
    seconds="${2:-120}"
    start=$(date +%s)
    build
    # An empty work corpus: CI fuzzes from the repository's seeds alone, as on a fresh clone.
    export FUZZ_WORK="$BUILD_DIR/ci-corpus"
    rm -rf "$FUZZ_WORK"
    failed=()
    for t in $(targets); do
      echo "=== fuzz_$t: replaying fuzz/corpus/$t, then fuzzing ${seconds}s"
      # A fixed seed and a fixed number of inputs: the same inputs on every machine, so a CI
      # result does not depend on the machine's speed (SECONDS only bounds a slow machine).
      if ! replay "$t" 2>&1 | tail -n 3 ||
         ! run "$t" "$seconds" -seed=1 -runs="${FUZZ_CI_RUNS:-1000}" -close_fd_mask=1 2>&1 | tail -n 25; then
        failed+=("$t")
      fi
    done
    echo "fuzz --ci: $(( $(date +%s) - start ))s in all (build included)"
    if [ ${#failed[@]} -gt 0 ]; then
      echo "fuzz --ci: FAILED: ${failed[*]} (inputs under $BUILD_DIR/artifacts/)"
      exit 1
    fi
    echo "fuzz --ci: every target replayed its corpus and fuzzed ${seconds}s without a finding"
    ;;
  ""|-h|--help)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    echo "targets: $(targets | tr '\n' ' ')"
    ;;
  *)
    target="$1"
    seconds="${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags]}"
    shift 2
    if [ ! -f "fuzz/fuzz_$target.cc" ]; then
      echo "fuzz: no target '$target' (targets: $(targets | tr '\n' ' '))" >&2
      exit 2
    fi
    build
    run "$target" "$seconds" "$@"
    ;;
esac
