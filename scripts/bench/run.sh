#!/usr/bin/env bash
# scripts/bench/run.sh: run the distro benchmark and regenerate docs/benchmarks.md.
#
# Method (../shared/reference/performance.md §5): every server is started pinned
# to core 1 (taskset -c 1, GOMAXPROCS=1, log level warn), the load generator
# runs pinned to core 0 (GOMAXPROCS=1). For each scenario, distrod and the
# ceiling server (a trivial net/http handler replaying distrod's bytes) run
# alternately, A/B/A/B..., each time freshly started with an empty store; the
# report gives medians with min and max, and requests per server CPU-second.
# The v1 write scenarios write ephemeral instances (Distro); register with
# persistent instances (Raft commits) runs the same way as a series of its own.
# The Nacos 2 gRPC scenarios run the same way against the gRPC ceiling (the
# same proto and transport, a trivial handler replaying distrod's answers).
# Then: push fan-out to 1000 gRPC subscribers, bytes per instance at
# 10k/100k/1M instances, bytes per connected v2 client, a 3-node loopback
# cluster for convergence (under ~2k background writes/s) and push latency.
#
# Usage: scripts/bench/run.sh [--quick] [options]      (make bench-report)
#   --quick             smoke run (< 3 min): 1 repetition, 2 s runs, memory 10k/100k
#   --reps N            repetitions per server and scenario (default 3)
#   --duration D        measured seconds per run (default 8)
#   --warmup W          warmup seconds per run (default 2)
#   --concurrency C     closed-loop connections (default 50)
#   --scenarios "..."   subset of: query register reregister beat deregister mixed
#   --v2-scenarios "..." Nacos 2 gRPC scenarios, subset of: register query subscribe (default all)
#   --no-v2             skip the gRPC scenarios, the fan-out and the connection runs
#   --peer host:port    also run every scenario against a server you started
#   --peer-name NAME    its label in the report (default peer)
#   --peer-pid PID      its process id, for CPU and memory figures
#   --no-open           skip the open-loop latency runs
#   --no-memory         skip the memory runs
#   --no-cluster        skip the convergence and push runs
#   --mem-sizes "..."   instance counts for the memory table
#   --out DIR           raw JSON results (default docs/bench-results)
#   --doc FILE          report to write (default docs/benchmarks.md)
#   --img DIR           charts (default docs/img)
#   --port-base P       first port to try (default 27848; keep ports below the ephemeral range)
#   --quiet-wait S      before each run, wait until the machine is < 25% busy, at most S s per run
#                       and 180 s in all (default 10 in full mode, 0 with --quick)
#   --keep-work         keep the scratch directory (binaries, logs, captures)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

QUICK=0 REPS="" DURATION="" WARMUP="" CONC=50 SCENARIOS="" PEER="" PEER_NAME=peer PEER_PID=""
OPEN=1 MEMORY=1 CLUSTER=1 V2=1 V2_SCENARIOS="register query subscribe" MEM_SIZES="" OUT=docs/bench-results DOC=docs/benchmarks.md IMG=docs/img
PORT_BASE=27848 KEEP=0 QUIET_MAX="" QUIET_PCT=25 QUIET_BUDGET=180
ARGS_ECHO="$*"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --concurrency) CONC=$2; shift ;;
    --scenarios) SCENARIOS=$2; shift ;;
    --v2-scenarios) V2_SCENARIOS=$2; shift ;;
    --no-v2) V2=0 ;;
    --peer) PEER=$2; shift ;;
    --peer-name) PEER_NAME=$2; shift ;;
    --peer-pid) PEER_PID=$2; shift ;;
    --no-open) OPEN=0 ;;
    --no-memory) MEMORY=0 ;;
    --no-cluster) CLUSTER=0 ;;
    --mem-sizes) MEM_SIZES=$2; shift ;;
    --out) OUT=$2; shift ;;
    --doc) DOC=$2; shift ;;
    --img) IMG=$2; shift ;;
    --port-base) PORT_BASE=$2; shift ;;
    --quiet-wait) QUIET_MAX=$2; shift ;;
    --keep-work) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then
  : "${REPS:=1}" "${DURATION:=2}" "${WARMUP:=0.5}" "${SCENARIOS:=query register reregister beat deregister mixed}"
  : "${MEM_SIZES:=10000 100000}"
  : "${QUIET_MAX:=0}"
  OPEN=0 QUERY_SERVICES=1000 CONVERGE_SAMPLES=300 PUSH_SAMPLES=150 CONVERGE_REPS=1 FILL_MAX_TIME=60s MODE=quick
  FANOUT_SAMPLES=10 CONN_COUNT=2000
  MODE_NOTE="1 repetition of ${DURATION} s runs; a smoke run, not a reference"
else
  : "${REPS:=3}" "${DURATION:=8}" "${WARMUP:=2}" "${SCENARIOS:=query register reregister beat deregister mixed}"
  : "${MEM_SIZES:=10000 100000 1000000}"
  : "${QUIET_MAX:=10}"
  # The fill's persistent instances are Raft commits (about 5k/s on one node).
  QUERY_SERVICES=10000 CONVERGE_SAMPLES=1000 PUSH_SAMPLES=300 CONVERGE_REPS=$REPS FILL_MAX_TIME=600s MODE=full
  FANOUT_SAMPLES=30 CONN_COUNT=10000
  MODE_NOTE="${REPS} repetitions of ${DURATION} s runs per server and scenario"
fi
BG_RATE=2000 SAMPLE_RATE=50

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in go taskset curl; do command -v "$tool" >/dev/null || die "$tool is required"; done
if [[ $(nproc) -ge 2 ]]; then SERVER_CPU=1 LOAD_CPU=0; else
  log "warning: fewer than 2 cores: server and load share core 0, figures are not comparable"; SERVER_CPU=0 LOAD_CPU=0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/distro-bench.XXXXXX")
BIN=$WORK/bin RES=$WORK/results LOGS=$WORK/logs CAP=$WORK/capture
mkdir -p "$BIN" "$RES" "$LOGS" "$CAP"
declare -a STARTED=()

cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
  STARTED=()
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else log "scratch kept in $WORK"; fi
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

T0=$(date +%s)
log "building distrod and distrobench into $BIN"
# The server binary is distrod under another name: other tools sharing this
# machine clean up processes whose command line mentions "distrod", and must
# not take the benchmark's servers with them.
DISTROD=$BIN/distro-server
# Built as it ships (make build, the Dockerfile): static and stripped. A
# cgo build maps libc too, 2 MB more idle RSS.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DISTROD" ./cmd/distrod
go build -trimpath -o "$BIN/distrobench" ./cmd/distrobench

# port_free P: nothing listens on 127.0.0.1:P.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Pick a base where P, P+10, P+20 and their +1000/+1001 companions are free.
pick_ports() {
  local base=$PORT_BASE p ok
  for _ in $(seq 50); do
    ok=1
    for p in $base $((base+10)) $((base+20)) $((base+30)); do
      for q in $p $((p+1000)) $((p+1001)); do port_free "$q" || ok=0; done
    done
    if [[ $ok == 1 ]]; then echo "$base"; return; fi
    base=$((base+100))
  done
  die "no free ports near $PORT_BASE"
}
BASE=$(pick_ports)
PORT=$BASE CEIL_PORT=$((BASE+30))
log "ports: distrod $PORT, cluster $BASE/$((BASE+10))/$((BASE+20)), ceiling $CEIL_PORT"

# stop PID: SIGTERM, wait (SIGKILL after 10 s).
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${STARTED[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
  # A stopped server's data directory is not needed again (a 1M-instance
  # fill leaves hundreds of MB).
  if [[ -n ${DATA_OF[$pid]:-} ]]; then
    [[ $KEEP == 1 ]] || rm -rf "${DATA_OF[$pid]}"
    unset "DATA_OF[$pid]"
  fi
}

# wait_http URL [CURLFLAG] [PID]: until URL answers (2xx with -sf, anything
# with -s); fails at once if PID exits.
wait_http() {
  local url=$1 flag=${2:--sf} pid=${3:-} i
  for i in $(seq 600); do
    if curl $flag -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

SERVER_PID="" DATA_SEQ=0
declare -A DATA_OF=()
# start_distrod PORT LOGNAME [args...]: started pinned, GOMAXPROCS set explicitly.
start_distrod() {
  local port=$1 name=$2; shift 2
  # Every start gets a data directory of its own (the Raft log and
  # snapshots of the persistent data), so that it starts empty.
  DATA_SEQ=$((DATA_SEQ + 1))
  local data=$WORK/data/$name.$DATA_SEQ
  # --health-check-default NONE: the load registers made-up addresses;
  # a check would send traffic off loopback.
  taskset -c "$SERVER_CPU" env GOMAXPROCS=1 "$DISTROD" --port "$port" --bind 127.0.0.1 --log-level warn --health-check-default NONE \
    --data-dir "$data" "$@" >>"$LOGS/$name.log" 2>&1 &
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
  DATA_OF[$SERVER_PID]=$data
}
start_single() {
  local try
  for try in 1 2 3; do
    if ! port_free "$PORT"; then PORT=$((PORT + 1)); log "  port busy, distrod moves to $PORT"; continue; fi
    start_distrod "$PORT" "distrod-$1"
    if wait_http "http://127.0.0.1:$PORT/readyz" -sf "$SERVER_PID"; then return 0; fi
    if grep -q "address already in use" "$LOGS/distrod-$1.log" 2>/dev/null; then
      # Something else grabbed the port (a client's ephemeral port): move on.
      stop "$SERVER_PID"; PORT=$((PORT + 1)); log "  port busy, distrod moves to $PORT"; continue
    fi
    break
  done
  tail -5 "$LOGS/distrod-$1.log" >&2
  die "distrod did not become ready"
}
start_ceiling() {
  local try
  for try in 1 2 3; do
    if ! port_free "$CEIL_PORT" || ! port_free $((CEIL_PORT + 1000)); then
      CEIL_PORT=$((CEIL_PORT + 1)); log "  port busy, ceiling moves to $CEIL_PORT"; continue
    fi
    taskset -c "$SERVER_CPU" env GOMAXPROCS=1 "$BIN/distrobench" ceiling --port "$CEIL_PORT" --routes "$1" \
      >>"$LOGS/ceiling.log" 2>&1 &
    SERVER_PID=$!
    STARTED+=("$SERVER_PID")
    if wait_http "http://127.0.0.1:$CEIL_PORT/" -s "$SERVER_PID"; then return 0; fi
    stop "$SERVER_PID"
    CEIL_PORT=$((CEIL_PORT + 1))
    log "  ceiling moves to port $CEIL_PORT"
  done
  die "ceiling did not start (log: $LOGS/ceiling.log)"
}

# host_busy_pct: machine-wide CPU use over 0.5 s, in percent of all cores.
host_busy_pct() {
  local _c u n s i w q sq st a_busy a_all
  read -r _c u n s i w q sq st _ </proc/stat
  a_busy=$((u + n + s + q + sq + st)) a_all=$((u + n + s + i + w + q + sq + st))
  sleep 0.5
  read -r _c u n s i w q sq st _ </proc/stat
  local busy=$((u + n + s + q + sq + st - a_busy)) all=$((u + n + s + i + w + q + sq + st - a_all))
  echo $(( all > 0 ? 100 * busy / all : 0 ))
}
# wait_quiet: other work shares this machine; give it a moment to calm down
# (bounded per run and in total) so that it disturbs fewer runs.
QUIET_WAITED=0
wait_quiet() {
  [[ $QUIET_MAX -gt 0 ]] || return 0
  local t=0 b
  while (( t < QUIET_MAX * 2 && QUIET_WAITED < QUIET_BUDGET * 2 )); do
    b=$(host_busy_pct)
    (( b < QUIET_PCT )) && return 0
    t=$((t + 1)) QUIET_WAITED=$((QUIET_WAITED + 1))
  done
  log "  machine still ${b}% busy; running anyway"
}

# bench ARGS...: one distrobench run, pinned to the load core.
bench() {
  taskset -c "$LOAD_CPU" env GOMAXPROCS=1 "$BIN/distrobench" --progress=never -q --concurrency "$CONC" "$@" \
    >>"$LOGS/distrobench.log" 2>&1 || { log "distrobench failed: $* (see $LOGS/distrobench.log)"; tail -3 "$LOGS/distrobench.log" >&2; return 1; }
}
median() { "$BIN/distrobench" summary --in "$RES" "$@" 2>/dev/null || echo 0; }

# Pool flags per scenario. deregister is sized from the register throughput
# just measured, so that the pool outlasts warmup + duration.
scenario_args() {
  local s=$1 server=$2 series=${3:-closed}
  if [[ $series == v2 ]]; then
    # v2 pools are connection-held; 1000 services keep the setup short.
    case $s in
      register) echo "--protocol v2 --services 1000" ;;
      *) echo "--protocol v2 --services 1000 --instances-per-service 10" ;;
    esac
    return
  fi
  if [[ $series == persistent ]]; then
    echo "--services 1000" # register without --ephemeral: Raft commits
    return
  fi
  # The write scenarios write ephemeral instances (the Distro path, Nacos's
  # default); persistent ones are Raft commits, measured on their own.
  case $s in
    query) echo "--services $QUERY_SERVICES --instances-per-service 10" ;;
    register) echo "--services 1000 --ephemeral" ;;
    reregister|beat) echo "--services 1000 --instances-per-service 10" ;;
    mixed) echo "--services 1000 --instances-per-service 10 --ephemeral" ;;
    deregister)
      # The pool outlasts warmup + duration at the register rate just
      # measured (at least 50k, at most 200k); the warmup takes at most a
      # fifth of it, and a run that empties it ends early (its figures hold).
      local est need
      est=$(median --scenario register --server "$server" --series closed)
      [[ $est =~ ^[0-9]+$ ]] || est=0
      need=$(awk -v r="$est" -v d="$DURATION" -v w="$WARMUP" 'BEGIN { n = r * (d + w) * 1.25; if (n < 50000) n = 50000; if (n > 200000) n = 200000; print int(n / 10) }')
      echo "--services $need --instances-per-service 10 --ephemeral" ;;
  esac
}

# capdir SCENARIO SERIES: where distrod's answers for the ceiling are kept
# (the open loop replays the closed loop's).
capdir() {
  case $2 in
    v2) echo "$CAP/v2-$1" ;;
    persistent) echo "$CAP/p-$1" ;;
    *) echo "$CAP/$1" ;;
  esac
}

# run_one SCENARIO SERIES SERVER REP OUT [extra distrobench args]: one run on
# a freshly started server. Fails (status 3) if the server died during the
# run: its result is then kept but left out of the report.
run_one() {
  local s=$1 series=$2 server=$3 rep=$4 out=$5; shift 5
  local tags=(--tag "server=$server" --tag "series=$series" --tag "rep=$rep")
  local common=(--scenario "$s" --duration "${DURATION}s" --warmup "${WARMUP}s" "${tags[@]}" --json "$out")
  case $server in
    distrod)
      start_single "$s-$series-$rep"
      local cap=() cdir
      cdir=$(capdir "$s" "$series")
      [[ $series != open && ! -e $cdir/.done ]] && cap=(--capture-dir "$cdir")
      # shellcheck disable=SC2046
      bench --target "127.0.0.1:$PORT" "${common[@]}" $(scenario_args "$s" distrod "$series") --cleanup=false \
        --server-pid "$SERVER_PID" "${cap[@]}" "$@" || true
      [[ ${#cap[@]} -gt 0 ]] && touch "$cdir/.done"
      ;;
    ceiling)
      start_ceiling "$(capdir "$s" "$series")"
      # shellcheck disable=SC2046
      bench --target "127.0.0.1:$CEIL_PORT" "${common[@]}" $(scenario_args "$s" ceiling "$series") --cleanup=false \
        --server-pid "$SERVER_PID" "$@" || true
      ;;
    *)
      # shellcheck disable=SC2046
      bench --target "$PEER" "${common[@]}" $(scenario_args "$s" "$server") --cleanup=true \
        ${PEER_PID:+--server-pid "$PEER_PID"} "$@" || true
      return 0
      ;;
  esac
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    stop "$SERVER_PID"
    log "  warning: the $server server died during $s/$series rep $rep (killed from outside?)"
    return 3
  fi
  stop "$SERVER_PID"
}

# run_ab SCENARIO SERIES [extra distrobench args]: the A/B loop; a run whose
# server died is repeated once.
run_ab() {
  local s=$1 series=$2; shift 2
  local rep server name
  for rep in $(seq "$REPS"); do
    for server in distrod ceiling ${PEER:+peer}; do
      wait_quiet
      name=$server
      [[ $server == peer ]] && name=$PEER_NAME
      if ! run_one "$s" "$series" "$name" "$rep" "$RES/$s-$series-$name-$rep.json" "$@"; then
        run_one "$s" "$series" "$name" "$rep" "$RES/$s-$series-$name-$rep-again.json" "$@" || true
      fi
    done
    log "  $s/$series rep $rep: distrod $(median --scenario "$s" --server distrod --series "$series") req/s, ceiling $(median --scenario "$s" --server ceiling --series "$series") req/s (medians so far)"
  done
}

log "mode $MODE: $MODE_NOTE; scenarios: $SCENARIOS"
for s in $SCENARIOS; do
  log "scenario $s (closed loop, c=$CONC)"
  mkdir -p "$CAP/$s"
  run_ab "$s" closed
done

if [[ $OPEN == 1 ]]; then
  for s in query register; do
    [[ " $SCENARIOS " == *" $s "* ]] || continue
    rate=$(median --scenario "$s" --server distrod --series closed)
    rate=$(( rate / 2 ))
    [[ $rate -gt 0 ]] || continue
    log "scenario $s (open loop at $rate req/s, half of distrod's closed-loop median)"
    run_ab "$s" open --rate "$rate" --max-outstanding 256
  done
fi

if [[ " $SCENARIOS " == *" register "* ]]; then
  log "scenario register with persistent instances (Raft commits, closed loop, c=$CONC)"
  mkdir -p "$CAP/p-register"
  run_ab register persistent
fi

if [[ $V2 == 1 ]]; then
  for s in $V2_SCENARIOS; do
    log "scenario $s over Nacos 2 gRPC (closed loop, c=$CONC)"
    mkdir -p "$CAP/v2-$s"
    run_ab "$s" v2
  done
  log "push fan-out: 1000 gRPC subscribers of one service, $FANOUT_SAMPLES samples"
  wait_quiet
  start_single fanout
  bench --target "127.0.0.1:$PORT" --protocol v2 --scenario fanout --subscribers 1000 --max-requests "$FANOUT_SAMPLES" \
    --server-pid "$SERVER_PID" --cleanup=false --tag server=distrod --tag series=fanout --tag rep=1 \
    --json "$RES/fanout-distrod-1.json" || true
  stop "$SERVER_PID"
  log "connected v2 clients: $CONN_COUNT"
  wait_quiet
  start_single conns
  sleep 1
  taskset -c "$LOAD_CPU" env GOMAXPROCS=1 "$BIN/distrobench" conns --target "127.0.0.1:$PORT" --connections "$CONN_COUNT" \
    --server-pid "$SERVER_PID" --settle 30s --progress=never --tag server=distrod --json "$RES/conns-$CONN_COUNT.json" \
    >>"$LOGS/distrobench.log" 2>&1 || log "conns $CONN_COUNT failed"
  tail -2 "$LOGS/distrobench.log" >&2
  stop "$SERVER_PID"
fi

MEM_NOTE=""
if [[ $MEMORY == 1 ]]; then
  for n in $MEM_SIZES; do
    log "memory: $n instances"
    wait_quiet
    start_single "mem-$n"
    sleep 1
    taskset -c "$LOAD_CPU" env GOMAXPROCS=1 "$BIN/distrobench" fill --target "127.0.0.1:$PORT" --instances "$n" \
      --concurrency 64 --server-pid "$SERVER_PID" --max-time "$FILL_MAX_TIME" --settle 30s --progress=never \
      --tag server=distrod --json "$RES/memory-$n.json" >>"$LOGS/distrobench.log" 2>&1 || log "fill $n failed"
    tail -2 "$LOGS/distrobench.log" >&2
    stop "$SERVER_PID"
  done
  if [[ " $MEM_SIZES " != *" 1000000 "* ]]; then
    MEM_NOTE="The 1M-instance row is measured only by the full run (\`scripts/bench/run.sh\`); this ${MODE} run measured ${MEM_SIZES// /, } instances."
  fi
fi

if [[ $CLUSTER == 1 ]]; then
  MEMBERS="127.0.0.1:$BASE,127.0.0.1:$((BASE+10)),127.0.0.1:$((BASE+20))"
  TARGETS=$MEMBERS
  for rep in $(seq "$CONVERGE_REPS"); do
    log "3-node cluster (rep $rep): converge, $CONVERGE_SAMPLES samples at $SAMPLE_RATE/s under $BG_RATE background writes/s"
    wait_quiet
    pids=()
    for p in $BASE $((BASE+10)) $((BASE+20)); do
      start_distrod "$p" "cluster-$p-$rep" --members "$MEMBERS" --insecure-cluster --auth=false --advertise "127.0.0.1:$p"
      pids+=("$SERVER_PID")
    done
    i=0
    for p in $BASE $((BASE+10)) $((BASE+20)); do
      wait_http "http://127.0.0.1:$p/readyz" -sf "${pids[$i]}" || { tail -3 "$LOGS"/cluster-"$p"-"$rep".log >&2; die "cluster node $p not ready"; }
      i=$((i + 1))
    done
    pidlist=$(IFS=,; echo "${pids[*]}")
    bench --target "$TARGETS" --scenario converge --rate "$SAMPLE_RATE" --max-requests "$CONVERGE_SAMPLES" \
      --background-rate "$BG_RATE" --server-pid "$pidlist" --cleanup=false --tag server=distrod-3node --tag series=converge \
      --tag "rep=$rep" --json "$RES/converge-distrod-3node-$rep.json" || true
    if [[ $rep == 1 ]]; then
      log "3-node cluster: push (subscribe on one node, register on the next)"
      bench --target "$TARGETS" --scenario push --rate "$SAMPLE_RATE" --max-requests "$PUSH_SAMPLES" --server-pid "$pidlist" \
        --cleanup=false --tag server=distrod-3node --tag series=push --tag rep=1 --json "$RES/push-distrod-3node-1.json" || true
    fi
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || log "  warning: cluster node pid $pid died during the run (its results are left out)"
      stop "$pid"
    done
  done
  log "single node: push"
  start_single push
  bench --target "127.0.0.1:$PORT" --scenario push --rate "$SAMPLE_RATE" --max-requests "$PUSH_SAMPLES" --server-pid "$SERVER_PID" \
    --cleanup=false --tag server=distrod --tag series=push --tag rep=1 --json "$RES/push-distrod-1.json" || true
  stop "$SERVER_PID"
  if [[ -n $PEER ]]; then
    log "peer: push"
    bench --target "$PEER" --scenario push --rate "$SAMPLE_RATE" --max-requests "$PUSH_SAMPLES" ${PEER_PID:+--server-pid "$PEER_PID"} \
      --tag "server=$PEER_NAME" --tag series=push --tag rep=1 --json "$RES/push-$PEER_NAME-1.json" || true
  fi
fi

T1=$(date +%s)
ELAPSED=$((T1 - T0))
json_str() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain 2>/dev/null | head -1) ]]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
CMD="scripts/bench/run.sh${ARGS_ECHO:+ $ARGS_ECHO}"
{
  printf '{\n'
  printf '  "date": "%s",\n' "$(date -u +'%Y-%m-%d %H:%M UTC')"
  printf '  "mode": "%s",\n  "mode_note": "%s",\n' "$MODE" "$(json_str "$MODE_NOTE")"
  printf '  "commit": "%s",\n' "$(json_str "$COMMIT")"
  printf '  "reps": "%s",\n  "duration": "%s s",\n  "warmup": "%s s",\n  "concurrency": "%s",\n' "$REPS" "$DURATION" "$WARMUP" "$CONC"
  printf '  "cpu": "%s",\n' "$(json_str "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')")"
  printf '  "cores": "%s",\n' "$(nproc)"
  printf '  "mem": "%s",\n' "$(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"
  printf '  "kernel": "%s",\n' "$(uname -r)"
  printf '  "go": "%s",\n' "$(go version | awk '{print $3}')"
  printf '  "pools": "%s",\n' "query: $QUERY_SERVICES services × 10 persistent instances; reregister, beat and mixed: 1000 services × 10 (ephemeral); register: new ephemeral instances spread over 1000 services (and, in its own section, persistent ones); deregister: an ephemeral pool sized from the register throughput"
  printf '  "poll_interval": "5 ms",\n'
  if [[ $QUIET_MAX -gt 0 ]]; then
    printf '  "quiet_note": "%s",\n' "Before each run the script waited, up to ${QUIET_MAX} s per run and ${QUIET_BUDGET} s in all, for the machine to be under ${QUIET_PCT}% busy; it waited $((QUIET_WAITED / 2)) s in all."
  fi
  printf '  "elapsed": "%s",\n' "$((ELAPSED / 60)) min $((ELAPSED % 60)) s"
  printf '  "command": "%s",\n' "$(json_str "$CMD")"
  printf '  "converge_target": "%s",\n' "Target: p99 time to visible on every node ≤ 100 ms under about $BG_RATE background writes/s. The cluster is 3 distrod nodes on loopback, all pinned to core 1 with GOMAXPROCS=1, and the load runs on core 0."
  printf '  "memory_note": "%s"\n' "$(json_str "$MEM_NOTE")"
  printf '}\n'
} >"$RES/meta.json"

log "writing $OUT/, $IMG/ and $DOC"
mkdir -p "$OUT"
rm -f "$OUT"/*.json
cp "$RES"/*.json "$OUT"/
"$BIN/distrobench" report --in "$OUT" --out "$DOC" --img-dir "$IMG" --img-link "$(realpath --relative-to="$(dirname "$DOC")" "$IMG")" \
  --results-link "$OUT" --command "$CMD"
log "done in $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
