// Package benchfloor measures the crypto floor of a trust report in the
// running process and reports a benchmark's cost as a multiple of it.
//
// The floor is what no report can avoid: one ECDSA P-256 verify (the
// quote's signature) and one ECDSA P-256 sign (the report's JWS) of a
// 32-byte digest. A ratio to a floor measured in the same process, right
// after the benchmark, is robust to the load of a shared machine, which
// slows both alike.
package benchfloor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Unit is the metric ReportRatio reports.
const Unit = "x-floor"

// Rounds of the floor measurement; the median round is the floor.
const (
	rounds     = 7
	iterations = 40
)

// Measure returns the floor: the median time, over a few rounds, of one
// ECDSA P-256 verify plus one ECDSA P-256 sign of a 32-byte digest.
func Measure() (time.Duration, error) {
	t0 := time.Now()
	return measure(func() time.Duration { return time.Since(t0) })
}

// MeasureCPU is Measure in the process's CPU time (user and system), which
// a loaded machine does not stretch as it stretches the wall clock.
func MeasureCPU() (time.Duration, error) { return measure(cpuTime) }

// MeasureThreadCPU is Measure in the CPU time of the calling goroutine's
// thread alone (Linux; it locks the goroutine to its thread meanwhile), for
// a process whose other goroutines keep working, as the load test's fleet
// does, and would otherwise count into the floor.
func MeasureThreadCPU() (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return measure(threadCPUTime)
}

// rusageThread is RUSAGE_THREAD of getrusage(2) (Linux).
const rusageThread = 1

// threadCPUTime is the CPU time the calling thread has used so far.
func threadCPUTime() time.Duration { return usedCPU(rusageThread) }

// cpuTime is the CPU time the process has used so far.
func cpuTime() time.Duration { return usedCPU(syscall.RUSAGE_SELF) }

// usedCPU is the user and system CPU time getrusage(2) gives for who; 0 if
// it gives none.
func usedCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(clock func() time.Duration) (time.Duration, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("crypto floor"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return 0, err
	}
	per := make([]time.Duration, 0, rounds)
	for range rounds {
		start := clock()
		for range iterations {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				panic("benchfloor: a fresh signature does not verify")
			}
			if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
				return 0, err
			}
		}
		per = append(per, (clock()-start)/iterations)
	}
	slices.Sort(per)
	return per[len(per)/2], nil
}

// Meter measures the CPU time of a benchmark loop: Start it right before
// the loop and Report after it. CPU time counts the whole process: work the
// loop stops the timer for is included.
//
// A Meter made by StartOwn also measures the share of the code under test:
// the loop runs every other part (the node side of a report, the set-up of
// the next operation) inside Exclude, and Report also reports the CPU time
// less those parts.
type Meter struct {
	start time.Duration
	// own names the code under test in metrics; "" for Start.
	own string
	// excluded is the CPU time (nanoseconds) spent inside Exclude.
	excluded atomic.Int64
}

// Start starts a Meter.
func Start() *Meter { return &Meter{start: cpuTime()} }

// StartOwn starts a Meter that also reports the CPU time of the code under
// test alone, named own: "<own>-cpu-ns" and "<own>-cpu-x-floor".
func StartOwn(own string) *Meter { return &Meter{start: cpuTime(), own: own} }

// Exclude runs fn and counts the process's CPU time while it runs as not
// the code under test. The count is the whole process's: work of other
// goroutines meanwhile (the garbage collector's too) is counted with fn,
// so fn should run while the code under test waits for it. Exclude may be
// called from another goroutine than the loop's, one call at a time.
func (m *Meter) Exclude(fn func()) {
	start := cpuTime()
	fn()
	m.excluded.Add(int64(cpuTime() - start))
}

// Report reports the CPU time per operation as "cpu-ns" and as a multiple
// of the floor measured in CPU time, "cpu-x-floor", and for a Meter of
// StartOwn the same less what ran inside Exclude, as "<own>-cpu-ns" and
// "<own>-cpu-x-floor". Call it after the loop and before ReportRatio.
func (m *Meter) Report(b *testing.B) {
	b.Helper()
	if b.N == 0 {
		return
	}
	total := cpuTime() - m.start
	per := float64(total) / float64(b.N)
	b.StopTimer()
	floor, err := MeasureCPU()
	if err != nil {
		b.Fatalf("measure the crypto floor: %v", err)
	}
	b.ReportMetric(per, "cpu-ns")
	b.ReportMetric(per/float64(floor.Nanoseconds()), "cpu-"+Unit)
	if m.own != "" {
		own := float64(total-time.Duration(m.excluded.Load())) / float64(b.N)
		b.ReportMetric(own, m.own+"-cpu-ns")
		b.ReportMetric(own/float64(floor.Nanoseconds()), m.own+"-cpu-"+Unit)
	}
}

// ReportRatio measures the floor and reports the benchmark's time per
// operation as a multiple of it (Unit), with the floor itself as
// "floor-ns". Call it after the benchmark loop; it stops the timer.
func ReportRatio(b *testing.B) {
	b.Helper()
	reportRatio(b, "", 0)
}

// ReportRatioWithout is ReportRatio, and also reports the benchmark's time
// per operation less a part of it that is not the code under test
// (partTotal, over all b.N operations): the part per operation as
// "<part>-ns" and the rest as a multiple of the same floor,
// "without-<part>-x-floor".
func ReportRatioWithout(b *testing.B, part string, partTotal time.Duration) {
	b.Helper()
	reportRatio(b, part, partTotal)
}

func reportRatio(b *testing.B, part string, partTotal time.Duration) {
	b.Helper()
	if b.N == 0 {
		return
	}
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.StopTimer()
	floor, err := Measure()
	if err != nil {
		b.Fatalf("measure the crypto floor: %v", err)
	}
	b.ReportMetric(float64(floor.Nanoseconds()), "floor-ns")
	b.ReportMetric(per/float64(floor.Nanoseconds()), Unit)
	if part != "" {
		partPer := float64(partTotal.Nanoseconds()) / float64(b.N)
		b.ReportMetric(partPer, part+"-ns")
		b.ReportMetric((per-partPer)/float64(floor.Nanoseconds()), "without-"+part+"-"+Unit)
	}
}
