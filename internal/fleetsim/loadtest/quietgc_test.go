package loadtest

import (
	"runtime/debug"
	"testing"
)

// sink keeps the test's allocations from being optimized away.
var sink []byte

// allocate makes n bytes of garbage in 64 KiB pieces.
func allocate(n int) {
	for range n >> 16 {
		sink = make([]byte, 64<<10)
	}
}

// TestTheFleetsCollectorStaysOutOfAWindow: a window that allocates less than
// its budget runs no collection of tc-loadtest's heap, one that allocates
// more is still bounded by the budget and reports its collections, and the
// collector's settings are back as they were afterwards. Without
// quietCollector the first window collects many times (the heap is small).
func TestTheFleetsCollectorStaysOutOfAWindow(t *testing.T) {
	percent := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(percent) })
	limit := debug.SetMemoryLimit(-1)

	quiet := quietCollector(512 << 20)
	allocate(128 << 20)
	if n := quiet(); n != 0 {
		t.Errorf("a window allocating 128 MiB of a 512 MiB budget ran %d collections, want none", n)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after the window the collector's percentage is %d, want 100 again", got)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("after the window the soft memory limit is %d, want %d again", got, limit)
	}

	// A collection the limit starts may still be marking when the
	// allocation stops (CI once counted none after 256 MiB): allocate until
	// one has completed, up to 2 GiB, which no 32 MiB budget allows.
	quiet = quietCollector(32 << 20)
	start, allocated := gcCycles(), 0
	for ; gcCycles() == start && allocated < 2<<30; allocated += 64 << 20 {
		allocate(64 << 20)
	}
	if n := quiet(); n == 0 {
		t.Errorf("a window allocating %d MiB of a 32 MiB budget ran no collection: the budget does not bound it, or it is not counted", allocated>>20)
	}

	before := gcCycles()
	allocate(128 << 20)
	if gcCycles() == before {
		t.Error("128 MiB allocated at the default setting ran no collection: the test cannot tell quietCollector's effect")
	}
}
