#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules (hack/kube-tools, a module
# of its own) into a cache directory, once per version set, and prints that
# directory (use it as KUBEBUILDER_ASSETS). Nothing is downloaded but Go modules.
set -euo pipefail
cd "$(dirname "$0")/kube-tools"
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
cache=${TC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trusted-compute}
out="$cache/kube-tools/$key"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"; exit 0
fi
mkdir -p "$out.tmp"
echo "kube-tools: building kube-apiserver v1.37.2 and etcd v3.7.0 (several minutes the first time)" >&2
export CGO_ENABLED=0 GOFLAGS=-mod=mod
go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
  -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" ./etcd >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
