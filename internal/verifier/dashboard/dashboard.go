// Package dashboard is the operator's fleet dashboard that the verifier
// serves on a listener of its own: a fleet summary, a node table, each
// node's timeline of trust reports, the drill-down of a report's faults,
// the signed report for download with its signature status, and live
// updates pushed by Server-Sent Events.
//
// Operators log in with their AAS username and password; the AAS runs in
// the same process. The token stays on the server: the browser holds only
// a random session id in an HttpOnly, Secure, SameSite=Strict cookie, and
// every request checks the token again (expiry and revocation). Pages are
// rendered by html/template, which escapes every value a node controls
// (host names, IMA paths, fault texts); the one script is a file of this
// package, and the Content-Security-Policy allows nothing else.
package dashboard

import (
	"cmp"
	"context"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/sse"
	"trustedcompute.io/tc/internal/verifier/auth"
	"trustedcompute.io/tc/internal/verifier/keybroker"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Service and Rules name the permissions a user needs to see the
// dashboard: it shows hosts and their reports.
const Service = "HVS"

// Rules are the HVS permission rules the dashboard needs, all of them.
var Rules = []string{"hosts:retrieve:*", "reports:retrieve:*"}

// Defaults.
const (
	// DefaultStaleAfter is the age past which a node's last report is
	// stale: twice the attestation manager's default poll duration.
	DefaultStaleAfter = 2 * time.Hour
	// DefaultPoll is how often the store is asked for a new report.
	DefaultPoll = time.Second
	// DefaultMaxSessions bounds the sessions held in memory.
	DefaultMaxSessions = 10000
	// timelineLength is how many reports a node page shows.
	timelineLength = 100
)

// Log field keys.
const (
	keyUser   = "user"
	keyError  = "error"
	keyReason = "reason"
)

// Store is what the dashboard reads of the verifier's store.
type Store interface {
	ListHosts(ctx context.Context, f store.HostFilter) ([]store.Host, error)
	HostByID(ctx context.Context, id string) (store.Host, error)
	ListReports(ctx context.Context, f store.ReportFilter) ([]store.Report, error)
	ReportByID(ctx context.Context, id string) (store.Report, error)
}

// Authenticator is the verifier's AAS: it logs users in and checks the
// tokens it issued (expiry and revocation).
type Authenticator interface {
	Login(ctx context.Context, username, password string) (string, error)
	CheckToken(ctx context.Context, token string) (*auth.Claims, time.Time, error)
}

// Config configures the dashboard. Zero fields take the defaults.
type Config struct {
	// StaleAfter is the age past which a node's last report is stale.
	StaleAfter time.Duration
	// Poll is how often the store is polled for new reports, which are
	// then pushed to the open pages.
	Poll time.Duration
	// MaxSessions bounds the sessions held in memory; the oldest goes
	// first when it is reached.
	MaxSessions int
	// Roots are the CMS root certificates a signed report must chain to.
	Roots *x509.CertPool
	// Clock tells the time of sessions and ages; nil is the real clock.
	Clock clock.Clock
	// Releases, when set, is the key broker's record of its decisions: a
	// node's page lists its secret releases and refusals to a user who
	// holds the key broker's audit permission (keybroker.AuditRule).
	Releases Releases
}

// Releases is the key broker's record of its latest release decisions per
// host, the newest first (keybroker.Broker).
type Releases interface {
	Decisions(hostID string) []keybroker.Decision
}

// Dashboard is the dashboard's HTTP handler and its report poller.
type Dashboard struct {
	cfg      Config
	store    Store
	auth     Authenticator
	logger   *slog.Logger
	reports  *report.Verifier
	sessions *sessions
	hub      sse.Hub
	pages    pages
	handler  http.Handler

	mu    sync.Mutex
	since map[string]runStart // host id -> the start of its current run of results

	verdicts verdicts // rows whose signed form says they are trusted (verdicts.go)
}

// New returns the dashboard. Run polls for new reports; Handler serves.
func New(cfg Config, st Store, a Authenticator, logger *slog.Logger) (*Dashboard, error) {
	if st == nil || a == nil || logger == nil || cfg.Roots == nil {
		return nil, errors.New("dashboard: store, authenticator, logger and roots are required")
	}
	cfg.StaleAfter = cmp.Or(cfg.StaleAfter, DefaultStaleAfter)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.MaxSessions = cmp.Or(cfg.MaxSessions, DefaultMaxSessions)
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.StaleAfter < 0 || cfg.Poll < 0 || cfg.MaxSessions < 0 {
		return nil, fmt.Errorf("dashboard: stale after %s, poll %s and max sessions %d must be positive",
			cfg.StaleAfter, cfg.Poll, cfg.MaxSessions)
	}
	p, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	d := &Dashboard{cfg: cfg, store: st, auth: a, logger: logger, reports: report.NewVerifier(cfg.Roots),
		sessions: newSessions(cfg.MaxSessions), pages: p, since: map[string]runStart{}}
	d.handler = d.routes()
	return d, nil
}

// Handler returns the dashboard's HTTP handler.
func (d *Dashboard) Handler() http.Handler { return d.handler }

//go:embed static
var static embed.FS

func (d *Dashboard) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(static))
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.login)
	mux.Handle("POST /logout", d.authed(d.logout))
	mux.Handle("GET /{$}", d.authed(d.fleet))
	mux.Handle("GET /nodes/{id}", d.authed(d.node))
	mux.Handle("GET /reports/{id}", d.authed(d.report))
	mux.Handle("GET /reports/{id}/jws", d.authed(d.download))
	mux.Handle("GET /events", d.authed(d.events))
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: cross-origin request refused")
		d.message(w, r, http.StatusForbidden, "Request refused", "This form was not sent from the dashboard's own pages.")
	}))
	return secureHeaders(cop.Handler(mux))
}

// contentSecurityPolicy allows the dashboard's own script, style and
// connections only: no inline script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
