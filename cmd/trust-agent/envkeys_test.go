package main

import (
	"os"
	"testing"

	"trustedcompute.io/tc/internal/config"
)

// TestPrintEnvKeys prints every environment variable the binary reads, for
// the docs check in test/deps.
func TestPrintEnvKeys(t *testing.T) {
	if err := config.PrintEnvKeys(os.Stdout, defaultConfig()); err != nil {
		t.Fatal(err)
	}
}
