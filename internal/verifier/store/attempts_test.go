package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/pgtest"
)

// Attempts and claims run through SQLite (file) and PostgreSQL
// (TC_TEST_POSTGRES_URL); the claim races run with two stores on one database,
// as two verifier replicas do.

func TestAttemptsSQLite(t *testing.T) {
	t.Parallel()
	runAttemptsSuite(t, sqliteFileDSN)
}

func TestAttemptsPostgres(t *testing.T) {
	t.Parallel()
	newDSN := pgtest.Schemas(t)
	runAttemptsSuite(t, func(t *testing.T) string { return newDSN(t) })
}

func runAttemptsSuite(t *testing.T, newDSN func(t *testing.T) string) {
	tests := []struct {
		name string
		test func(t *testing.T, newDSN func(t *testing.T) string)
	}{
		{"an attempt moves last attempt and a success also last success, never backwards", testHostAttempts},
		{"a host is overdue when its last success, or its registration, is older than the bound", testOverdue},
		{"a host claimed by one replica is not claimed by another until the claim lapses", testClaimLapses},
		{"a replica renews the claims it still holds on its queued hosts, not one another took", testKeepRefreshClaims},
		{"disabled hosts and hosts with a fresh report are not claimed", testClaimSkips},
		{"two replicas claiming at once never get the same host and together get all", testClaimRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, newDSN) })
	}
}

func testHostAttempts(t *testing.T, newDSN func(t *testing.T) string) {
	ctx := t.Context()
	s := openTest(t, newDSN(t))
	must(t, "CreateHost", s.CreateHost(ctx, host("h1")))
	h, err := s.HostByID(ctx, "h1")
	must(t, "HostByID", err)
	if !h.LastAttempt.IsZero() || !h.LastSuccess.IsZero() {
		t.Fatalf("new host: last attempt %v, last success %v, want both zero", h.LastAttempt, h.LastSuccess)
	}
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	must(t, "SetHostReported success", s.SetHostReported(ctx, "h1", "CONNECTED", t1, true))
	must(t, "SetHostReported failure", s.SetHostReported(ctx, "h1", "CONNECTION_FAILURE", t2, false))
	must(t, "SetHostReported late commit", s.SetHostReported(ctx, "h1", "CONNECTED", t0, true))
	h, err = s.HostByID(ctx, "h1")
	must(t, "HostByID", err)
	if !h.LastAttempt.Equal(t2) || !h.LastSuccess.Equal(t1) {
		t.Errorf("last attempt %v, last success %v, want %v and %v", h.LastAttempt, h.LastSuccess, t2, t1)
	}
	hs, err := s.ListHosts(ctx, HostFilter{})
	must(t, "ListHosts", err)
	if len(hs) != 1 || !hs[0].LastSuccess.Equal(t1) {
		t.Errorf("listed hosts %+v, want h1 with last success %v", hs, t1)
	}
	wantErr(t, "SetHostReported of an unknown host", s.SetHostReported(ctx, "nope", "CONNECTED", t1, true), ErrNotFound)
}

func testOverdue(t *testing.T, newDSN func(t *testing.T) string) {
	ctx := t.Context()
	s := openTest(t, newDSN(t))
	for _, id := range []string{"fresh", "stale", "never", "off"} {
		must(t, "CreateHost", s.CreateHost(ctx, host(id)))
	}
	must(t, "SetHostReported fresh", s.SetHostReported(ctx, "fresh", "CONNECTED", t0.Add(2*time.Hour), true))
	must(t, "SetHostReported stale", s.SetHostReported(ctx, "stale", "CONNECTED", t0.Add(time.Hour), true))
	must(t, "SetHostReported stale failure", s.SetHostReported(ctx, "stale", "CONNECTION_FAILURE", t0.Add(3*time.Hour), false))
	must(t, "SetHostReported off", s.SetHostReported(ctx, "off", "CONNECTED", t0, true))
	must(t, "DisableHost", s.DisableHost(ctx, "off", t0))
	bound := t0.Add(90 * time.Minute)
	st, err := s.HostAttemptStats(ctx, bound)
	must(t, "HostAttemptStats", err)
	// "never" was registered at t0: overdue too. "off" is disabled: not counted.
	if st.Hosts != 3 || st.Overdue != 2 || !st.OldestSuccess.Equal(t0.Add(time.Hour)) {
		t.Errorf("stats %+v, want 3 hosts, 2 overdue, oldest success %v", st, t0.Add(time.Hour))
	}
	for id, want := range map[string]bool{"fresh": false, "stale": true, "never": true} {
		h, err := s.HostByID(ctx, id)
		must(t, "HostByID", err)
		if got := h.Overdue(bound); got != want {
			t.Errorf("host %s overdue = %v, want %v", id, got, want)
		}
	}
}

func testClaimLapses(t *testing.T, newDSN func(t *testing.T) string) {
	ctx := t.Context()
	dsn := newDSN(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	must(t, "CreateHost", a.CreateHost(ctx, host("h1")))
	due := t0.Add(time.Hour)
	got, err := a.ClaimHostsToRefresh(ctx, "replica-a", due, t0, t0.Add(5*time.Minute), 10)
	must(t, "claim by a", err)
	if !slices.Equal(got, []string{"h1"}) {
		t.Fatalf("replica a claimed %v, want [h1]", got)
	}
	got, err = b.ClaimHostsToRefresh(ctx, "replica-b", due, t0.Add(time.Minute), t0.Add(6*time.Minute), 10)
	must(t, "claim by b", err)
	if len(got) != 0 {
		t.Errorf("replica b claimed %v while a holds the claim, want nothing", got)
	}
	got, err = a.ClaimHostsToRefresh(ctx, "replica-a", due, t0.Add(time.Minute), t0.Add(6*time.Minute), 10)
	must(t, "claim again by a", err)
	if len(got) != 0 {
		t.Errorf("replica a claimed %v again while its claim holds (queued twice), want nothing", got)
	}
	// Replica a keeps its live claim as its worker starts the report.
	kept, err := a.KeepRefreshClaim(ctx, "h1", "replica-a", t0.Add(2*time.Minute), t0.Add(7*time.Minute))
	must(t, "keep by a", err)
	if !kept {
		t.Error("replica a could not keep its own live claim")
	}
	// Replica a dies: its claim lapses and b takes the host.
	got, err = b.ClaimHostsToRefresh(ctx, "replica-b", due, t0.Add(7*time.Minute), t0.Add(12*time.Minute), 10)
	must(t, "claim by b after the lapse", err)
	if !slices.Equal(got, []string{"h1"}) {
		t.Errorf("replica b claimed %v after a's claim lapsed, want [h1]", got)
	}
	// A report of a's that waited past its claim is not started: b holds it.
	kept, err = a.KeepRefreshClaim(ctx, "h1", "replica-a", t0.Add(8*time.Minute), t0.Add(13*time.Minute))
	must(t, "keep by a after b's claim", err)
	if kept {
		t.Error("replica a kept a claim that replica b holds")
	}
	// Once b's claim lapses too, whoever starts first takes it over.
	kept, err = a.KeepRefreshClaim(ctx, "h1", "replica-a", t0.Add(12*time.Minute), t0.Add(17*time.Minute))
	must(t, "keep by a after b's lapse", err)
	if !kept {
		t.Error("replica a could not take over a claim that had lapsed")
	}
}

func testKeepRefreshClaims(t *testing.T, newDSN func(t *testing.T) string) {
	ctx := t.Context()
	dsn := newDSN(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	ids := make([]string, 0, 600) // more than one statement's chunk
	for i := range cap(ids) {
		ids = append(ids, fmt.Sprintf("h%03d", i))
		must(t, "CreateHost", a.CreateHost(ctx, host(ids[i])))
	}
	due := t0.Add(time.Hour)
	got, err := a.ClaimHostsToRefresh(ctx, "replica-a", due, t0, t0.Add(5*time.Minute), len(ids))
	must(t, "claim by a", err)
	if len(got) != len(ids) {
		t.Fatalf("replica a claimed %d hosts, want %d", len(got), len(ids))
	}
	// a's claim on h000 lapses and b takes it; a renews the rest, and h000
	// with them, which it no longer holds.
	got, err = b.ClaimHostsToRefresh(ctx, "replica-b", due, t0.Add(5*time.Minute), t0.Add(10*time.Minute), 1)
	must(t, "claim by b", err)
	if !slices.Equal(got, []string{"h000"}) {
		t.Fatalf("replica b claimed %v after the lapse, want [h000]", got)
	}
	must(t, "KeepRefreshClaims", a.KeepRefreshClaims(ctx, "replica-a", ids, t0.Add(15*time.Minute)))
	// At 12 min b's claim on h000 has lapsed (10 min) and a's renewed
	// claims hold (15 min): b takes h000 again, nothing else.
	got, err = b.ClaimHostsToRefresh(ctx, "replica-b", due, t0.Add(12*time.Minute), t0.Add(17*time.Minute), len(ids))
	must(t, "claim by b after the renewal", err)
	if !slices.Equal(got, []string{"h000"}) {
		t.Errorf("replica b claimed %d hosts (%.3v) while a's renewed claims hold, want only h000, which a no longer held", len(got), got)
	}
	must(t, "KeepRefreshClaims of nothing", a.KeepRefreshClaims(ctx, "replica-a", nil, t0.Add(20*time.Minute)))
}

func testClaimSkips(t *testing.T, newDSN func(t *testing.T) string) {
	ctx := t.Context()
	s := openTest(t, newDSN(t))
	for _, id := range []string{"due", "fresh", "off", "old"} {
		must(t, "CreateHost", s.CreateHost(ctx, host(id)))
	}
	must(t, "CreateReport fresh", s.CreateReport(ctx, report("r1", "fresh", true, t0))) // expires t0+1h
	must(t, "CreateReport old", s.CreateReport(ctx, report("r2", "old", true, t0.Add(-time.Hour))))
	must(t, "DisableHost", s.DisableHost(ctx, "off", t0))
	got, err := s.ClaimHostsToRefresh(ctx, "r", t0.Add(10*time.Minute), t0, t0.Add(time.Minute), 10)
	must(t, "claim", err)
	slices.Sort(got)
	if !slices.Equal(got, []string{"due", "old"}) {
		t.Errorf("claimed %v, want [due old]", got)
	}
	got, err = s.ClaimHostsToRefresh(ctx, "other", t0.Add(10*time.Minute), t0, t0.Add(time.Minute), 1)
	must(t, "claim with a limit", err)
	if len(got) != 0 {
		t.Errorf("another replica claimed %v of hosts already claimed", got)
	}
}

func testClaimRace(t *testing.T, newDSN func(t *testing.T) string) {
	ctx := t.Context()
	dsn := newDSN(t)
	stores := []*Store{openTest(t, dsn), openTest(t, dsn)}
	const hosts = 40
	for i := range hosts {
		must(t, "CreateHost", stores[0].CreateHost(ctx, host(fmt.Sprintf("h%02d", i))))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for r, s := range stores {
		replica := fmt.Sprintf("replica-%d", r)
		wg.Go(func() {
			for range hosts {
				ids, err := s.ClaimHostsToRefresh(ctx, replica, t0, t0, t0.Add(time.Minute), 3)
				if err != nil {
					t.Errorf("%s: claim: %v", replica, err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					if other, ok := claimed[id]; ok && other != replica {
						t.Errorf("host %s claimed by %s and %s", id, other, replica)
					}
					claimed[id] = replica
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != hosts {
		t.Errorf("%d of %d hosts claimed", len(claimed), hosts)
	}
}
