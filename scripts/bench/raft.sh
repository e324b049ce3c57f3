#!/usr/bin/env bash
# scripts/bench/raft.sh — CP-side (Raft) figures for docs/benchmarks.md §"Persistent data":
# persistent register throughput and p99 on 3 loopback nodes, the restart time of a 3-node
# cluster holding N persistent instances (default 100000), and data-dir bytes per instance.
#
#   bash scripts/bench/raft.sh [--instances N] [--duration 10s] [--out DIR] [--md FILE]
#
# Production Raft timings (1 s heartbeat), one data dir per node on the local disk; the
# snapshot threshold is checked every 5 s (default 2 min) so that the restart is measured
# from a snapshot plus the log tail, as in a long-running cluster. The markdown section is
# written to --md (default docs/bench-results/raft.md), which `distrobench report` includes.
# Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=100000
DUR=10s
OUT=$(mktemp -d /tmp/distro-raft-bench.XXXXXX)
MD=docs/bench-results/raft.md
while (($#)); do
	case $1 in
	--md) MD=$2; shift ;;
	--instances) N=$2; shift ;;
	--duration) DUR=$2; shift ;;
	--out) OUT=$2; shift ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$OUT/bin"
CGO_ENABLED=0 go build -o "$OUT/bin/" ./cmd/distrod ./cmd/distrobench
B=$OUT/bin
PORTS=(27848 27858 27868)
printf '127.0.0.1:%s\n' "${PORTS[@]}" > "$OUT/cluster.conf"
export DISTRO_CLUSTER_SECRET=$(head -c 32 /dev/urandom | base64)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start() {
	pids=()
	for p in "${PORTS[@]}"; do
		"$B/distrod" --port "$p" --bind 127.0.0.1 --advertise "127.0.0.1:$p" --cluster-conf "$OUT/cluster.conf" \
			--data-dir "$OUT/d$p" --raft-snapshot-interval 5s --log-level warn --health-check-default NONE >> "$OUT/node-$p.log" 2>&1 &
		pids+=($!)
	done
}
wait_ready() { # every node ready and listing $1 instances
	for p in "${PORTS[@]}"; do
		until [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$p/readyz")" = 200 ] &&
			[ "$(curl -s "127.0.0.1:$p/metrics" | awk '$1=="distro_instances"{print int($2)}')" -ge "$1" ]; do
			sleep 0.05
		done
	done
}
targets=$(printf '127.0.0.1:%s,' "${PORTS[@]}"); targets=${targets%,}

start; wait_ready 0
echo "== persistent register, 3 nodes, 50 workers, $DUR"
"$B/distrobench" --target "$targets" --scenario register --concurrency 50 --duration "$DUR" --warmup 2s \
	--cleanup=false --progress=never --json "$OUT/register.json" | tee "$OUT/register.txt"

echo "== fill: $N persistent instances"
t0=$(date +%s.%N)
"$B/distrobench" fill --target "127.0.0.1:${PORTS[0]}" --instances "$N" --concurrency 64 --metrics-url none \
	--settle 1s --progress=never --json "$OUT/fill.json" > "$OUT/fill.txt"
t1=$(date +%s.%N)
total=$(curl -s "127.0.0.1:${PORTS[0]}/metrics" | awk '$1=="distro_instances"{print int($2)}')
wait_ready "$total"
echo "fill: $N instances in $(echo "$t1 - $t0" | bc) s ($(echo "$N / ($t1 - $t0)" | bc) /s); $total persistent instances in all"
fill_s=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)"); fill_rate=$(echo "$N / ($t1 - $t0)" | bc)
# Wait for every node's next snapshot (taken at most 10 s after the threshold is passed).
for p in "${PORTS[@]}"; do
	for _ in $(seq 1 120); do [ -n "$(ls "$OUT/d$p/raft/snapshots" 2>/dev/null)" ] && break; sleep 1; done
done
sleep 12
bytes=0
for p in "${PORTS[@]}"; do
	b=$(du -sb "$OUT/d$p" | cut -f1); bytes=$b
	echo "data dir 127.0.0.1:$p: $b bytes, $((b / total)) bytes per instance ($(ls "$OUT/d$p/raft/snapshots" | wc -l) snapshots)"
done
snap=$(du -sb "$(ls -d "$OUT/d${PORTS[0]}"/raft/snapshots/* | tail -1)" | cut -f1)

echo "== restart: kill -9 every node, start all three, time until every node is ready and lists $total"
for p in "${pids[@]}"; do kill -9 "$p"; done
wait 2>/dev/null || true
t0=$(date +%s.%N)
start
wait_ready "$total"
t1=$(date +%s.%N)
restart_s=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)")
echo "restart with $total persistent instances: $restart_s s"

load=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$MD")"
cat > "$MD" <<MD
## Persistent data (Raft)

Measured by \`scripts/bench/raft.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$(git describe --always --dirty)\`: three distrod
nodes on loopback with production Raft timings, each with its data dir on the local disk (fsync on every log batch), not pinned,
on a **shared** 2-core machine (load average $load at the end): treat the figures as lower bounds.

| measurement | figure |
|---|---|
| persistent register (v1 POST \`ephemeral=false\`, new instances), 50 workers spread over the 3 nodes, $DUR | $(grep -o '[0-9.]* req/s' "$OUT/register.txt" | head -1), p50 $(grep -o 'p50 [0-9.]*ms' "$OUT/register.txt" | cut -d' ' -f2), p99 $(grep -o 'p99 [0-9.]*ms' "$OUT/register.txt" | cut -d' ' -f2), errors $(grep -o 'errors [0-9]*' "$OUT/register.txt" | cut -d' ' -f2) |
| fill of $N persistent instances through one node, 64 workers | $fill_s s ($fill_rate /s) |
| restart of all three nodes (SIGKILL, start) with $total persistent instances, until every node is ready and lists all | $restart_s s |
| data dir per node after a snapshot | $bytes bytes, $((bytes / total)) bytes per instance (the newest snapshot is $snap bytes = $((snap / total)) B/instance; the rest is the previous snapshot, the log tail of 10240 entries and bbolt's free pages) |

A persistent write is acknowledged after a quorum has appended it and the leader applied it; hashicorp/raft batches concurrent
proposals into one append and one fsync. Ephemeral writes do not touch Raft, so the other sections' ephemeral figures are
unaffected.
MD
echo "wrote $MD"
