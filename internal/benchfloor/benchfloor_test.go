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

// BenchmarkFloorOwn is two floors of CPU per operation, one of them run
// inside Exclude: cpu-x-floor about 2, own-cpu-x-floor about 1.
func BenchmarkFloorOwn(b *testing.B) {
	floor, err := MeasureCPU()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := StartOwn("own")
	for b.Loop() {
		spinCPU(floor)
		cpu.Exclude(func() { spinCPU(floor) })
	}
	cpu.Report(b)
}

// spinCPU spins until the process has used d more CPU time.
func spinCPU(d time.Duration) {
	for start := cpuTime(); cpuTime()-start < d; {
	}
}

func TestExcludedCPUTimeIsLeftOutOfTheOwnShare(t *testing.T) {
	m := StartOwn("own")
	spinCPU(20 * time.Millisecond)
	m.Exclude(func() { spinCPU(60 * time.Millisecond) })
	total, excluded := cpuTime()-m.start, time.Duration(m.excluded.Load())
	// The excluded part is at least what fn spun and the own share at
	// least what the loop spun outside it.
	if excluded < 60*time.Millisecond || total-excluded < 20*time.Millisecond {
		t.Fatalf("total %v, excluded %v: want excluded ≥ 60ms and the rest ≥ 20ms", total, excluded)
	}
}
