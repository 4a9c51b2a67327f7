package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/tcctl"
)

// TestSandboxCompletionAsksTheSandbox: tcctl does not know the sandbox's
// flags or scenario names (it does not link the sandbox); its completion
// relays what tc-sandbox's own completion offers, with its directive.
func TestSandboxCompletionAsksTheSandbox(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	fake := "#!/bin/sh\nprintf '%s|' \"$@\" > " + argsFile + "\nprintf 'tamper\\nsecret\\nall\\n:4\\n'\n"
	if err := os.WriteFile(filepath.Join(dir, sandboxBinary), []byte(fake), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	root := newRoot(tcctl.Env{})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"__complete", "sandbox", "--nodes", "2", "--scenario", "s"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "tamper\nsecret\nall\n:4\n"; got != want {
		t.Errorf("tcctl offers %q, want tc-sandbox's %q", got, want)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "__complete|--nodes|2|--scenario|s|"; got != want {
		t.Errorf("tc-sandbox was asked %q, want %q", got, want)
	}
}
