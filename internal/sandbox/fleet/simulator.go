//go:build cgo && !tc_nosimulator

package fleet

import simtools "github.com/google/go-tpm-tools/simulator"

// openResettable starts the in-process reference simulator, freshly
// manufactured (random seeds, so every node has its own EK). Its Reset is a
// platform reset: resetCount+1, PCRs cleared, persistent keys kept.
func openResettable() (resettableTPM, error) { return simtools.Get() }
