#!/usr/bin/env bash
# scripts/bench/callgrind.sh: instructions per request, distrod against the
# ceiling, counted by valgrind --tool=callgrind. Instruction counts do not
# depend on what else the machine runs, so this compares builds on a
# shared machine where req/s and CPU-seconds are noisy. They count user
# space only: the kernel's share of a request (socket reads and writes),
# which both servers pay alike, is left out, so the fraction shown is
# lower than the CPU fraction of the pinned report.
#
# Method: the server runs under callgrind (GOMAXPROCS=1); distrobench, run
# natively, sends N requests of the scenario (pools set up first), then 2N;
# callgrind_control dumps the counters after each, and the difference
# divided by N is the cost of one request without the start-up and setup.
#
# Usage: scripts/bench/callgrind.sh [-n N] [--protocol v1|v2] SCENARIO...
#   e.g. scripts/bench/callgrind.sh query beat register
#        scripts/bench/callgrind.sh --protocol v2 register query subscribe
# Needs valgrind (Debian package valgrind).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
N=2000 PROTO=v1 SCEN=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -n) N=$2; shift ;;
    --protocol) PROTO=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) SCEN+=("$1") ;;
  esac
  shift
done
[[ ${#SCEN[@]} -gt 0 ]] || SCEN=(query beat register)
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/distro-callgrind.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# DISTROD_BIN compares another build of the server (e.g. an older commit's).
if [[ -n ${DISTROD_BIN:-} ]]; then cp "$DISTROD_BIN" "$WORK/distro-server"; else go build -trimpath -o "$WORK/distro-server" ./cmd/distrod; fi
go build -trimpath -o "$WORK/distrobench" ./cmd/distrobench
PORT=${PORT:-27448}
VPID=""

# start_vg CMD...: start CMD under callgrind and wait for its HTTP port.
start_vg() {
  rm -f "$WORK"/cg.out*
  GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$@" \
    >"$WORK/vg.log" 2>&1 &
  VPID=$!
  for _ in $(seq 600); do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then return 0; fi
    kill -0 "$VPID" 2>/dev/null || { tail -5 "$WORK/vg.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server did not start" >&2
  exit 1
}
# dump: write the counters since the last dump and print their total.
dump() {
  local before n
  before=$(find "$WORK" -name 'cg.out.*' | wc -l)
  callgrind_control -d "$VPID" >/dev/null 2>&1
  for _ in $(seq 100); do
    n=$(find "$WORK" -name 'cg.out.*' | wc -l)
    if [[ $n -gt $before ]]; then
      sleep 0.2
      grep -h '^totals:' "$(ls -t "$WORK"/cg.out.* | head -1)" | awk '{print $2}'
      return
    fi
    sleep 0.1
  done
  echo 0
}
stop_vg() {
  kill -9 "$VPID" 2>/dev/null || true
  wait "$VPID" 2>/dev/null || true
  # KEEP=DIR keeps the profile of the 2N run for callgrind_annotate.
  if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP"; cp "$(ls -t "$WORK"/cg.out.* | head -1)" "$KEEP/$1.callgrind"; fi
}

# load SCENARIO COUNT CAPTURE: one distrobench run of COUNT requests.
load() {
  local s=$1 n=$2 pool=(--services 50 --instances-per-service 10)
  # Ephemeral registrations, as in the benchmark report (a persistent one
  # is a Raft commit).
  [[ $s == register ]] && pool=(--services 50 --ephemeral)
  "$WORK/distrobench" --progress=never -q --protocol "$PROTO" --target "127.0.0.1:$PORT" --scenario "$s" "${pool[@]}" \
    --max-requests "$n" --duration 600s --warmup 0 --concurrency 8 --cleanup=false ${3:+--capture-dir "$3"} >/dev/null
}

# measure SCENARIO: instructions per request (prints the figure).
measure() {
  local s=$1 a b
  dump >/dev/null
  load "$s" "$N" "${2:-}"
  a=$(dump)
  load "$s" $((2 * N))
  b=$(dump)
  echo $(((b - a) / N))
}

# The load registers made-up persistent addresses: no health checks of
# them (a build older than --health-check-default checked none anyway).
# Each start gets an empty data directory (builds with the Raft CP side).
HELP=$("$WORK/distro-server" --help 2>&1 || true)
NOCHECK=()
if grep -q -- --health-check-default <<<"$HELP"; then NOCHECK=(--health-check-default NONE); fi
datadir() { if grep -q -- --data-dir <<<"$HELP"; then echo "--data-dir=$WORK/data-$1"; fi; }

printf '%-12s %-8s %14s %14s %9s\n' scenario protocol distrod ceiling fraction
for s in "${SCEN[@]}"; do
  mkdir -p "$WORK/cap-$s"
  # shellcheck disable=SC2046
  start_vg "$WORK/distro-server" --port "$PORT" --bind 127.0.0.1 --log-level warn "${NOCHECK[@]}" $(datadir "$PROTO-$s")
  d=$(measure "$s" "$WORK/cap-$s")
  stop_vg "distrod-$PROTO-$s"
  start_vg "$WORK/distrobench" ceiling --port "$PORT" --routes "$WORK/cap-$s"
  c=$(measure "$s")
  stop_vg "ceiling-$PROTO-$s"
  printf '%-12s %-8s %14s %14s %9s\n' "$s" "$PROTO" "$d" "$c" "$(awk -v d="$d" -v c="$c" 'BEGIN { if (d > 0) printf "%.2f", c / d }')"
done
