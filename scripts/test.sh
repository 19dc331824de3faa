#!/usr/bin/env bash
# The project's tests, as CI runs them (.ci/run):
#   1. set-up, Release build, every test with ctest (C++ tests and the PyTorch oracle);
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (scripts/sanitize.sh,
#      clang-16, build-asan/, which builds the libFuzzer targets too);
#   3. the libFuzzer targets of that build (scripts/fuzz.sh --ci): every seed corpus replayed,
#      then 1,000 inputs per target from a fixed seed (the same on every machine).
# SKIP_SANITIZE=1 and SKIP_FUZZ=1 leave out stages 2 and 3 (a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build}"
JOBS="${JOBS:-$(nproc)}"
stage() { echo "== test.sh: $1 ($(date -u +%H:%M:%S), ${SECONDS}s so far)"; }

stage "release build and tests"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DATTEND_BUILD_BENCH=ON
cmake --build "$BUILD_DIR" -j"$JOBS"
(cd "$BUILD_DIR" && ctest --output-on-failure -j"$JOBS" --timeout 600)

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  stage "sanitizers: every test under ASan + UBSan"
  JOBS="$JOBS" bash scripts/sanitize.sh
fi
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  stage "fuzzing: replay the seed corpora, fuzz each target"
  # The sanitizer build has the fuzz targets; without it fuzz.sh builds its own (build-fuzz/).
  if [ "${SKIP_SANITIZE:-0}" != 1 ]; then export FUZZ_BUILD_DIR=build-asan; fi
  JOBS="$JOBS" bash scripts/fuzz.sh --ci
fi
stage "all passed"
