#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the library, the `attend` command, the
# tests and the libFuzzer targets (clang-16, ATTEND_SANITIZE=ON and ATTEND_FUZZ=ON) in its own
# build directory, then every test under ctest.
#   bash scripts/sanitize.sh                       # every test
#   bash scripts/sanitize.sh -R 'Corpus|Metrics'   # extra arguments go to ctest
# Environment: BUILD_DIR (default build-asan), JOBS (default nproc).
#
# One build serves stages 2 and 3 of scripts/test.sh: the fuzz targets link the same
# instrumented libraries (FUZZ_BUILD_DIR=build-asan scripts/fuzz.sh --ci), so CI compiles the
# project twice (Release, and this), not three times. The libraries' objects carry libFuzzer's
# coverage hooks too; the tests, tools and server do not (no fuzzer reads them; a fifth of a test
# file's build). ctest runs two tests at a time with their OpenMP threads told not to spin
# (OMP_WAIT_POLICY=PASSIVE, CMakeLists.txt): clang's OpenMP runtime spins 200 ms by default
# (SimdKernels.Gemm: 25 -> 10.5 s in CI).
#
# Debug at -O1 -g1: -O0 compiles 3-7x faster but runs the tests that train and translate 20-40x
# slower (Search.LearnsToCopy...: 384 s against 9 s); -g1 (line tables) is all a sanitizer's
# stack trace needs and compiles a third faster than -g. Two kinds of file are compiled at -O0
# instead (CMakeLists.txt, tests/CMakeLists.txt): the command lines (tools/attend/, examples/tasks/:
# mostly CLI11's inline code, 22 s a file at -O1, 6.5 s at -O0) and the test files other than
# tests/support/ and tests/backend/ (22 -> 10 s). In CI on a 2-core VM the build went 826 -> 667 s
# and the tests 345 -> 436 s (an hour when the VM ran ~9 % slower; docs/results.md, issue 20's
# eighth pass): worth about a minute. Any sanitizer report fails its test:
# ASan stops at the first error, UBSan too (-fno-sanitize-recover), LeakSanitizer runs at exit.
# The one UBSan exception is Highway's, explained in fuzz/ubsan_ignorelist.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build-asan}"
JOBS="${JOBS:-$(nproc)}"
start=$SECONDS
if [ -f "$BUILD_DIR/CMakeCache.txt" ] &&
   ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++-16$' "$BUILD_DIR/CMakeCache.txt"; then
  echo "sanitize: $BUILD_DIR was configured with another compiler; starting it afresh"
  rm -rf "$BUILD_DIR"
fi
CC=clang-16 CXX=clang++-16 cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DATTEND_SANITIZE=ON -DATTEND_FUZZ=ON -DATTEND_WERROR=ON \
      -DATTEND_BUILD_TESTS=ON -DATTEND_BUILD_BENCH=OFF -DATTEND_BUILD_PYTHON=OFF -DATTEND_WITH_MPI=OFF
cmake --build "$BUILD_DIR" -j"$JOBS"
echo "sanitize: build took $((SECONDS - start)) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ -x /usr/lib/llvm-16/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer
fi
start=$SECONDS
cd "$BUILD_DIR"
status=0
ctest --output-on-failure -j"$JOBS" --timeout 900 "$@" || status=$?
echo "sanitize: tests took $((SECONDS - start)) s"
exit $status
