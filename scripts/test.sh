#!/usr/bin/env bash
# The project's tests, as CI runs them (.ci/run): first the include-direction and format checks
# (scripts/check_layers.py, scripts/check_format.sh), then
#   1. set-up, Release build, every test with ctest (C++ tests and the PyTorch oracle), and the
#      consumer project built against the installed library and as a subproject
#      (scripts/check_consumer.sh);
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

stage "layers and format: every include points down, every C++ file follows .clang-format"
python3 scripts/check_layers.py
bash scripts/check_format.sh

stage "release build and tests"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DATTEND_BUILD_BENCH=ON -DATTEND_WERROR=ON
cmake --build "$BUILD_DIR" -j"$JOBS"
(cd "$BUILD_DIR" && ctest --output-on-failure -j"$JOBS" --timeout 600)

stage "the library as a user's project sees it (examples/consumer/)"
BUILD_DIR="$BUILD_DIR" JOBS="$JOBS" bash scripts/check_consumer.sh

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
