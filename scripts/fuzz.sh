#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for a bounded time each.
# Usage: scripts/fuzz.sh [fuzztime]   (default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
fail=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  dir=./$(dirname "$file")
  echo "== $dir $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir"; then
    echo "FAIL: $dir $name"; fail=1
  fi
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' ':!compat/' | sed -E 's/^([^:]+):[0-9]+:/\1:/')
exit $fail
