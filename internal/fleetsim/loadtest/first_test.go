package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/verifier/report"
)

// countingReporter answers every report and counts them by host.
type countingReporter struct {
	mu    sync.Mutex
	asked map[string]int
}

func (c *countingReporter) CreateReport(_ context.Context, hostID string) (*report.Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked[hostID]++
	return &report.Report{HostID: hostID}, nil
}

func TestFirstReportsAskOnceForEveryNewNode(t *testing.T) {
	nodes := make([]*fleetsim.Node, 100)
	for i := range nodes {
		nodes[i] = &fleetsim.Node{HostID: fmt.Sprintf("sim-%05d", i+1)}
	}
	rep := &countingReporter{asked: map[string]int{}}
	d := &driver{manager: rep, logger: slog.New(slog.DiscardHandler)}
	took, _ := d.firstReports(t.Context(), nodes[40:], 16)
	if took <= 0 {
		t.Fatalf("took %s", took)
	}
	if len(rep.asked) != 60 {
		t.Fatalf("asked for %d hosts, want the 60 new ones", len(rep.asked))
	}
	for _, n := range nodes[40:] {
		if rep.asked[n.HostID] != 1 {
			t.Fatalf("%s asked %d times, want once", n.HostID, rep.asked[n.HostID])
		}
	}
}
