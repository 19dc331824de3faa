#!/usr/bin/env bash
# Checks that every C++ file of the repository follows .clang-format (clang-format-16, from
# scripts/setup.sh); prints the files that do not and exits 1.
#   bash scripts/check_format.sh          # check (CI)
#   bash scripts/check_format.sh --fix    # rewrite the files in place
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT="${CLANG_FORMAT:-clang-format-16}"
command -v "$CLANG_FORMAT" > /dev/null || { echo "check_format: $CLANG_FORMAT not found (bash scripts/setup.sh installs it)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = --fix ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  echo "check_format: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --dry-run --Werror "$f" > /dev/null 2>&1; then bad+=("$f"); fi
done
if [ ${#bad[@]} -gt 0 ]; then
  printf '  %s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (fix: bash scripts/check_format.sh --fix)"
  exit 1
fi
echo "check_format: ${#files[@]} files follow .clang-format"
