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
  python3 python3-torch python3-numpy   # the PyTorch oracle for the tests and benchmarks
  libsentencepiece-dev       # subword vocabularies (the translation toolkit)
  python3-sentencepiece      # the same vocabulary in bench/torch_reference/
  libcli11-dev               # the `attend` command line
  libstb-dev fonts-dejavu-core  # PNG heatmaps (stb_image_write, stb_truetype) and their font
  gettext                    # msgfmt: the .mo fixtures of the corpus tests
)

# The default parallel corpus (`attend corpus debian`, docs/cli.md) is read from the gettext
# catalogs under /usr/share/locale/<lang>/LC_MESSAGES. These packages carry German (and many
# other languages') catalogs; pinning them by name makes every fresh Debian 12 machine build the
# same corpus (docs/results.md has its counts). Chosen for many messages per MB and no
# dependencies; the first group is often present already, the second is installed for it.
CORPUS_PACKAGES=(
  iso-codes libc-l10n coreutils binutils-common git gnupg-l10n krb5-locales xkb-data
  libglib2.0-data libgtk-3-common libgtk2.0-common libgphoto2-l10n libexif12
  gcc-12-locales util-linux-locales e2fsprogs-l10n xfsprogs cryptsetup-bin libgpg-error-l10n
  gnumeric-common gnucash-common evolution-common evolution-data-server-common vlc-l10n
  pidgin-data hexchat-common filezilla-common lynx-common mc-data aptitude-common libsane-common
)
PACKAGES+=("${CORPUS_PACKAGES[@]}")

# The fuzz targets (scripts/fuzz.sh, CMake option ATTEND_FUZZ): clang 16 with libFuzzer and the
# sanitizer runtimes (libclang-rt), and LLVM's OpenMP runtime, which clang's -fopenmp links (g++
# uses its own libgomp). libomp-16-dev conflicts with Debian's default libomp-dev (LLVM 14),
# which nothing here needs, so only the former is listed.
FUZZ_PACKAGES=(clang-16 libclang-rt-16-dev libfuzzer-16-dev libomp-16-dev)
PACKAGES+=("${FUZZ_PACKAGES[@]}")

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
