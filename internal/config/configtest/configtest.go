// Package configtest holds what the binaries' config tests share.
package configtest

import (
	"os"
	"testing"

	"trustedcompute.io/tc/internal/config"
)

// PrintEnvKeys prints one "ENVKEY <name>" line per environment variable cfg
// reads, for the docs check in test/deps (it runs each binary's
// TestPrintEnvKeys with -v); the test fails when cfg reads none.
func PrintEnvKeys(t testing.TB, cfg any) {
	t.Helper()
	if err := config.PrintEnvKeys(os.Stdout, cfg); err != nil {
		t.Fatal(err)
	}
}
