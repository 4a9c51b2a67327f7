package eventually

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf ends only the goroutine it is
// called in and records the message.
type fatalRecorder struct {
	testing.TB
	fatal atomic.Bool
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(string, ...any) {
	r.fatal.Store(true)
	runtime.Goexit()
}

func TestTrueWaitsForItsConditionOrFails(t *testing.T) {
	tests := []struct {
		name      string
		trueAfter int // the call of cond that returns true first; 0: never
		wantFatal bool
	}{
		{"a condition that holds at once passes", 1, false},
		{"a condition that holds after a few polls passes", 5, false},
		{"a condition that never holds fails the test", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fatalRecorder{TB: t}
			calls := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				True(r, 200*time.Millisecond, "the test's condition", func() bool {
					calls++
					return calls == tt.trueAfter
				})
			}()
			<-done
			if got := r.fatal.Load(); got != tt.wantFatal {
				t.Fatalf("failed = %v after %d calls, want %v", got, calls, tt.wantFatal)
			}
		})
	}
}
