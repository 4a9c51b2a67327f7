#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each (`make fuzz`).
# Usage: hack/fuzz.sh [duration, default 20s]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20s}
export CGO_ENABLED=1
status=0
while IFS= read -r pkg; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" || status=1
  done
done < <(go list ./...)
exit "$status"
