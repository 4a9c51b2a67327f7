#!/usr/bin/env bash
# gofmt, go vet and golangci-lint; golangci-lint comes from the Go module proxy
# when it is not installed. Usage: hack/lint.sh <golangci-lint version>
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-v2.15.0}
export CGO_ENABLED=1

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

bin=$(go env GOPATH)/bin/golangci-lint
if ! [ -x "$bin" ] || ! "$bin" version 2>/dev/null | grep -q "${version#v}"; then
  echo "installing golangci-lint $version"
  go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
"$bin" run ./...
