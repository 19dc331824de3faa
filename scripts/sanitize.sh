#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build (ATTEND_SANITIZE=ON) of the library, the
# `attend` command and the tests, in its own build directory, then the tests under ctest.
# Debug with -O1: the sanitizers see every access, and the tests that train small models still
# finish. Any report fails its test (halt_on_error for both sanitizers).
#   bash scripts/sanitize.sh               # every test
#   bash scripts/sanitize.sh -R 'Corpus|Metrics'   # extra arguments go to ctest
# Environment: BUILD_DIR (default build-asan), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build-asan}"
JOBS="${JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
      -DATTEND_SANITIZE=ON -DATTEND_BUILD_BENCH=OFF
cmake --build "$BUILD_DIR" -j"$JOBS"

# detect_leaks=1 is the default on x86-64 Linux; spelled out because LeakSanitizer is part of
# what this build checks. UBSan prints a stack and stops at the first report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$BUILD_DIR"
ctest --output-on-failure -j"$JOBS" --timeout 900 "$@"
