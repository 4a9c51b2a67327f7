package hostlimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/eventually"
)

var t0 = time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)

func TestAHostGetsItsBurstAndThenATurnAnInterval(t *testing.T) {
	clk := clock.NewFake(t0)
	l := New(clk, time.Second, 2)
	type step struct {
		name           string
		host           string
		advance        time.Duration
		wantOK, wantTo bool
	}
	steps := []step{
		{"the first turn of the burst", "a", 0, true, false},
		{"the second turn of the burst", "a", 0, true, false},
		{"a third at once is refused and told", "a", 0, false, true},
		{"a fourth at once is refused quietly", "a", 0, false, false},
		{"another host has its own burst", "b", 0, true, false},
		{"half an interval later there is still no turn", "a", 500 * time.Millisecond, false, false},
		{"an interval after the burst there is one turn", "a", 500 * time.Millisecond, true, false},
		{"and then a refusal is told again", "a", 0, false, true},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		ok, tell := l.Allow(s.host)
		if ok != s.wantOK || tell != s.wantTo {
			t.Fatalf("%s: Allow(%q) = %v, %v, want %v, %v", s.name, s.host, ok, tell, s.wantOK, s.wantTo)
		}
	}
}

func TestNextPutsOffAHostWithoutPushingItsTurnFurther(t *testing.T) {
	clk := clock.NewFake(t0)
	l := New(clk, 10*time.Second, 1)
	if d := l.Next("a"); d != 0 {
		t.Fatalf("the first call waits %s, want its turn now", d)
	}
	for i := range 100 {
		if d := l.Next("a"); !near(d, 10*time.Second) {
			t.Fatalf("call %d right after the turn waits %s, want 10s", i, d)
		}
	}
	clk.Advance(4 * time.Second)
	if d := l.Next("a"); !near(d, 6*time.Second) {
		t.Fatalf("4s later the call waits %s, want 6s (the calls before took nothing)", d)
	}
	clk.Advance(6 * time.Second)
	if d := l.Next("a"); d != 0 {
		t.Fatalf("at the turn the call waits %s, want 0", d)
	}
	if got := l.Limited(); got != 101 {
		t.Fatalf("%d calls counted as put off, want 101", got)
	}
}

func TestFoldRunsOnceATurnAndNeverLosesTheLastCall(t *testing.T) {
	clk := clock.NewFake(t0)
	l := New(clk, time.Second, 1)
	ran := make(chan struct{}, 100)
	fn := func() { ran <- struct{}{} }
	if got := l.Fold(t.Context(), "a", fn); got != Ran {
		t.Fatalf("first call: %v, want Ran", got)
	}
	<-ran
	if got := l.Fold(t.Context(), "a", fn); got != Deferred {
		t.Fatalf("second call: %v, want Deferred", got)
	}
	for i := range 1000 {
		if got := l.Fold(t.Context(), "a", fn); got != Folded {
			t.Fatalf("call %d of the flood: %v, want Folded", i, got)
		}
	}
	if got := l.Fold(t.Context(), "b", fn); got != Ran {
		t.Fatalf("another host's call during the flood: %v, want Ran", got)
	}
	<-ran
	select {
	case <-ran:
		t.Fatal("the deferred call ran before the host's next turn")
	case <-time.After(50 * time.Millisecond):
	}
	eventually.True(t, 5*time.Second, "a deferred call waiting on the clock", func() bool { return clk.Waiters() > 0 })
	clk.Advance(time.Second)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the deferred call did not run at the host's next turn")
	}
	select {
	case <-ran:
		t.Fatal("the folded calls ran too")
	case <-time.After(50 * time.Millisecond):
	}
	// A call after the deferred one ran waits for a turn of its own.
	if got := l.Fold(t.Context(), "a", fn); got != Deferred {
		t.Fatalf("a call after the deferred run: %v, want Deferred", got)
	}
}

func TestADeferredCallDoesNotRunAfterItsContextEnds(t *testing.T) {
	clk := clock.NewFake(t0)
	l := New(clk, time.Second, 1)
	var runs atomic.Int32
	fn := func() { runs.Add(1) }
	ctx, cancel := context.WithCancel(t.Context())
	l.Fold(ctx, "a", fn)
	if got := l.Fold(ctx, "a", fn); got != Deferred {
		t.Fatalf("second call: %v, want Deferred", got)
	}
	cancel()
	// Once the waiting call has gone, the host can defer again.
	eventually.True(t, 5*time.Second, "the call deferred under the ended context gone", func() bool {
		return l.Fold(t.Context(), "a", func() {}) != Folded
	})
	if n := runs.Load(); n != 1 {
		t.Fatalf("fn ran %d times, want once (not after its context ended)", n)
	}
}

func TestIdleHostsAreForgotten(t *testing.T) {
	clk := clock.NewFake(t0)
	l := New(clk, time.Second, 2)
	const n = 5000
	for i := range n {
		l.Allow(fmt.Sprint("old-", i))
	}
	clk.Advance(10 * time.Second) // every old host's budget is full again
	for i := range n {
		l.Allow(fmt.Sprint("new-", i))
	}
	if got := l.Len(); got > n+minSweep {
		t.Fatalf("the limiter remembers %d hosts after %d idle and %d active ones, want at most %d", got, n, n, n+minSweep)
	}
	// A forgotten host has its whole burst, as it would have had.
	for i := range 2 {
		if ok, _ := l.Allow("old-0"); !ok {
			t.Fatalf("turn %d of a forgotten host was refused", i+1)
		}
	}
	if ok, _ := l.Allow("old-0"); ok {
		t.Fatal("a forgotten host got more than its burst")
	}
}

// near: d is want give or take the rate's rounding (a millisecond).
func near(d, want time.Duration) bool { return (d - want).Abs() < time.Millisecond }
