package verifier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"trustedcompute.io/tc/internal/verifier/store"
)

// gauges gathers reg and returns each gauge's value by name.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestTheOverdueGaugesCountTheEnabledHostsWhoseLastSuccessIsTooOld(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	for id, success := range map[string]time.Duration{"fresh": 10 * time.Minute, "stale": 2 * time.Hour, "off": 5 * time.Hour} {
		if err := st.CreateHost(t.Context(), store.Host{ID: id, Name: id, ConnectionString: "nats://" + id, Status: "UNKNOWN",
			CreatedAt: now.Add(-24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetHostReported(t.Context(), id, "CONNECTED", now.Add(-success), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DisableHost(t.Context(), "off", now); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newAttemptCollector(st, func(now time.Time) time.Time { return now.Add(-90 * time.Minute) }))
	got := gauges(t, reg)
	want := map[string]float64{
		"tc_hvs_hosts":                            2, // the disabled host is left out
		"tc_hvs_hosts_overdue":                    1,
		"tc_hvs_oldest_success_timestamp_seconds": float64(now.Add(-2 * time.Hour).Unix()),
		"tc_hvs_hosts_scrape_errors":              0,
	}
	for name, w := range want {
		if v, ok := got[name]; !ok || v != w {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, w)
		}
	}
}

type failingStats struct{}

func (failingStats) HostAttemptStats(context.Context, time.Time) (store.AttemptStats, error) {
	return store.AttemptStats{}, errors.New("database down")
}

func TestAScrapeThatCannotReadTheHostsSaysSoInsteadOfReportingZeroOverdue(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newAttemptCollector(failingStats{}, func(now time.Time) time.Time { return now }))
	got := gauges(t, reg)
	if v, ok := got["tc_hvs_hosts_overdue"]; ok {
		t.Errorf("tc_hvs_hosts_overdue = %v when the store fails, want no series", v)
	}
	if got["tc_hvs_hosts_scrape_errors"] != 1 {
		t.Errorf("tc_hvs_hosts_scrape_errors = %v, want 1", got["tc_hvs_hosts_scrape_errors"])
	}
}
