#!/usr/bin/env bash
# `make sandbox`: installs what the sandbox needs (Debian, as root), then runs
# `tcctl sandbox`. Extra arguments go to tcctl: make sandbox ARGS="--secure-boot-off".
set -euo pipefail
cd "$(dirname "$0")/.."
hack/deps.sh sandbox
export CGO_ENABLED=1
go run ./cmd/tcctl sandbox "$@"
