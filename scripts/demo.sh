#!/usr/bin/env bash
# The toolkit's main job until the translation toolkit lands: set up, build, and train a small
# attention model, printing its loss as it falls.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j"$(nproc)" --target attend_demo
"$BUILD_DIR/attend_demo" "${1:-200}"
