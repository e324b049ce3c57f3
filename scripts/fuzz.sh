#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for a bounded time each.
# Usage: scripts/fuzz.sh [fuzztime]   (default 10s)
#
# A failing input is always a failure: go test writes it to
# testdata/fuzz/<target>/ and prints it. Go's fuzz coordinator can also exit
# non-zero with no input and no reason when -fuzztime ends while a worker is
# mid-run (golang/go#56238, worse on a loaded machine); such a run is retried
# once, and fails only if it happens again.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
fail=0

corpus() { { find "$1/testdata/fuzz/$2" -type f 2>/dev/null || true; } | sort; } # a target may have no corpus directory yet

while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  dir=./$(dirname "$file")
  for attempt in 1 2; do
    echo "== $dir $name ($fuzztime)$([ "$attempt" = 2 ] && echo ", retry")"
    before=$(corpus "$dir" "$name")
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir"; then
      break
    fi
    if [ "$(corpus "$dir" "$name")" != "$before" ] || [ "$attempt" = 2 ]; then
      echo "FAIL: $dir $name"; fail=1; break
    fi
    echo "fuzz: $name exited without a failing input (coordinator shutdown race); retrying once"
  done
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' ':!compat/' | sed -E 's/^([^:]+):[0-9]+:/\1:/')
exit $fail
