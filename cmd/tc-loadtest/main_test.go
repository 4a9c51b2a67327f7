package main

import (
	"io"
	"strings"
	"testing"
)

// TestAVerifierEnvironmentEntryMustBeKeyEqualsValue: -verifier-env takes
// KEY=VALUE only, and a bad one stops tc-loadtest before it starts anything.
func TestAVerifierEnvironmentEntryMustBeKeyEqualsValue(t *testing.T) {
	for _, bad := range []string{"GOGC", "=200", ""} {
		err := run(t.Context(), []string{"-verifier-env", bad, "-verifier", "/nonexistent"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
			t.Errorf("-verifier-env %q: %v, want a KEY=VALUE error", bad, err)
		}
	}
}
