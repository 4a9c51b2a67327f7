#!/usr/bin/env bash
# The one test command (`make test`): installs what the tests need, starts the
# external services they use, runs every Go test, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh test

work=$(mktemp -d /tmp/tc-test.XXXXXX)
cleanup() {
  [ -f "$work/pg/PG_VERSION" ] && hack/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A throwaway PostgreSQL cluster on a free loopback port.
pgport=$((20000 + RANDOM % 20000))
TC_TEST_POSTGRES_URL=$(hack/postgres.sh start "$work/pg" "$pgport" | tail -n 1)
export TC_TEST_POSTGRES_URL

# A real kube-apiserver and etcd, and the kubectl and helm that test/docs
# runs docs/install.md with, built from their Go modules (cached).
echo "== kube-apiserver, etcd, kubectl and helm"
KUBEBUILDER_ASSETS=$(hack/kube-tools.sh kubectl helm)
export KUBEBUILDER_ASSETS

# Tests that need these parts fail instead of skipping.
# The kernel for the measured-boot VM test (apt-get download, cached).
echo "== kernel for the QEMU measured-boot test"
hack/vmboot/setup.sh >/dev/null

export TC_TEST_REQUIRE=swtpm,swtpm_setup,simulator,postgres,kube,qemu
export CGO_ENABLED=1

echo "== go vet"
go vet "$@"
echo "== go test"
go test -count=1 -timeout 25m "$@" 2>&1 | tee "$work/test.log"
status=${PIPESTATUS[0]}
echo "== summary"
passed=$(grep -c '^ok ' "$work/test.log" || true)
failed=$(grep -c -E '^(FAIL|--- FAIL)' "$work/test.log" || true)
echo "packages: $passed passed, $failed failed"
exit "$status"
