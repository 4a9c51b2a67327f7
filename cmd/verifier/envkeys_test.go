package main

import (
	"fmt"
	"testing"

	"trustedcompute.io/tc/internal/config"
)

// TestPrintEnvKeys prints every environment variable the binary reads, for
// the docs check in test/deps.
func TestPrintEnvKeys(t *testing.T) {
	keys := config.EnvKeys(defaultConfig())
	if len(keys) == 0 {
		t.Fatal("no env keys")
	}
	for _, k := range keys {
		fmt.Println("ENVKEY", k)
	}
}
