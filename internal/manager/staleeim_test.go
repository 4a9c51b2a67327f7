package manager

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/eim"
)

// lossySink is an EIM whose updates are lost while lose is set: queued,
// then failed for good (the EIM unreachable as well as the verifier).
type lossySink struct {
	fakeSink
	lose atomic.Bool
}

func (s *lossySink) Notify(hostGUID string, status eim.Status, detail string) error {
	if s.lose.Load() {
		return nil
	}
	return s.fakeSink.Notify(hostGUID, status, detail)
}

// A verifier outage withdraws a node's Verified once its evidence is too
// old, and tells the EIM once. Were that one update lost, the EIM would
// say VERIFIED for as long as the outage lasts.
func TestAStaleVerdictLostOnItsWayToTheEIMIsSentAgainWhileTheOutageLasts(t *testing.T) {
	v, nodes, sink := newFakeVerifier(newFakeClock()), newFakeNodes(), &lossySink{}
	nodes.add("edge-1", hostID(1))
	m, err := New(Config{}, Deps{Verifier: v, Nodes: nodes, Status: sink, Clock: v.clock,
		Logger: slog.New(slog.DiscardHandler), Rand: lockedRand(42)})
	if err != nil {
		t.Fatal(err)
	}
	advance := func(steps int) {
		for range steps {
			v.clock.Advance(5 * time.Minute)
			m.Tick(t.Context())
		}
	}
	m.Tick(t.Context())
	v.setDown(errUnreachable)
	sink.lose.Store(true)
	advance(27) // 2h15m: past maxEvidenceAge (2h)
	if n := nodes.get("edge-1"); n.Status != cluster.StatusUnknown || n.Ready {
		t.Fatalf("node %+v: want withdrawn", n.Node)
	}
	if got := sink.last(); !strings.Contains(got, " VERIFIED ") {
		t.Fatalf("eim = %q: want the lost update to leave VERIFIED", got)
	}
	sink.lose.Store(false)
	advance(13) // one poll duration (1h) more, the verifier still down
	if got := sink.last(); !strings.HasPrefix(got, hostID(1)+" FAILED Attestation stale: ") {
		t.Fatalf("eim = %q after an hour more of the outage: want FAILED, attestation stale; all %v", got, sink.all())
	}
	advance(24)
	if n := len(sink.all()); n > 4 {
		t.Errorf("%d eim updates in three hours of outage: want the stale verdict said again about once a poll duration", n)
	}
	t.Run("a node that claims another host id after the withdrawal is not reported on for that host", func(t *testing.T) {
		other := hostID(2)
		nodes.update("edge-1", func(n *fakeNode) { n.HostID = other })
		before := len(sink.all())
		advance(24)
		for _, u := range sink.all()[before:] {
			if strings.HasPrefix(u, other) {
				t.Fatalf("eim told %q about the claimed host", u)
			}
		}
	})
}

// The manager that withdrew a node for a verifier outage restarts, and the
// update that told the EIM was lost with it (or before it). The Node says
// unknown, so the new manager has nothing to withdraw; it must still tell
// the EIM the verdict is stale, or the EIM says VERIFIED for the rest of the
// outage.
func TestARestartedManagerTellsTheEIMOfAStaleVerdictItsPredecessorLost(t *testing.T) {
	v, nodes, sink := newFakeVerifier(newFakeClock()), newFakeNodes(), &lossySink{}
	nodes.add("edge-1", hostID(1))
	nodes.add("edge-2", hostID(2))
	start := func() *Manager {
		m, err := New(Config{}, Deps{Verifier: v, Nodes: nodes, Status: sink, Clock: v.clock,
			Logger: slog.New(slog.DiscardHandler), Rand: lockedRand(42)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := start()
	first.Tick(t.Context())
	v.setDown(errUnreachable)
	sink.lose.Store(true)
	for range 27 { // 2h15m: past maxEvidenceAge (2h)
		v.clock.Advance(5 * time.Minute)
		first.Tick(t.Context())
	}
	if n := nodes.get("edge-1"); n.Status != cluster.StatusUnknown || n.Ready {
		t.Fatalf("node %+v: want withdrawn", n.Node)
	}
	// edge-2 failed attestation before the outage: the EIM is told it
	// again, with its failure.
	nodes.update("edge-2", func(n *fakeNode) { n.Status = cluster.StatusAttestationFailed })
	if got := sink.last(); !strings.Contains(got, " VERIFIED ") {
		t.Fatalf("eim = %q: want the lost update to leave VERIFIED", got)
	}
	sink.lose.Store(false)
	before := len(sink.all())

	nodes.add("edge-3", hostID(3)) // never attested: nothing to say of it
	second := start()              // the verifier still down
	for range 13 {                 // one poll duration
		second.Tick(t.Context())
		v.clock.Advance(5 * time.Minute)
	}
	told := map[string][]string{}
	for _, u := range sink.all()[before:] {
		host, _, _ := strings.Cut(u, " ")
		told[host] = append(told[host], u)
	}
	for host, want := range map[string]string{hostID(1): " FAILED Attestation stale: ", hostID(2): "; the Node's last verdict: attestation-failed"} {
		got := told[host]
		if len(got) == 0 || !strings.HasPrefix(got[0], host+" FAILED Attestation stale: ") || !strings.Contains(got[0], want) {
			t.Errorf("eim updates for %s from the restarted manager = %q: want FAILED, attestation stale, with %q", host, got, want)
		}
		if len(got) > 2 {
			t.Errorf("%d eim updates for %s in one poll duration: want the stale verdict said about once a poll duration", len(got), host)
		}
	}
	if got := told[hostID(3)]; len(got) != 0 {
		t.Errorf("eim told %q of a node never decided", got)
	}
	if n := nodes.get("edge-1"); n.Status != cluster.StatusUnknown || n.Ready || n.Cordoned {
		t.Errorf("node %+v: want it left withdrawn, not cordoned", n.Node)
	}
}
