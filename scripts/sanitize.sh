#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build (ATTEND_SANITIZE=ON) of the library, the
# `attend` command and the tests, in its own build directory, then every test under ctest.
#   bash scripts/sanitize.sh                       # every test
#   bash scripts/sanitize.sh -R 'Corpus|Metrics'   # extra arguments go to ctest
# Environment: BUILD_DIR (default build-asan), JOBS (default nproc).
#
# Debug at -O1 -g1: -O0 compiles 3-7x faster but runs the tests that train and translate 20-40x
# slower (Search.LearnsToCopy...: 384 s against 9 s); -g1 (line tables) is all a sanitizer's
# stack trace needs and compiles a third faster than -g. Any sanitizer report fails its test:
# ASan stops at the first error, UBSan too (halt_on_error), LeakSanitizer runs at exit. No
# suppressions are needed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build-asan}"
JOBS="${JOBS:-$(nproc)}"
start=$SECONDS
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
      -DATTEND_SANITIZE=ON -DATTEND_BUILD_BENCH=OFF
cmake --build "$BUILD_DIR" -j"$JOBS"
echo "sanitize: build took $((SECONDS - start)) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
start=$SECONDS
cd "$BUILD_DIR"
status=0
ctest --output-on-failure -j"$JOBS" --timeout 900 "$@" || status=$?
echo "sanitize: tests took $((SECONDS - start)) s"
exit $status
