// Package errtest checks the error of a table test's case against the
// substrings the case wants it to mention, the one way the project's table
// tests do it.
package errtest

import (
	"strings"
	"testing"
)

// Want checks err against want, the substrings the error must mention;
// empty strings are skipped, so a case whose wantErr is "" wants no error.
// An error that is not wanted, or no error where one is, fails the test at
// once; each substring the error lacks is reported. Want returns whether
// the case goes on to check its result: true when it wants no error (and
// got none), false when it wanted an error.
func Want(t testing.TB, err error, want ...string) bool {
	t.Helper()
	var subs []string
	for _, w := range want {
		if w != "" {
			subs = append(subs, w)
		}
	}
	if len(subs) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", subs)
	}
	for _, w := range subs {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	return false
}
