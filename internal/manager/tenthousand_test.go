package manager

import (
	"testing"
	"time"
)

// TestTenThousandNodesAreAttestedByABoundedPoolWithSpreadPolls is issue 13
// point 5 at full size: 10,000 nodes polled every hour take the pool that
// Workers sizes for them (12), no goroutine per node and none left behind,
// every node attested, the next polls spread over the jitter window. It
// takes a few seconds; -short skips it.
func TestTenThousandNodesAreAttestedByABoundedPoolWithSpreadPolls(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 nodes: a few seconds")
	}
	attestByABoundedPool(t, 10000, Workers(10000, time.Hour))
}
