//go:build cgo && !tc_nosimulator

package tpm_test

import (
	"testing"

	simtools "github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"

	"trustedcompute.io/tc/internal/tpm"
)

func TestResetCountOnSimulatorReset(t *testing.T) {
	sim, err := simtools.Get()
	if err != nil {
		t.Fatal(err)
	}
	tp := tpm.New(transport.FromReadWriteCloser(sim))
	defer tp.Close()
	before, err := tp.ResetCount()
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Reset(); err != nil {
		t.Fatal(err)
	}
	after, err := tp.ResetCount()
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Fatalf("resetCount %d after a simulator reset, want %d", after, before+1)
	}
}
