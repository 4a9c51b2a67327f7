#!/usr/bin/env bash
# The load test (`make loadtest`): builds the verifier and tc-loadtest, starts
# a throwaway PostgreSQL on a free loopback port, and runs the verifier as
# its own process on an SQLite file and then on PostgreSQL against a
# simulated fleet (internal/fleetsim). Everything listens on 127.0.0.1 only.
# It writes docs/images/loadtest.svg and docs/images/loadtest.json.
#
# Arguments go to tc-loadtest, e.g. the measurement of docs/performance.md:
#   make loadtest ARGS="-steps 100,1000,3000,10000 -window 60s"
# LOADTEST_TIMEOUT bounds the whole run (default 10m).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/tc-loadtest.XXXXXX)
cleanup() {
  [ -f "$work/pg/PG_VERSION" ] && hack/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== build"
CGO_ENABLED=1 go build -o "$work/bin/" ./cmd/verifier ./cmd/tc-loadtest

echo "== PostgreSQL"
pgport=$((20000 + RANDOM % 20000))
pgurl=$(hack/postgres.sh start "$work/pg" "$pgport" | tail -n 1)

echo "== load test"
mkdir -p docs/images
timeout --foreground "${LOADTEST_TIMEOUT:-10m}" "$work/bin/tc-loadtest" \
  -verifier "$work/bin/verifier" -postgres "$pgurl" -dir "$work/run" \
  -steps 100,1000 -window 30s -max-window 10s -max-clients 4,16 \
  -svg docs/images/loadtest.svg -json docs/images/loadtest.json "$@"
