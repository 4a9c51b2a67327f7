package benchfloor

import (
	"testing"
	"time"
)

func TestTheFloorIsAPositiveFewMicroseconds(t *testing.T) {
	floor, err := Measure()
	if err != nil {
		t.Fatal(err)
	}
	// One P-256 sign + verify is tens of microseconds on any machine that
	// runs these tests; far outside that, the measurement is broken.
	if floor < time.Microsecond || floor > 50*time.Millisecond {
		t.Fatalf("floor %v", floor)
	}
}

// BenchmarkFloor is the floor as a benchmark: its ratio is about 1.
func BenchmarkFloor(b *testing.B) {
	floor, err := Measure()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := Start()
	for b.Loop() {
		busy(floor)
	}
	cpu.Report(b)
	ReportRatio(b)
}

// busy spins for d, as a stand-in for work that costs one floor.
func busy(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// BenchmarkFloorWithout is two floors per operation, one of them a part
// reported apart: x-floor about 2, without-part-x-floor about 1.
func BenchmarkFloorWithout(b *testing.B) {
	floor, err := Measure()
	if err != nil {
		b.Fatal(err)
	}
	var part time.Duration
	b.ResetTimer()
	for b.Loop() {
		busy(floor)
		start := time.Now()
		busy(floor)
		part += time.Since(start)
	}
	ReportRatioWithout(b, "part", part)
}
