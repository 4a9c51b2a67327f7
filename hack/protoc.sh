#!/usr/bin/env bash
# Regenerates the Go code of the .proto files. The generated files are
# committed; builds and tests never need protoc.
#
# Needs: protoc (Debian: apt-get install -y protobuf-compiler) and the Go plugins
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# Usage: hack/protoc.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
  if ! command -v "$tool" >/dev/null; then
    echo "protoc.sh: $tool not found (see the header of this script)" >&2
    exit 1
  fi
done

# Each entry: proto root directory, then the .proto files under it.
# Output goes by go_package, relative to the module root.
gen() {
  local proto_root=$1; shift
  protoc \
    --proto_path="$proto_root" \
    --go_out=. --go_opt=module=trustedcompute.io/tc \
    --go-grpc_out=. --go-grpc_opt=module=trustedcompute.io/tc \
    "$@"
}

gen internal/eim/proto attestmgr/v1/attestmgr.proto

gofmt -l internal/eim/attestmgrv1 | { ! grep .; } || { echo "protoc.sh: generated code not gofmt-clean" >&2; exit 1; }
