package benchfloor

import (
	"runtime"
	"sync/atomic"
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

// TestTheThreadFloorLeavesOutOtherGoroutines measures the floor in thread
// CPU time while another goroutine spins: the process's CPU time counts
// both, the floor must count its own thread alone.
func TestTheThreadFloorLeavesOutOtherGoroutines(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two threads running at once")
	}
	done := make(chan struct{})
	var stopped atomic.Bool
	go func() { // spins until stopped
		defer close(done)
		for !stopped.Load() {
		}
	}()
	runtime.LockOSThread()
	p0, t0 := cpuTime(), threadCPUTime()
	floor, err := MeasureThreadCPU()
	p1, t1 := cpuTime(), threadCPUTime()
	runtime.UnlockOSThread()
	stopped.Store(true)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	process, thread := p1-p0, t1-t0
	spin := process - thread
	t.Logf("floor %v; the process used %v meanwhile, the floor's thread %v", floor, process, thread)
	if spin < thread/2 {
		t.Skipf("the spinning goroutine got %v of CPU beside the floor's %v: the machine is too busy to tell", spin, thread)
	}
	// The floor is the median of rounds of iterations: all of them took
	// about floor*rounds*iterations of its own thread. Had it counted the
	// spinning goroutine, it would be near the process's time.
	if all := floor * rounds * iterations; all > process-spin/2 {
		t.Errorf("floor × %d = %v: counts the other goroutine (process %v, thread %v)", rounds*iterations, all, process, thread)
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
