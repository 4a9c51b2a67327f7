package loadtest

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// windowHeapBudget is how much a measured window may allocate in this
// process before its collector runs again (quietCollector). At 10,000 nodes
// the fleet allocates about 30 MB/s, so a one-minute window needs 2 GB.
const windowHeapBudget = 4 << 30

// quietCollector keeps this process's garbage collector out of a measured
// window, and says whether it stayed out.
//
// The simulated fleet lives in this process: at 10,000 nodes about 850 MB
// of live heap, whose marking takes 1 to 2 s of the cores the verifier
// shares. The reports due then wait for their simulated agents, and the
// window's tail is the simulator's, not the verifier's. In a real fleet
// every agent runs on its own node, with a heap of a few megabytes.
//
// quietCollector collects once, then turns the collector's percentage off
// under a soft memory limit of what the process holds now plus budget: it
// collects again only if the window allocates more than budget. The returned
// function restores both settings and returns the collections that ran in
// between, which the window reports.
func quietCollector(budget int64) (restore func() (collections uint64)) {
	runtime.GC()
	before := gcCycles()
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(heldBytes() + budget)
	return func() uint64 {
		n := gcCycles() - before
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
		return n
	}
}

// gcCycles is the number of collections this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heldBytes is the memory the runtime's soft limit counts: what it has
// mapped, less what it has returned to the system.
func heldBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}
