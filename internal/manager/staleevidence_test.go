package manager

import (
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
)

// A restarted manager finds a trusted report that the verifier made on its
// own and whose notice was lost. Its evidence is older than maxEvidenceAge,
// though the report has not expired yet (the verifier's report validity is
// longer): acting on it would make the node Verified on evidence too old to
// vouch for it. A fresh report is made instead.
func TestAReportOlderThanMaxEvidenceAgeIsNotActedOnThoughItHasNotExpired(t *testing.T) {
	e := newEnv(t, Config{PollDuration: 10 * time.Minute, MaxEvidenceAge: 20 * time.Minute}, 1)
	e.tick()
	e.wantStatus("edge-1", cluster.StatusVerified)
	old := e.v.publish(hostID(1)) // its notice is lost
	e.v.clock.Advance(30 * time.Minute)
	if !e.now().Before(old.Expiration) {
		t.Fatalf("report %s expired at %s: the test needs one that has not", old.ID, old.Expiration)
	}
	e.restart()
	calls := len(e.nodes.calls)
	e.tick()
	for _, c := range e.nodes.calls[calls:] {
		if strings.HasSuffix(c, " "+old.ID) {
			t.Fatalf("acted on report %s made 30m ago (maxEvidenceAge 20m): %q", old.ID, c)
		}
	}
	if n := e.nodes.get("edge-1"); n.Status != cluster.StatusVerified || n.LastReport == old.ID {
		t.Fatalf("node %+v: want Verified on a fresh report", n.Node)
	}
}
