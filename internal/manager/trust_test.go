package manager

import (
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
)

// TestAVerifierOutageWithdrawsVerifiedOnceTheEvidenceIsTooOldWithoutCordoning
// plays a verifier unreachable for three hours (poll 60 minutes): the node
// used to stay Verified and ready the whole time.
func TestAVerifierOutageWithdrawsVerifiedOnceTheEvidenceIsTooOldWithoutCordoning(t *testing.T) {
	e := newEnv(t, Config{EvictNamespaces: []string{"apps"}}, 1)
	e.tick()
	e.wantStatus("edge-1", cluster.StatusVerified)
	verifiedAt := e.now()
	e.v.setDown(errUnreachable)

	for e.now().Sub(verifiedAt) < 3*time.Hour {
		e.advance(5 * time.Minute)
		age := e.now().Sub(verifiedAt)
		n := e.nodes.get("edge-1")
		switch {
		case age < 2*time.Hour && (n.Status != cluster.StatusVerified || !n.Ready):
			t.Fatalf("after %s (evidence younger than maxEvidenceAge) node %+v: want still Verified and ready", age, n.Node)
		case age >= 2*time.Hour+time.Minute && (n.Status != cluster.StatusUnknown || n.Ready):
			t.Fatalf("after %s (evidence older than maxEvidenceAge 2h) node %+v: want status unknown, not ready", age, n.Node)
		}
	}
	n := e.nodes.get("edge-1")
	if n.Cordoned || e.nodes.cordons != 0 || e.nodes.evictions != 0 || len(e.nodes.failed) != 0 {
		t.Fatalf("a verifier outage cordoned or drained: %+v, calls %v", n.Node, e.nodes.calls)
	}
	if n.condition != "Unknown" || e.nodes.count("withdraw edge-1 VerifierUnreachable verifier unreachable and the last evidence is from") != 1 {
		t.Fatalf("condition %s, calls %v: want one withdrawal saying why", n.condition, e.nodes.calls)
	}
	if !slices.Contains(e.nodes.events, "VerifierUnreachable edge-1") {
		t.Fatalf("no Event: %v", e.nodes.events)
	}
	if got := e.sink.last(); !strings.HasPrefix(got, hostID(1)+" FAILED Attestation stale: ") || !strings.Contains(got, "maxEvidenceAge 2h0m0s") {
		t.Fatalf("eim = %q, want FAILED with a stale detail", got)
	}

	// The verifier is back: fresh evidence, Verified and ready again (a
	// withdrawal is not a failure: no onboarding needed).
	e.v.setDown(nil)
	e.advance(time.Hour)
	if n := e.nodes.get("edge-1"); n.Status != cluster.StatusVerified || !n.Ready {
		t.Fatalf("after the outage node %+v: want Verified and ready", n.Node)
	}
}

func TestARestartedManagerThatCannotReachTheVerifierDoesNotVouchForEvidenceOfUnknownAge(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	e.v.setDown(errUnreachable)
	e.restart()
	e.tick()
	if n := e.nodes.get("edge-1"); n.Status != cluster.StatusUnknown || n.Ready || n.Cordoned {
		t.Fatalf("node %+v: want withdrawn (unknown, not ready), not cordoned", n.Node)
	}
}

func TestANodesOwnPollDurationCannotStretchItsEvidenceBeyondMaxEvidenceAge(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.nodes.update("edge-1", func(n *fakeNode) { n.PollDuration = "168h" })
	e.tick()
	reports := e.v.count("report")
	e.advance(2*time.Hour + time.Second)
	if got := e.v.count("report"); got != reports+1 {
		t.Fatalf("reports = %d, want %d: a node asking for a week between polls is attested within maxEvidenceAge", got, reports+1)
	}
	e.wantStatus("edge-1", cluster.StatusVerified)
}

func TestMaxEvidenceAgeDefaultsToTwicePollDurationAndIsConfigurable(t *testing.T) {
	if got := (Config{PollDuration: 30 * time.Minute}).WithDefaults().MaxEvidenceAge; got != time.Hour {
		t.Fatalf("default max evidence age = %s, want 1h", got)
	}
	if got := (Config{MaxEvidenceAge: 5 * time.Hour}).WithDefaults().MaxEvidenceAge; got != 5*time.Hour {
		t.Fatalf("max evidence age = %s, want 5h", got)
	}
	if err := (Config{MaxEvidenceAge: time.Minute}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "max evidence age") {
		t.Fatalf("Validate = %v, want a max evidence age below the poll duration refused", err)
	}
}

func TestAnUnreachableAgentStillFailsTheNodeAndSaysSo(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.tick()
	r := newReport(hostID(1)).id("offline").at(e.now()).fault("ConnectionFailure").build()
	r.HostStatus, r.ResetCount = "CONNECTION_FAILURE", 0
	r.TrustInformation.Overall = false
	e.v.put(r)
	e.m.ReportPublished(hostID(1))
	e.tick()
	e.wantStatus("edge-1", cluster.StatusAttestationFailed)
	if n := e.nodes.get("edge-1"); !n.Cordoned {
		t.Fatalf("node %+v: want cordoned", n.Node)
	}
	if got := e.sink.last(); !strings.Contains(got, "FAILED agent unreachable (host status CONNECTION_FAILURE)") {
		t.Fatalf("eim = %q, want the agent named unreachable", got)
	}
}

// TestANodeClaimingABoundHostIsRefusedAndReported plays a node that claims
// a healthy host's id: the verifier's registration used to fall back to the
// existing host, and the claiming node got that host's verdict.
func TestANodeClaimingABoundHostIsRefusedAndReported(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
	}{
		{"a second node claiming a bound host id", func(e *env) {
			e.nodes.add("edge-evil", hostID(1))
		}},
		{"a verified node moving to another node's host id", func(e *env) {
			e.nodes.add("edge-evil", hostID(9))
			e.advance(DefaultRefreshInterval)
			e.wantStatus("edge-evil", cluster.StatusVerified)
			e.nodes.update("edge-evil", func(n *fakeNode) { n.HostID = hostID(1) })
		}},
		{"a verified node moving to a fresh host id", func(e *env) {
			e.nodes.add("edge-evil", hostID(9))
			e.advance(DefaultRefreshInterval)
			e.wantStatus("edge-evil", cluster.StatusVerified)
			e.nodes.update("edge-evil", func(n *fakeNode) { n.HostID = hostID(10) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, 1)
			e.tick()
			e.wantStatus("edge-1", cluster.StatusVerified)
			tt.setup(e)
			eim := len(e.sink.all())
			e.advance(DefaultRefreshInterval)

			evil := e.nodes.get("edge-evil")
			if evil.Status != cluster.StatusUnknown || evil.Ready || evil.condition != "Unknown" {
				t.Fatalf("claiming node %+v (condition %s): want unknown, not ready", evil.Node, evil.condition)
			}
			if e.nodes.count("withdraw edge-evil HostClaimRefused host claim refused") != 1 ||
				!slices.Contains(e.nodes.events, "HostClaimRefused edge-evil") {
				t.Fatalf("refusal not reported: calls %v events %v", e.nodes.calls, e.nodes.events)
			}
			// Of the host the node claimed before, its own, the EIM hears
			// that its verdict is stale; of the claimed host, nothing.
			for _, m := range e.sink.all()[eim:] {
				if !strings.HasPrefix(m, hostID(9)+" FAILED Attestation stale: the node no longer claims this host") {
					t.Fatalf("the EIM was told about the claimed host: %v", e.sink.all()[eim:])
				}
			}
			// The victim keeps its verdict and its reports.
			e.wantStatus("edge-1", cluster.StatusVerified)
			e.v.set(hostID(1), func(h *simHost) { h.tampered = true })
			e.v.publish(hostID(1))
			e.m.ReportPublished(hostID(1))
			e.tick()
			e.wantStatus("edge-1", cluster.StatusAttestationFailed)
			if got := e.nodes.get("edge-evil").Status; got != cluster.StatusUnknown {
				t.Fatalf("the victim's report was acted on for the claiming node: %s", got)
			}
		})
	}
}

// TestDriftOfTheVerdictIsRevertedWithinOneRefresh: whoever changes the
// manager's labels, taint or cordon, the next pass puts them back.
func TestDriftOfTheVerdictIsRevertedWithinOneRefresh(t *testing.T) {
	tests := []struct {
		name   string
		failed bool
		drift  func(n *fakeNode)
		check  func(n fakeNode) bool
	}{
		{"a ready label added to a node verified without disk encryption is removed", false,
			func(n *fakeNode) { n.Ready = true },
			func(n fakeNode) bool { return !n.Ready && n.Status == cluster.StatusVerified }},
		{"a verified status set on a failed node is reverted", true,
			func(n *fakeNode) { n.Status, n.Ready = cluster.StatusVerified, true },
			func(n fakeNode) bool { return n.Status == cluster.StatusAttestationFailed && !n.Ready }},
		{"a removed taint on a failed node is put back", true,
			func(n *fakeNode) { n.Tainted = false },
			func(n fakeNode) bool { return n.Tainted }},
		{"an uncordoned failed node is cordoned again", true,
			func(n *fakeNode) { n.Cordoned = false },
			func(n fakeNode) bool { return n.Cordoned }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, 1)
			e.v.set(hostID(1), func(h *simHost) { h.noDiskCrypt, h.tampered = true, tt.failed })
			e.tick()
			before := e.nodes.get("edge-1")
			e.nodes.update("edge-1", tt.drift)
			e.advance(DefaultRefreshInterval)
			if n := e.nodes.get("edge-1"); !tt.check(n) {
				t.Fatalf("after one refresh node %+v (before the drift %+v): drift not reverted", n.Node, before.Node)
			}
			if e.v.count("report") != 2 { // before and after the first baseline
				t.Fatalf("reports = %d: reverting drift is no attestation", e.v.count("report"))
			}
		})
	}
}
