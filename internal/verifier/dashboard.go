package verifier

import (
	"context"
	"net"
	"time"

	"trustedcompute.io/tc/internal/run"
	"trustedcompute.io/tc/internal/verifier/dashboard"
)

// DashboardConfig turns on the operator's fleet dashboard (package
// dashboard) on a listener of its own, served over TLS 1.3 with the
// verifier's certificate. Empty Listen leaves it off.
type DashboardConfig struct {
	Listen string
	// StaleAfter is the age past which a node's last report shows as
	// stale (default dashboard.DefaultStaleAfter).
	StaleAfter time.Duration
	// Poll is how often the dashboard looks for new reports to push to
	// open pages (default dashboard.DefaultPoll).
	Poll time.Duration
}

// dashboardPart is the dashboard with its listener.
type dashboardPart struct {
	ln net.Listener
	d  *dashboard.Dashboard
}

// DashboardAddr returns the dashboard's address, or "" when it is off.
func (v *Verifier) DashboardAddr() string {
	if v.dashboard.ln == nil {
		return ""
	}
	return v.dashboard.ln.Addr().String()
}

// startDashboard runs the dashboard's poller and server on r when it listens.
func (v *Verifier) startDashboard(r *run.Runner) error {
	if v.dashboard.ln == nil {
		return nil
	}
	dcfg := dashboard.Config{StaleAfter: v.cfg.Dashboard.StaleAfter, Poll: v.cfg.Dashboard.Poll, Roots: v.ca.RootPool()}
	if b := v.keyBroker.b.Load(); b != nil {
		dcfg.Releases = b // a node's page lists its secret releases
	}
	d, err := dashboard.New(dcfg, v.store, v.aas, v.logger.With("part", "dashboard"))
	if err != nil {
		return err
	}
	v.dashboard.d = d
	r.Go("dashboard-poll", d.Run)
	r.Go("dashboard", func(ctx context.Context) error { return v.serveTLS(ctx, v.dashboard.ln, d.Handler()) })
	v.logger.Info("dashboard serving", keyListen, v.dashboard.ln.Addr().String())
	return nil
}
