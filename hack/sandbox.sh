#!/usr/bin/env bash
# `make sandbox`: installs what the sandbox needs (Debian, as root), then runs
# `tcctl sandbox`: the verifier, N edge nodes with simulated TPMs and the
# attestation manager, acting on a local Kubernetes API (or --kubeconfig).
# Extra arguments go to tcctl, e.g. make sandbox ARGS="--scenario all" or ARGS="--nodes 5 --web 127.0.0.1:8080".
set -euo pipefail
cd "$(dirname "$0")/.."
hack/deps.sh sandbox
export CGO_ENABLED=1
mkdir -p bin
if [ ! -x bin/tc-sandbox ]; then
  echo "building tcctl and tc-sandbox: the first build compiles the verifier, the agent, the manager and a TPM simulator and may take several minutes..."
else
  echo "building tcctl and tc-sandbox (seconds unless the code changed)..."
fi
go build -o bin/ ./cmd/tcctl ./cmd/tc-sandbox
# exec: Ctrl-C reaches tcctl itself, which stops every part cleanly.
exec bin/tcctl sandbox "$@"
