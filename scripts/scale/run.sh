#!/usr/bin/env bash
# Runs the scale sweeps of docs/scale.md with cmd/distrosim and writes one
# JSON report per run into docs/scale-results/ (and the SVG charts into
# docs/img/scale/). Runs are sequential; the largest (100 nodes) takes about
# ten minutes of one core. Usage: scripts/scale/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/scale-results
mkdir -p "$out" docs/img/scale
go build -o /tmp/distrosim ./cmd/distrosim
phases=(--calm 10s --faults 20s --settle 25s --partition 8s --loss 0.05 --churn 1 --rate 50 --join --timing)
nodes=(3 10 30 100)
svcs=(10000 100000) # 3 nodes × 10k is the first run of the node sweep
if [ "${1:-}" = --quick ]; then nodes=(3 10); svcs=(10000); fi
for n in "${nodes[@]}"; do
  echo "== nodes $n, 10k instances"
  /tmp/distrosim "${phases[@]}" --nodes "$n" --services 1000 --per-service 10 > "$out/n$n-m10k.json"
done
for s in "${svcs[@]}"; do
  m=$((s * 10))
  echo "== nodes 3, $m instances"
  /tmp/distrosim "${phases[@]}" --nodes 3 --services "$s" --per-service 10 > "$out/n3-m$((m / 1000))k.json"
done
/tmp/distrosim chart --out docs/img/scale "$out"/*.json
