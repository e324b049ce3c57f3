#!/usr/bin/env bash
# Runs the Nacos client compatibility suites against a freshly built distrod:
#   1. Go SDK tests (v1, v2, cluster):   go test ./...   in compat/
#   2. Node nacos@2.6.3 tests:           node --test     in compat/node
# Both suites always run; the exit status is non-zero if either fails.
# Works from a fresh clone (cold Go module cache, no node_modules).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/distro-compat-run.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log() { printf '==> %s\n' "$*" >&2; }

log "building distrod"
if ! (cd "$root" && GOWORK=off go build -o "$tmp/distrod" ./cmd/distrod); then
	log "FAIL: go build ./cmd/distrod"
	exit 1
fi
export DISTROD_BIN="$tmp/distrod"

go_status=0
log "Go SDK suites (compat/, go test -count=1 -timeout 10m ./...)"
start=$SECONDS
(cd "$here" && GOWORK=off go test -count=1 -timeout 10m ./...) || go_status=$?
log "Go suites: exit $go_status in $((SECONDS - start))s"

node_status=0
log "Node suite (compat/node, node --test)"
start=$SECONDS
if [ ! -d "$here/node/node_modules" ]; then
	(cd "$here/node" && npm ci --no-audit --no-fund) || node_status=$?
	[ "$node_status" -eq 0 ] || log "FAIL: npm ci"
fi
if [ "$node_status" -eq 0 ]; then
	# --test-force-exit: the client's beat loop sleeps up to 10 s after
	# close(); do not wait for it once every test and after() have finished.
	(cd "$here/node" && node --test --test-force-exit) || node_status=$?
fi
log "Node suite: exit $node_status in $((SECONDS - start))s"

if [ "$go_status" -ne 0 ] || [ "$node_status" -ne 0 ]; then
	log "FAIL (go: $go_status, node: $node_status)"
	exit 1
fi
log "PASS"
