#!/usr/bin/env bash
# `make sandbox`: installs what the sandbox needs (Debian, as root), then runs
# `tcctl sandbox`: the verifier, N edge nodes with simulated TPMs and the
# attestation manager in local mode. Extra arguments go to tcctl, e.g.
# make sandbox ARGS="--scenario all" or ARGS="--nodes 5 --web 127.0.0.1:8080".
set -euo pipefail
cd "$(dirname "$0")/.."
hack/deps.sh sandbox
export CGO_ENABLED=1
mkdir -p bin
go build -o bin/tcctl ./cmd/tcctl
# exec: Ctrl-C reaches tcctl itself, which stops every part cleanly.
exec bin/tcctl sandbox "$@"
