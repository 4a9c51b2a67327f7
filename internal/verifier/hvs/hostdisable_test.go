package hvs

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/store"
)

// removedHosts records the hosts whose bus credentials HVS asked to revoke.
type removedHosts struct {
	mu  sync.Mutex
	ids []string
}

func (r *removedHosts) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
}

func (r *removedHosts) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func reportCount(t *testing.T, st *store.Store, hostID string) int {
	t.Helper()
	rs, err := st.ListReports(t.Context(), store.ReportFilter{HostID: hostID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}

// TestDisabledHostGetsNoReport plays an operator who disables a host that
// was trusted: its credentials are revoked, the host shows disabled, and no
// report of it is made (its agent is not even asked) until it is enabled.
func TestDisabledHostGetsNoReport(t *testing.T) {
	n := newNode(t, "edge-1")
	other := newNode(t, "edge-2")
	removed := &removedHosts{}
	e := newEnv(t, []*node{n, other}, func(_ *Config, d *Deps) { d.HostRemoved = removed.add })
	e.baseline(t, n)
	e.baseline(t, other)
	mux := newMux(e.svc)
	if rep, err := e.svc.CreateReport(t.Context(), "edge-1"); err != nil || !rep.Trusted() {
		t.Fatalf("report before disabling: %v (trusted %t)", err, err == nil && rep.Trusted())
	}

	w := do(t, mux, "POST", "/hvs/v2/hosts/edge-1/disable", "")
	if w.Code != http.StatusOK {
		t.Fatalf("disable = %d %s", w.Code, w.Body)
	}
	if h := decode[restapi.Host](t, w); !h.Disabled || h.DisabledAt == nil || !h.DisabledAt.Equal(e.clock.Now()) {
		t.Errorf("disabled host shows %+v", h)
	}
	if got := removed.list(); !slices.Equal(got, []string{"edge-1"}) {
		t.Fatalf("bus credentials revoked for %v, want [edge-1]", got)
	}
	list := decode[restapi.HostList](t, do(t, mux, "GET", "/hvs/v2/hosts", ""))
	for _, h := range list.Hosts {
		if h.Disabled != (h.ID == "edge-1") {
			t.Errorf("host list: %s disabled %t", h.ID, h.Disabled)
		}
	}

	reports, calls := reportCount(t, e.st, "edge-1"), e.agent.calls.Load()
	tests := []struct {
		name string
		try  func() error
	}{
		{"a report asked for over the API is refused with 409", func() error {
			if w := do(t, mux, "POST", "/hvs/v2/reports", `{"host_id":"edge-1"}`); w.Code != http.StatusConflict {
				return errors.New(w.Body.String())
			}
			return nil
		}},
		{"a report asked for in process is refused with ErrHostDisabled", func() error {
			if _, err := e.svc.CreateReport(t.Context(), "edge-1"); !errors.Is(err, ErrHostDisabled) {
				return err
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.try(); err != nil {
				t.Fatalf("not refused: %v", err)
			}
			if got := reportCount(t, e.st, "edge-1"); got != reports {
				t.Fatalf("%d reports stored, want %d", got, reports)
			}
			if got := e.agent.calls.Load(); got != calls {
				t.Fatalf("the disabled host's agent was asked for %d quotes", got-calls)
			}
		})
	}
	if rep, err := e.svc.CreateReport(t.Context(), "edge-2"); err != nil || !rep.Trusted() {
		t.Fatalf("the other host's report: %v", err)
	}

	w = do(t, mux, "POST", "/hvs/v2/hosts/edge-1/enable", "")
	if w.Code != http.StatusOK {
		t.Fatalf("enable = %d %s", w.Code, w.Body)
	}
	if h := decode[restapi.Host](t, w); h.Disabled || h.DisabledAt != nil {
		t.Errorf("enabled host shows %+v", h)
	}
	if rep, err := e.svc.CreateReport(t.Context(), "edge-1"); err != nil || !rep.Trusted() {
		t.Fatalf("report after enabling: %v", err)
	}
	for _, path := range []string{"/hvs/v2/hosts/nope/disable", "/hvs/v2/hosts/nope/enable"} {
		if w := do(t, mux, "POST", path, ""); w.Code != http.StatusNotFound {
			t.Errorf("%s = %d %s, want 404", path, w.Code, w.Body)
		}
	}
}

// TestHostDisabledWhileItsReportIsMadeGetsNoStoredReport disables a host
// while its agent is answering a quote: the report that was being made is
// neither stored nor published.
func TestHostDisabledWhileItsReportIsMadeGetsNoStoredReport(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	reports := reportCount(t, e.st, "edge-1")
	published := len(e.pub.published("trust-reports.edge-1"))
	e.agent.mu.Lock()
	e.agent.entered, e.agent.release = make(chan struct{}), make(chan struct{})
	e.agent.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		_, err := e.svc.CreateReport(context.Background(), "edge-1")
		done <- err
	}()
	<-e.agent.entered
	if err := e.st.DisableHost(t.Context(), "edge-1", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	close(e.agent.release)
	if err := <-done; !errors.Is(err, ErrHostDisabled) {
		t.Fatalf("CreateReport = %v, want ErrHostDisabled", err)
	}
	if got := reportCount(t, e.st, "edge-1"); got != reports {
		t.Fatalf("%d reports stored, want %d", got, reports)
	}
	if got := len(e.pub.published("trust-reports.edge-1")); got != published {
		t.Fatalf("%d reports published, want %d", got, published)
	}
}
