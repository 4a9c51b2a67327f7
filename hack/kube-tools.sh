#!/usr/bin/env bash
# Builds Kubernetes tools from their Go modules (hack/kube-tools, a module of
# its own) into a cache directory, once per version set, and prints that
# directory. Nothing is downloaded but Go modules.
#
#   hack/kube-tools.sh                  kube-apiserver and etcd: the control
#                                       plane (use the directory as
#                                       KUBEBUILDER_ASSETS)
#   hack/kube-tools.sh kubectl helm     also the CLIs that test/docs runs the
#                                       install guide with (make test builds
#                                       all four)
set -euo pipefail
cd "$(dirname "$0")/kube-tools"
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
cache=${TC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trusted-compute}
out="$cache/kube-tools/$key"
want=(kube-apiserver etcd "$@")
missing() {
  for b in "${want[@]}"; do [ -x "$out/$b" ] || echo "$b"; done
}
if [ -z "$(missing)" ]; then
  echo "$out"; exit 0
fi
# One build at a time: tests started together all call this script.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
k8s="-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
helm="-X helm.sh/helm/v3/internal/version.version=v3.22.0 -X helm.sh/helm/v3/internal/version.metadata="
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm="$helm -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=37"
done
export CGO_ENABLED=0 GOFLAGS=-mod=mod
for b in $(missing); do
  case $b in
  kube-apiserver) what="kube-apiserver v1.37.2" flags=$k8s pkg=k8s.io/kubernetes/cmd/kube-apiserver ;;
  etcd) what="etcd v3.7.0" flags= pkg=./etcd ;;
  kubectl) what="kubectl v1.37.2" flags=$k8s pkg=k8s.io/kubernetes/cmd/kubectl ;;
  helm) what="helm v3.22.0" flags=$helm pkg=helm.sh/helm/v3/cmd/helm ;;
  *) echo "kube-tools: no tool $b (kube-apiserver, etcd, kubectl, helm)" >&2; exit 2 ;;
  esac
  echo "kube-tools: building $what (minutes the first time, cached after)" >&2
  go build -trimpath -ldflags "-s -w $flags" -o "$out/.$b.tmp" "$pkg" >&2
  mv "$out/.$b.tmp" "$out/$b"
done
echo "$out"
