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
