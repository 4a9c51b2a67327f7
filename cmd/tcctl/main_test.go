package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSandboxShowsATrustedNodeAndACaughtTamper runs `tcctl sandbox` as a user
// would (in-process simulator) and checks what it prints.
func TestSandboxShowsATrustedNodeAndACaughtTamper(t *testing.T) {
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"sandbox"})
	if err := root.Execute(); err != nil {
		t.Fatalf("tcctl sandbox: %v\n%s", err, out.String())
	}
	for _, want := range []string{"secure boot (from the quoted PCR 7 events): true", "verdict: TRUSTED", "verdict: NOT TRUSTED", "fault IMAReplay"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
