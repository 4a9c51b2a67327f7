// Package eventually waits, in tests, for a condition that another
// goroutine or process makes true.
package eventually

import (
	"testing"
	"time"
)

// Poll is how often True checks its condition.
const Poll = 10 * time.Millisecond

// True checks cond every Poll until it holds; when within passes first, it
// fails the test, saying what was awaited.
func True(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(within)
	for !cond() {
		select {
		case <-timeout:
			t.Fatalf("not within %s: %s", within, what)
		case <-time.After(Poll):
		}
	}
}
