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
if [ ! -x bin/tc-sandbox ]; then
  echo "building tcctl and tc-sandbox (the first build compiles the verifier, the agent and a TPM simulator: it may take several minutes)..."
fi
go build -o bin/ ./cmd/tcctl ./cmd/tc-sandbox
# exec: Ctrl-C reaches tcctl itself, which stops every part cleanly.
exec bin/tcctl sandbox "$@"
