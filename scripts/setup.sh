#!/usr/bin/env bash
# Installs every Debian package the project needs (idempotent; quick when all are present).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libopenblas-openmp-dev     # BLAS (CBLAS), the OpenMP build: one thread pool with our kernels
  libhwy-dev                 # Highway: portable SIMD
  nlohmann-json3-dev         # JSON (checkpoint headers and configs)
  libgtest-dev libgmock-dev googletest  # GoogleTest / GoogleMock
  libbenchmark-dev           # Google Benchmark
  libdnnl-dev                # oneDNN: bench_gemm's int8 / bf16 rows beside our decoding kernels
  python3 python3-torch python3-numpy   # the PyTorch oracle for the tests and benchmarks
  libsentencepiece-dev       # subword vocabularies (the translation toolkit)
  python3-sentencepiece      # the same vocabulary in bench/torch_reference/
  libcli11-dev               # the `attend` command line
  libstb-dev fonts-dejavu-core  # PNG heatmaps (stb_image_write, stb_truetype) and their font
  gettext                    # msgfmt: the .mo fixtures of the corpus tests
  libcpp-httplib-dev         # `attend serve`: the HTTP server
  libsndfile1-dev libsamplerate0-dev libfftw3-dev  # speech: WAV files, resampling, the FFT
  espeak-ng libespeak-ng-dev # the speech corpus's synthesiser (`attend corpus speech`)
  dataset-fashion-mnist zlib1g-dev  # images: the scenes corpus's items, its gzip'ed IDX files
  chromium chromium-driver python3-selenium  # the browser tests of the page (tests/web/)
  # The Python module (python/): pybind11, Python's headers, pytest, and what `pip install .`
  # uses offline (setuptools, venv); matplotlib for docs/python.md's heatmap.
  pybind11-dev python3-pybind11 python3-dev python3-pytest python3-setuptools python3-venv
  python3-pip python3-matplotlib
  # Data-parallel training under mpirun (`mpirun -np N attend train ...`).
  libopenmpi-dev openmpi-bin
  # The document classification corpus (examples/tasks/documents.cc): these packages' English
  # manual pages, pinned so that every machine builds the same corpus (most are already there).
  manpages manpages-dev man-db coreutils util-linux mount passwd login procps e2fsprogs dpkg apt
  debianutils findutils grep sed tar gzip bash
)

# The packages whose gettext catalogs make the default corpus (scripts/corpus_packages.sh).
source "$(dirname "${BASH_SOURCE[0]}")/corpus_packages.sh"
PACKAGES+=("${CORPUS_PACKAGES[@]}")

# The fuzz targets (scripts/fuzz.sh, CMake option ATTEND_FUZZ): clang 16 with libFuzzer and the
# sanitizer runtimes (libclang-rt), and LLVM's OpenMP runtime, which clang's -fopenmp links (g++
# uses its own libgomp), and llvm-16 for llvm-symbolizer (readable stack traces in the sanitizers'
# reports). libomp-16-dev conflicts with Debian's default libomp-dev (LLVM 14), which nothing
# here needs, so only the former is listed.
FUZZ_PACKAGES=(clang-16 libclang-rt-16-dev libfuzzer-16-dev libomp-16-dev llvm-16)
PACKAGES+=("${FUZZ_PACKAGES[@]}")
# The format check (scripts/check_format.sh, .clang-format).
PACKAGES+=(clang-format-16)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
