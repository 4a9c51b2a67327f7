//go:build cgo && !tc_nosimulator

package fleet_test

import (
	"context"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

// TestASecondRunInTheSameDataDirStartsVerified runs a sandbox whose node
// was tampered with, stops it and starts another in the same --data dir:
// the new run's nodes boot afresh and are Verified, whatever the verifier
// kept of the earlier run.
func TestASecondRunInTheSameDataDirStartsVerified(t *testing.T) {
	opts := testOptions(t, 1)
	ctx := context.Background()
	first, err := fleet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.WaitAllVerified(ctx, 2*time.Minute); err != nil {
		first.Stop()
		t.Fatal(err)
	}
	if _, err := first.Do(ctx, "edge-1", fleet.ControlTamper, 0); err != nil {
		first.Stop()
		t.Fatal(err)
	}
	cordoned := true
	if _, err := first.WaitStatus(ctx, "edge-1", cluster.StatusAttestationFailed, &cordoned, time.Minute); err != nil {
		first.Stop()
		t.Fatal(err)
	}
	first.Stop()

	second := startFleetWith(t, opts)
	assertUntouched(t, second, "edge-1")
}
