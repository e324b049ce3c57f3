#!/usr/bin/env bash
# chaos/run.sh — the fault-injection suite: real distrod binaries in network
# namespaces, a recorded client workload, and invariant checks (docs/reliability.md).
#
#   bash chaos/run.sh                 # full matrix F1–F17 and the Raft rows R1–R3 (~24 min on 2 cores)
#   bash chaos/run.sh --short         # CI subset F1 F3 F5 F6 F9 F15 R1, halved faults (~4 min)
#   bash chaos/run.sh --run 'F1|F9'   # chosen scenarios
#   CHAOS_TIMINGS=default bash chaos/run.sh   # distrod's default verify/probe timings
#
# Needs root. Installs nftables/iproute2 if missing. Environment: CHAOS_SEED (replay
# a run's seed), CHAOS_KEEP=1 (keep evidence of passing scenarios too),
# CHAOS_RESULTS_ROOT (default ./chaos-results). Every scenario prints one
# PASS/FAIL line; failures keep history, samples, checker report and node logs.
set -euo pipefail
cd "$(dirname "$0")/.."

short=0
pick=''
while (($#)); do
	case $1 in
	--short) short=1 ;;
	--run) pick=$2; shift ;;
	--run=*) pick=${1#--run=} ;;
	-h | --help) sed -n 2,14p "$0"; exit 0 ;;
	*) echo "chaos: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$(id -u)" != 0 ]; then
	echo "chaos: the fault-injection suite needs root (network namespaces, nftables)" >&2
	exit 1
fi
missing=()
command -v nft >/dev/null || missing+=(nftables)
{ command -v ip >/dev/null && command -v tc >/dev/null; } || missing+=(iproute2)
if ((${#missing[@]})); then
	echo "chaos: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Labs whose owner died (a killed or timed-out test) are removed here and at
# every lab creation: the processes inside the lab's own namespaces first
# (never a recorded pid, which may have been recycled), then the
# namespaces and the bridge, all by the lab's prefix.
sweep() {
	local d pid owner id ns
	for d in /run/distro-chaos/*/; do
		[ -d "$d" ] || continue
		id=$(basename "$d")
		owner=$(cat "$d/owner" 2>/dev/null || echo 0)
		if [ "$owner" != 0 ] && kill -0 "$owner" 2>/dev/null; then continue; fi
		for ns in $(ip netns list | awk -v p="$id-" 'index($1, p) == 1 {print $1}'); do
			for pid in $(ip netns pids "$ns" 2>/dev/null); do
				kill -KILL "$pid" 2>/dev/null || true
			done
			ip netns del "$ns" 2>/dev/null || true
		done
		ip link del "$id-br" 2>/dev/null || true
		rm -rf "$d"
	done
}
sweep
trap sweep EXIT

results=${CHAOS_RESULTS_ROOT:-chaos-results}/$(date +%Y%m%d-%H%M%S)
mkdir -p "$results/bin"
results=$(cd "$results" && pwd)
# The commit is taken before the build, so results name the tree they ran on.
CHAOS_COMMIT=$(git describe --always --dirty 2>/dev/null || echo unknown)
export CHAOS_COMMIT
echo "chaos: building distrod and the workload at $CHAOS_COMMIT"
CGO_ENABLED=0 go build -o "$results/bin/distrod" ./cmd/distrod
CGO_ENABLED=0 go build -o "$results/bin/workload" ./chaos/workload
(cd chaos/lincheck && CGO_ENABLED=0 go build -o "$results/bin/lincheck" .)

if ((short)); then
	run='^(TestChaos|TestChaosRaft)$/^(F1|F3|F5|F6|F9|F15|R1)$'
	timeout=14m
	export CHAOS_SHORT=1
else
	run='^(TestChaos|TestChaosRaft)$'
	timeout=70m
fi
[ -n "$pick" ] && run="^(TestChaos|TestChaosRaft)\$/^($pick)\$"

echo "chaos: results in $results"
set +e
CHAOS=1 CHAOS_RESULTS="$results" CHAOS_DISTROD="$results/bin/distrod" CHAOS_WORKLOAD="$results/bin/workload" CHAOS_LINCHECK="$results/bin/lincheck" \
	go test ./chaos -run "$run" -count=1 -v -timeout "$timeout" 2>&1 | tee "$results/test.log"
status=${PIPESTATUS[0]}
set -e
echo
echo "== chaos summary ($results/summary.txt; markdown table for docs/reliability.md: $results/results.md)"
cat "$results/summary.txt" 2>/dev/null || echo "(no scenario finished)"
exit "$status"
