package manager

import (
	"testing"

	"trustedcompute.io/tc/internal/cluster"
)

// Root on a node may write its own Node's annotations with the kubelet's
// credentials. Naming the failing report the verifier published in
// trustedcompute.io/last-report, the "already acted on" mark, must not keep
// the manager from acting on it, whether it has run all along or has just
// restarted.
func TestANodeThatNamesAFailingReportAsActedOnIsStillFailed(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "a running manager"
		if restart {
			name = "a restarted manager"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{}, 1)
			e.tick()
			e.wantStatus("edge-1", cluster.StatusVerified)
			e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
			r := e.v.publish(hostID(1))
			if r.Trusted() {
				t.Fatal("the tampered host's report is trusted")
			}
			e.nodes.update("edge-1", func(n *fakeNode) { n.LastReport = r.ID }) // the node's own write
			if restart {
				e.restart()
			}
			e.m.ReportPublished(hostID(1))
			e.tick()
			e.wantStatus("edge-1", cluster.StatusAttestationFailed)
			if !e.nodes.get("edge-1").Cordoned {
				t.Fatal("the failed node is not cordoned")
			}
		})
	}
}

// A running manager keeps its own memory of what it acted on: a node that
// names a failing report as acted on and also writes the failed verdict's
// labels itself (so that its verdict seems to agree with the report's) is
// failed and cordoned by the manager all the same.
func TestANodeThatAlsoWritesAFailedVerdictCannotMarkTheFailureAsActedOn(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.wantStatus("edge-1", cluster.StatusVerified)
	e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
	r := e.v.publish(hostID(1))
	e.nodes.update("edge-1", func(n *fakeNode) { // the node's own writes
		n.LastReport, n.Status, n.Ready = r.ID, cluster.StatusAttestationFailed, false
	})
	e.m.ReportPublished(hostID(1))
	e.tick()
	if !e.nodes.get("edge-1").Cordoned {
		t.Fatalf("the node that wrote its own failed verdict and named the failing report is not cordoned: calls %v", e.nodes.calls)
	}
}

// A restarted manager does not act again on a trusted report that the
// Verified Node names as acted on: where the Node's verdict agrees with the
// report's, the mark still spares writing the verdict twice.
func TestARestartedManagerDoesNotActAgainOnATrustedReportTheNodeNames(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.wantStatus("edge-1", cluster.StatusVerified)
	verified := e.nodes.count("verified")
	e.restart()
	e.tick()
	if got := e.nodes.count("verified"); got != verified {
		t.Fatalf("marked Verified %d times after the restart, want none", got-verified)
	}
}
