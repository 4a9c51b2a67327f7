// Package configtest holds what the binaries' config tests share.
package configtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/config"
)

// PrintEnvKeys prints one "ENVKEY <name>" line per environment variable cfg
// reads, for the docs check in test/deps (it runs each binary's
// TestPrintEnvKeys with -v); the test fails when cfg reads none.
func PrintEnvKeys(t testing.TB, cfg any) {
	t.Helper()
	keys := config.EnvKeys(cfg)
	if len(keys) == 0 {
		t.Fatal("the configuration reads no environment variable")
	}
	for _, k := range keys {
		fmt.Println("ENVKEY", k)
	}
}

// Env is a getenv that reads m (nil: an empty environment).
func Env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// File writes content to config.yaml in a directory of the test's own and
// returns its path; empty content writes no file and returns "" (no file to
// load).
func File(t testing.TB, content string) string {
	t.Helper()
	if content == "" {
		return ""
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
