package hvs

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Issue 14: each host's last attempt and last success, overdue hosts, and the
// scheduled refresh shared by replicas on one database.

func TestAReportRecordsItsAttemptAndOnlyAReportFromEvidenceIsASuccess(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	first := mustReport(t, e, n.id)
	e.clock.Advance(time.Minute)
	e.agent.set(func(f *fakeAgent) {
		f.err = &agentclient.RequestError{HostID: n.id, Request: bus.QuoteRequest, Kind: agentclient.ErrNoResponders}
	})
	second := mustReport(t, e, n.id)
	h, err := e.st.HostByID(t.Context(), n.id)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LastAttempt.Equal(second.Created) || !h.LastSuccess.Equal(first.Created) {
		t.Errorf("last attempt %v, last success %v; want the failed report's time %v and the first report's %v",
			h.LastAttempt, h.LastSuccess, second.Created, first.Created)
	}
}

func TestAHostIsOverdueOnceItsLastSuccessIsOlderThanOneAndAHalfIntervals(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n}, func(cfg *Config, _ *Deps) { cfg.Interval = time.Hour })
	e.baseline(t, n)
	mustReport(t, e, n.id)
	view := func() restapi.Host {
		t.Helper()
		h, err := e.st.HostByID(t.Context(), n.id)
		if err != nil {
			t.Fatal(err)
		}
		return e.svc.hostView(h, nil)
	}
	tests := []struct {
		name    string
		advance time.Duration
		disable bool
		overdue bool
	}{
		{"a host attested an hour ago is not overdue", time.Hour, false, false},
		{"a host attested 89 minutes ago is not overdue", 29 * time.Minute, false, false},
		{"a host attested 91 minutes ago is overdue", 2 * time.Minute, false, true},
		{"a disabled host is never overdue", 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			v := view()
			if tt.disable {
				if err := e.st.DisableHost(t.Context(), n.id, e.clock.Now()); err != nil {
					t.Fatal(err)
				}
				vs := []restapi.Host{v}
				if err := e.svc.markDisabled(t.Context(), vs); err != nil {
					t.Fatal(err)
				}
				v = vs[0]
			}
			if v.Overdue != tt.overdue || v.LastSuccess == nil || v.LastAttempt == nil {
				t.Errorf("overdue %v (last success %v, last attempt %v), want overdue %v and both times",
					v.Overdue, v.LastSuccess, v.LastAttempt, tt.overdue)
			}
		})
	}
}

func TestReplicasOnOneDatabaseQueueEachDueHostOnceAndTakeOverADeadReplicasHosts(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "verifier.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var nodes []*node
	for _, id := range []string{"edge-1", "edge-2", "edge-3", "edge-4", "edge-5", "edge-6"} {
		nodes = append(nodes, newNode(t, id))
	}
	replica := func(name string) envOption {
		return func(cfg *Config, _ *Deps) { cfg.Replica, cfg.QueueSize = name, 4 }
	}
	a := newEnvOn(t, st, nodes, replica("a"))
	b := newEnvOn(t, st, nodes, replica("b"))
	b.clock = a.clock
	b.svc.cfg.Now = a.clock.Now
	for _, n := range nodes {
		a.register(t, n)
	}
	ctx := context.Background()
	// Both replicas refresh at once: a takes 4 (its queue's room), b the rest.
	qa, qb := a.svc.refreshOnce(ctx), b.svc.refreshOnce(ctx)
	got := append(drain(a.svc), drain(b.svc)...)
	slices.Sort(got)
	if qa != 4 || qb != 2 || len(slices.Compact(slices.Clone(got))) != len(got) || len(got) != len(nodes) {
		t.Fatalf("replicas queued %d and %d hosts: %v; want 4 and 2, each host once", qa, qb, got)
	}
	// Replica a dies with its hosts queued. Until its claims lapse (half the
	// refresh margin) b leaves them alone; then b takes them.
	if q := b.svc.refreshOnce(ctx); q != 0 {
		t.Errorf("replica b queued %d hosts claimed by a live replica", q)
	}
	b.clock.Advance(b.svc.cfg.RefreshMargin / 2)
	if q := b.svc.refreshOnce(ctx); q != 4 {
		t.Errorf("replica b queued %d hosts after a's claims lapsed, want 4 (a's and its own, none reported)", q)
	}
}

func drain(s *Service) []string {
	var ids []string
	for len(s.queue) > 0 {
		id := <-s.queue
		s.pending.Delete(id)
		ids = append(ids, id)
	}
	return ids
}

// twoReplicasOneDue starts replicas a and b of one SQLite database, on one
// clock, with one baselined node, whose host a has claimed and queued.
func twoReplicasOneDue(t *testing.T) (*store.Store, *node, *env, *env) {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "verifier.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n := newNode(t, "edge-1")
	replica := func(name string) envOption {
		return func(cfg *Config, _ *Deps) { cfg.Replica = name }
	}
	a := newEnvOn(t, st, []*node{n}, replica("a"))
	b := newEnvOn(t, st, []*node{n}, replica("b"))
	b.clock = a.clock
	b.svc.cfg.Now = a.clock.Now
	a.baseline(t, n)
	if q := a.svc.refreshOnce(t.Context()); q != 1 {
		t.Fatalf("replica a queued %d hosts, want the one due", q)
	}
	return st, n, a, b
}

// A replica claims a due host, but its report waits in the queue past the
// claim (a loaded machine); another replica claims the host meanwhile and
// attests it. The first replica's worker then skips the host: before, both
// attested it together (test/e2e/replicas counted "reports made twice in
// one round" on a loaded CI machine).
func TestAReportThatWaitedPastItsClaimIsLeftToTheReplicaThatClaimedItSince(t *testing.T) {
	st, n, a, b := twoReplicasOneDue(t)
	ctx := t.Context()
	a.clock.Advance(a.svc.cfg.RefreshMargin / 2) // a's claim lapses, its report still queued
	if q := b.svc.refreshOnce(ctx); q != 1 {
		t.Fatalf("replica b queued %d hosts after a's claim lapsed, want 1", q)
	}
	b.svc.runQueued(ctx, <-b.svc.queue)
	a.svc.runQueued(ctx, <-a.svc.queue)
	rs, err := st.ListReports(ctx, store.ReportFilter{HostID: n.id})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d reports of the host, want 1 (made by the replica that holds the claim)", len(rs))
	}

	// A claim nobody took over is kept: a's next refresh is attested.
	a.clock.Advance(time.Hour)
	if q := a.svc.refreshOnce(ctx); q != 1 {
		t.Fatalf("replica a queued %d hosts an hour later, want 1", q)
	}
	a.svc.runQueued(ctx, <-a.svc.queue)
	if rs, _ := st.ListReports(ctx, store.ReportFilter{HostID: n.id}); len(rs) != 2 {
		t.Fatalf("%d reports after a's own claimed refresh, want 2", len(rs))
	}
}

// A replica whose queue drains slower than a claim lives (a loaded
// machine) keeps renewing the claims of the hosts it queued at each tick:
// another replica took them over after the lapse, each then left the host
// to the other, and in the replicas' test three hosts went unattested for
// a whole interval.
func TestAReplicaKeepsTheClaimsOfTheHostsItStillHasQueued(t *testing.T) {
	st, n, a, b := twoReplicasOneDue(t)
	ctx := t.Context()
	// The report waits in a's queue for three claim lives; a ticks.
	life, queued := a.svc.cfg.RefreshMargin/2, a.clock.Now()
	for range 6 {
		a.clock.Advance(life / 2)
		if q := b.svc.refreshOnce(ctx); q != 0 {
			t.Fatalf("replica b claimed %d hosts %s after a queued them, want none: a still has the host queued", q, a.clock.Now().Sub(queued))
		}
		a.svc.refreshOnce(ctx)
	}
	a.svc.runQueued(ctx, <-a.svc.queue)
	if rs, _ := st.ListReports(ctx, store.ReportFilter{HostID: n.id}); len(rs) != 1 {
		t.Fatalf("%d reports of the host, want 1 by replica a", len(rs))
	}
	// Once a has started it, nothing renews the claim: were a to die, b
	// takes the host over when it is due again.
	a.clock.Advance(time.Hour)
	if q := b.svc.refreshOnce(ctx); q != 1 {
		t.Fatalf("replica b queued %d hosts an hour later, want 1", q)
	}
}
