package hvs

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Reports are kept for Config.ReportRetention, except each host's newest,
// which is its current verdict however old.

func withRetention(d time.Duration) envOption {
	return func(cfg *Config, _ *Deps) { cfg.ReportRetention = d }
}

// listedReports is the ids of the reports GET /hvs/v2/reports?query lists.
func listedReports(t *testing.T, e *env, query string) []string {
	t.Helper()
	w := do(t, newMux(e.svc), "GET", "/hvs/v2/reports?"+query, "")
	var ids []string
	for _, raw := range decode[restapi.ReportList](t, w).Reports {
		var r struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestThePruneDeletesReportsOlderThanTheRetentionButEachHostsNewest(t *testing.T) {
	busy, quiet := newNode(t, "edge-1"), newNode(t, "edge-2")
	e := newEnv(t, []*node{busy, quiet}, withRetention(48*time.Hour))
	e.baseline(t, busy)
	e.baseline(t, quiet)
	first := mustReport(t, e, busy.id)
	quietLast := mustReport(t, e, quiet.id) // quiet is not attested again
	e.clock.Advance(time.Hour)
	second := mustReport(t, e, busy.id)
	e.clock.Advance(47*time.Hour + time.Minute)
	if n := e.svc.pruneOnce(t.Context()); n != 1 {
		t.Errorf("the prune 48h and a minute after the first report deleted %d reports, want 1 (that one)", n)
	}
	e.clock.Advance(30 * 24 * time.Hour)
	third := mustReport(t, e, busy.id)
	if n := e.svc.pruneOnce(t.Context()); n != 1 {
		t.Errorf("the prune a month later deleted %d reports, want 1 (%s)", n, second.ID)
	}
	for _, gone := range []string{first.ID, second.ID} {
		if _, err := e.st.ReportByID(t.Context(), gone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the old report %s is still there: %v", gone, err)
		}
	}
	want := []string{third.ID, quietLast.ID}
	slices.Sort(want)
	if got := listedReports(t, e, "latestPerHost=true"); !slices.Equal(got, want) {
		t.Errorf("GET latestPerHost = %v, want each host's newest %v", got, want)
	}
	// The manager asks for a host's latest report: the quiet host's, a
	// month old, is still its verdict.
	if got := listedReports(t, e, "hostId=edge-2&latestPerHost=true"); !slices.Equal(got, []string{quietLast.ID}) {
		t.Errorf("the quiet host's latest report is %v, want %s", got, quietLast.ID)
	}
	if w := do(t, newMux(e.svc), "GET", "/hvs/v2/reports/"+quietLast.ID, ""); w.Code != 200 {
		t.Errorf("GET the quiet host's newest report = %d %s", w.Code, w.Body)
	}
	e.clock.Advance(365 * 24 * time.Hour)
	if n := e.svc.pruneOnce(t.Context()); n != 0 {
		t.Errorf("a year later the prune deleted %d reports, want none: only each host's newest is left", n)
	}
}

func TestRunPrunesOldReportsWhenItStarts(t *testing.T) {
	e, n := newBaselinedEnv(t)
	old := mustReport(t, e, n.id)
	e.clock.Advance(DefaultReportRetention + time.Minute)
	newest := mustReport(t, e, n.id)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.st.ReportByID(t.Context(), old.ID)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report older than the retention is still there after Run started: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.st.ReportByID(t.Context(), newest.ID); err != nil {
		t.Errorf("the newest report is gone: %v", err)
	}
}

func TestARetentionShorterThanTwoIntervalsIsRefused(t *testing.T) {
	def := Config{}
	if err := def.setDefaults(); err != nil || def.ReportRetention != DefaultReportRetention || def.PruneInterval != time.Hour {
		t.Errorf("the defaults keep reports %s, pruned every %s (%v); want %s and 1h",
			def.ReportRetention, def.PruneInterval, err, DefaultReportRetention)
	}
	for retention, ok := range map[time.Duration]bool{12 * time.Hour: true, 11 * time.Hour: false, -time.Hour: false} {
		c := Config{Interval: 6 * time.Hour, ReportRetention: retention}
		if err := c.setDefaults(); (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "ReportRetention")) {
			t.Errorf("a retention of %s with a 6h interval: setDefaults = %v, want accepted %v", retention, err, ok)
		}
	}
}
