#!/usr/bin/env bash
# Builds examples/consumer/ against attend the two ways a C++ user would, and runs it:
#   1. find_package(attend): `cmake --install` of an existing build (BUILD_DIR, default build)
#      into a prefix, then the consumer configured with CMAKE_PREFIX_PATH (engine and toolkit);
#   2. add_subdirectory: the consumer builds attend from this source tree itself, with attend's
#      defaults for a subproject (the engine alone: no toolkit, tests or tools). This second
#      build of the engine only has to prove the CMake side: Debug (-O0), which compiles fastest.
# Everything goes under BUILD_DIR/consumer/.
set -euo pipefail
trap 'echo "check_consumer: failed at line $LINENO: $BASH_COMMAND (logs: ${out:-}/)" >&2' ERR
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
JOBS="${JOBS:-$(nproc)}"
out="$BUILD_DIR/consumer"
rm -rf "$out"
mkdir -p "$out"

echo "== consumer: find_package(attend) from an installed prefix"
cmake --install "$BUILD_DIR" --prefix "$out/prefix" > "$out/install.log"
cmake -S examples/consumer -B "$out/find" -DCMAKE_PREFIX_PATH="$PWD/$out/prefix" \
      -DCMAKE_BUILD_TYPE=Release > "$out/find-configure.log"
cmake --build "$out/find" -j"$JOBS" > "$out/find-build.log"
"$out/find/consumer_engine"
"$out/find/consumer_mt"

echo "== consumer: add_subdirectory(attend) (the engine only)"
start=$SECONDS
cmake -S examples/consumer -B "$out/subdir" -DATTEND_SOURCE_DIR="$PWD" \
      -DCMAKE_BUILD_TYPE=Debug > "$out/subdir-configure.log"
cmake --build "$out/subdir" -j"$JOBS" > "$out/subdir-build.log"
"$out/subdir/consumer_engine"
if [ -e "$out/subdir/consumer_mt" ]; then
  echo "consumer: the toolkit was built as a subproject; it should default to OFF" >&2
  exit 1
fi
echo "consumer: both ways build and run (the subproject build took $((SECONDS - start)) s)"
