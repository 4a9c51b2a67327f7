#!/usr/bin/env bash
# `make sandbox`: installs what the sandbox needs (Debian, as root), then runs
# `tcctl sandbox`: the verifier, N edge nodes with simulated TPMs and the
# attestation manager, acting on the sandbox's own kube-apiserver (built here
# by hack/kube-tools.sh, in parallel with the product) or, failing that, an
# in-memory Kubernetes API (or --kubeconfig).
# Extra arguments go to tcctl, e.g. make sandbox ARGS="--scenario all" or ARGS="--nodes 5 --web 127.0.0.1:8080".
set -euo pipefail
cd "$(dirname "$0")/.."
hack/deps.sh sandbox
export CGO_ENABLED=1
mkdir -p bin
kube_pid=
kube_out=$(mktemp -t tc-kube-tools.XXXXXX)
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  echo "building kube-apiserver and etcd for the sandbox's Kubernetes API (hack/kube-tools.sh; several minutes the first time, cached after), in parallel..."
  hack/kube-tools.sh >"$kube_out" 2>"$kube_out.log" &
  kube_pid=$!
fi
if [ ! -x bin/tc-sandbox ]; then
  echo "building tcctl and tc-sandbox: the first build compiles the verifier, the agent, the manager and a TPM simulator and may take several minutes..."
else
  echo "building tcctl and tc-sandbox (seconds unless the code changed)..."
fi
go build -o bin/ ./cmd/tcctl ./cmd/tc-sandbox
if [ -n "$kube_pid" ]; then
  if wait "$kube_pid"; then
    KUBEBUILDER_ASSETS=$(tail -n1 "$kube_out")
    export KUBEBUILDER_ASSETS
  else
    echo "kube-apiserver and etcd could not be built (last lines below): the sandbox runs an in-memory Kubernetes API, which tcctl node status | onboard cannot reach"
    tail -n5 "$kube_out.log" || true
  fi
fi
rm -f "$kube_out" "$kube_out.log"
# exec: Ctrl-C reaches tcctl itself, which stops every part cleanly.
exec bin/tcctl sandbox "$@"
