package clock

import (
	"testing"
	"time"
)

func TestFakeFiresWaitersOnlyWhenPassed(t *testing.T) {
	start := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	c := NewFake(start)
	ch := c.After(time.Minute)
	c.Advance(59 * time.Second)
	select {
	case <-ch:
		t.Fatal("fired 1 s early")
	default:
	}
	if c.Waiters() != 1 {
		t.Fatalf("waiters = %d, want 1", c.Waiters())
	}
	c.Advance(time.Second)
	select {
	case got := <-ch:
		if !got.Equal(start.Add(time.Minute)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("did not fire at its deadline")
	}
	if now := c.Now(); !now.Equal(start.Add(time.Minute)) {
		t.Fatalf("now = %v", now)
	}
	select {
	case <-c.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
}

func TestRealClockTellsTheTime(t *testing.T) {
	var c Clock = Real{}
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Fatalf("real clock off by %v", d)
	}
}
