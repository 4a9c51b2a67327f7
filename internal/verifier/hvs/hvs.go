// Package hvs is the Host Verification Service: hosts, flavor groups,
// flavors and trust reports.
//
// A report is made by one pipeline (Service.CreateReport): the host's
// enrolled AK (enroll.VerifyAK) → a fresh quote with a new 32-byte nonce
// (agent over NATS) → appraise.Appraise → flavor.Evaluate against the flavors
// of the host's groups → report.Report → JWS → store → publish. Evidence
// faults (quote, replay, AK, connection) go to Report.Faults and make the
// report untrusted whatever the flavors say; OVERALL is then false too, so
// that readers of trust_information alone never see a trusted host. An agent
// that does not answer gives a stored, untrusted report naming the cause.
//
// Flavor binding: a flavor applies to a host when it is in one of the
// host's groups and is bound to no host or to this one. Flavors made from a
// live host (POST /flavors from a host, rebaseline) are bound to it by host
// id and carry its hardware_uuid in meta.description; uploaded flavors are
// fleet-wide unless their meta.description.hardware_uuid names a host
// (HOST_UNIQUE flavors always do), and then apply to hosts whose agent
// reports that hardware UUID.
//
// The IMA log is read incrementally within a boot: the host's row keeps the
// reset count, IMA offset and PCR 10 value of its current boot from the
// last verified quote, and the service keeps the boot's entries so far in
// memory (imaPrefixes) for as long as the row names them; a changed reset
// count starts over at 0 (and is recorded as a reboot), and so does a
// report that does not hold the entries. Flavors are always made from a
// full read.
//
// Verified flavors (flavor.Cache, by the SHA-256 of their stored bytes) and
// boot log appraisals (appraise.EventLogMemo, by the log's SHA-256 and the
// PCR values its replay reads) are kept in memory too; the quote is
// verified at every report. A report names the boot log last appraised in
// the host's boot (evidence.QuoteRequest.EventLogDigest), which the agent
// then leaves out (eventLogMemo).
//
// Reports are published as their compact JWS on trust-reports.<host-id>.
package hvs

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/config"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/hostlimit"
	"trustedcompute.io/tc/internal/run"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Agent is what HVS needs of a host's trust agent; *agentclient.Client is one.
type Agent interface {
	Quote(ctx context.Context, hostID string, req evidence.QuoteRequest) (*evidence.QuoteResponse, error)
}

// Enroller enrolls a host's AK and says which AK its quotes must be signed
// by; *enroll.Enroller is one. VerifyAK returns the AK's TPMT_PUBLIC and
// the PCR banks its TPM had at enrollment (nil if not recorded), or an
// *enroll.AKError when the host's AK is not accepted.
type Enroller interface {
	Enroll(ctx context.Context, hostID string) (store.AKEnrollment, error)
	VerifyAK(ctx context.Context, hostID string) (akPublic []byte, pcrBanks []string, err error)
}

// CA issues HVS's signing certificate (the verifier's signing identity,
// package signerid) and holds the roots flavors and reports chain to;
// *cms.CA is one.
type CA interface {
	IssueVerifierSigning(pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error)
	RootPool() *x509.CertPool
}

// ReportSigner signs reports; *report.Signer is one.
type ReportSigner interface {
	// SignedJSON returns the report's JWS and the JSON it signed.
	SignedJSON(r *report.Report) (jws string, payload []byte, err error)
	EAR(r *report.Report, profile string, now time.Time) (string, error)
}

// Publisher publishes a message; *nats.Conn is one.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Deps are the parts HVS works with.
type Deps struct {
	Store    *store.Store
	Agent    Agent
	Enroller Enroller
	CA       CA
	// NewReportSigner makes the report signer for HVS's signing key
	// (default: report.NewSigner).
	NewReportSigner func(key crypto.Signer, chain []*x509.Certificate) (ReportSigner, error)
	// Publisher receives the reports (default: NATS when set, else none).
	Publisher Publisher
	// NATS, when set, is subscribed to the agents' events by Run.
	NATS *nats.Conn
	// HostRemoved, when set, is called with the id of every deleted host
	// (to revoke its agent's bus credentials).
	HostRemoved func(hostID string)
}

// Config tunes HVS. Zero values take the defaults.
type Config struct {
	// PCRs are quoted in every bank of Banks (default 0-10).
	PCRs  []int
	Banks []string // default SHA384, SHA256
	// AllowSHA1 lets Banks name SHA-1, whose digests can collide; without
	// it appraisal refuses SHA-1 (appraise.Policy).
	AllowSHA1 bool
	// ReportValidity is how long a report holds (default 1h).
	ReportValidity time.Duration
	// RefreshMargin: hosts whose latest report expires within it are
	// attested again (default 10m), checked every RefreshInterval (default 1m).
	RefreshMargin, RefreshInterval time.Duration
	// Interval is how often each host is expected to be attested (the
	// attestation manager's pollDuration; default 1h). A host whose last
	// success is older than OverdueFactor × Interval is overdue: shown so in
	// the API and /metrics, and never as trusted.
	Interval time.Duration
	// ReportRetention is how long reports are kept (default 30 days): every
	// PruneInterval (default 1h, and once at start) reports older than it
	// are deleted, except each host's newest, which is its current verdict.
	ReportRetention, PruneInterval time.Duration
	// Replica names this verifier replica in the claims on scheduled
	// refreshes (default a random id per process): replicas on one database
	// refresh each host once, and a dead replica's claims lapse after
	// RefreshMargin/2.
	Replica string
	// Workers make async reports from a queue of QueueSize hosts
	// (defaults 2 and 1024).
	Workers, QueueSize int
	// EventInterval bounds the reports one host's events cause: after a
	// burst of EventBurst, at most one an EventInterval (default 1s; an
	// agent checks its IMA log every 5s by default). The events that come
	// faster fold into the host's next report, which quotes the node
	// afresh, so none is lost; a node that floods its event subjects costs
	// a map lookup a message (hostlimit).
	EventInterval time.Duration
	// ReportTimeout bounds one report, agent round trips included
	// (default 60s; the agent client has its own, shorter timeout).
	ReportTimeout time.Duration
	// SigningValidity is the lifetime of HVS's signing certificate (default
	// 30 days); it is re-issued when a third of it is left.
	SigningValidity time.Duration
	// FlavorCacheBytes bounds the stored flavor bytes kept decoded and
	// verified between reports (default 256 MiB).
	FlavorCacheBytes int
	// IMAPolicyCacheBytes bounds the runtime policies kept verified and
	// compiled, by their compiled size (default 128 MiB: eight policies of
	// 100,000 paths).
	IMAPolicyCacheBytes int
	// IMACacheEntries bounds the IMA entries kept in memory so that a
	// report reads only the new lines of a host's IMA log (default 2^20).
	IMACacheEntries int
	// EventLogCacheEntries bounds the boot log appraisals kept in memory
	// (default 4096; hosts that booted alike share one).
	EventLogCacheEntries int
	// Templates make flavors from hosts (default flavor.DefaultTemplates).
	Templates []flavor.Template
	// EARProfile is the eat_profile of EAR tokens (default the report package's).
	EARProfile string
	// Observe, when set, is told of every new report and how long it took
	// (metrics).
	Observe func(r *report.Report, took time.Duration)
	// Now is the clock (default time.Now); NewID makes flavor and group IDs
	// (default random UUIDs).
	Now   func() time.Time
	NewID func() string
}

func (c *Config) setDefaults() error {
	if c.PCRs == nil {
		c.PCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	}
	if c.Banks == nil {
		c.Banks = []string{evidence.BankSHA384, evidence.BankSHA256}
	}
	var errs []error
	check := evidence.QuoteRequest{Nonce: []byte{1}, PCRs: c.PCRs, Banks: c.Banks}
	if err := check.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("hvs config: %w", err))
	}
	if slices.Contains(c.Banks, evidence.BankSHA1) && !c.AllowSHA1 {
		errs = append(errs, errors.New("hvs config: the SHA1 bank is refused unless AllowSHA1 is set"))
	}
	errs = append(errs, config.DefaultDurations("hvs config",
		config.Duration("ReportValidity", &c.ReportValidity, time.Hour),
		config.Duration("RefreshMargin", &c.RefreshMargin, 10*time.Minute),
		config.Duration("RefreshInterval", &c.RefreshInterval, time.Minute),
		config.Duration("ReportTimeout", &c.ReportTimeout, 60*time.Second),
		config.Duration("SigningValidity", &c.SigningValidity, 30*24*time.Hour),
		config.Duration("Interval", &c.Interval, DefaultInterval),
		config.Duration("ReportRetention", &c.ReportRetention, DefaultReportRetention),
		config.Duration("PruneInterval", &c.PruneInterval, time.Hour),
		config.Duration("EventInterval", &c.EventInterval, DefaultEventInterval),
	))
	if c.ReportRetention < 2*c.Interval {
		errs = append(errs, fmt.Errorf("hvs config: ReportRetention %s must be at least twice Interval %s", c.ReportRetention, c.Interval))
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.FlavorCacheBytes <= 0 {
		c.FlavorCacheBytes = 256 << 20
	}
	if c.IMAPolicyCacheBytes <= 0 {
		c.IMAPolicyCacheBytes = 128 << 20
	}
	if c.IMACacheEntries <= 0 {
		c.IMACacheEntries = 1 << 20
	}
	if c.EventLogCacheEntries <= 0 {
		c.EventLogCacheEntries = 4096
	}
	if c.Templates == nil {
		c.Templates = flavor.DefaultTemplates()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.NewString
	}
	if c.Replica == "" {
		c.Replica = uuid.NewString()
	}
	return errors.Join(errs...)
}

// Log field keys.
const (
	keyHost    = "host_id"
	keyReport  = "report_id"
	keyStatus  = "host_status"
	keyTrusted = "trusted"
	keyFaults  = "faults"
	keyError   = "error"
	keySubject = "subject"
	keyCount   = "count"
	keyEvent   = "event"
	keyWait    = "wait"
)

// Service is HVS. It is safe for concurrent use.
type Service struct {
	cfg       Config
	store     *store.Store
	agent     Agent
	enroller  Enroller
	ca        CA
	roots     *x509.CertPool
	newSigner func(key crypto.Signer, chain []*x509.Certificate) (ReportSigner, error)
	publisher Publisher
	nc        *nats.Conn
	logger    *slog.Logger
	templates []*flavor.CompiledTemplate
	// flavors holds stored flavors decoded and verified, by the digest of
	// their stored bytes.
	flavors *flavor.Cache
	// imaPrefixes holds the IMA entries of the hosts' current boots.
	imaPrefixes *imaPrefixes
	// eventLogs holds boot log appraisals by log and PCR values, and the
	// log last appraised in each host's boot.
	eventLogs *eventLogMemo
	// aks holds enrolled AKs parsed, by their public area.
	aks akMemo
	// imaPolicies holds verified, compiled runtime policies.
	imaPolicies *imaPolicyCache
	// policies holds the hosts' report policies by policy generation.
	policies *policyCache

	// hostRemoved is Deps.HostRemoved (nil: nothing to tell).
	hostRemoved func(hostID string)

	signingMu sync.Mutex
	signing   *signingKey

	// events gives each host's events a budget of reports.
	events *hostlimit.Limiter

	flight  singleflight.Group
	queue   chan string
	pending sync.Map // host id → struct{}: queued or being made async
	claims  sync.Map // host id → struct{}: queued by this replica's refresh claim
}

// New returns HVS: it creates the default flavor groups on first start and
// loads (or has CMS issue) its signing certificate.
func New(ctx context.Context, cfg Config, deps Deps, logger *slog.Logger) (*Service, error) {
	if deps.Store == nil || deps.Agent == nil || deps.Enroller == nil || deps.CA == nil || logger == nil {
		return nil, errors.New("hvs: store, agent, enroller, ca and logger are required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, store: deps.Store, agent: deps.Agent, enroller: deps.Enroller, ca: deps.CA,
		roots: deps.CA.RootPool(), newSigner: deps.NewReportSigner, publisher: deps.Publisher,
		nc: deps.NATS, hostRemoved: deps.HostRemoved, logger: logger, queue: make(chan string, cfg.QueueSize),
	}
	s.events = hostlimit.New(clock.Real{}, cfg.EventInterval, EventBurst)
	s.flavors = flavor.NewCache(s.roots, cfg.FlavorCacheBytes)
	s.imaPrefixes = newIMAPrefixes(cfg.IMACacheEntries)
	s.policies = newPolicyCache()
	s.eventLogs = newEventLogMemo(cfg.EventLogCacheEntries)
	s.aks = newAKMemo(akMemoEntries)
	s.imaPolicies = newIMAPolicyCache(cfg.IMAPolicyCacheBytes)
	if s.newSigner == nil {
		s.newSigner = func(key crypto.Signer, chain []*x509.Certificate) (ReportSigner, error) {
			return report.NewSigner(key, chain)
		}
	}
	if s.publisher == nil && s.nc != nil {
		s.publisher = s.nc
	}
	for _, t := range cfg.Templates {
		c, err := flavor.Compile(t)
		if err != nil {
			return nil, fmt.Errorf("hvs: flavor template %q: %w", t.ID, err)
		}
		s.templates = append(s.templates, c)
	}
	if err := s.createDefaultGroups(ctx); err != nil {
		return nil, err
	}
	if _, err := s.signingKey(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// createDefaultGroups creates the groups of flavor.DefaultGroups that do not
// exist; replicas starting together race, and the losers find the group.
func (s *Service) createDefaultGroups(ctx context.Context) error {
	for _, g := range flavor.DefaultGroups() {
		if _, err := s.store.FlavorGroupByName(ctx, g.Name); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("hvs: %w", err)
		}
		g.ID = s.cfg.NewID()
		rec, err := groupRecord(g, s.cfg.Now())
		if err != nil {
			return fmt.Errorf("hvs: default group %q: %w", g.Name, err)
		}
		if err := s.store.CreateFlavorGroup(ctx, rec); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("hvs: %w", err)
		}
	}
	return nil
}

// Run makes async reports, refreshes reports about to expire, deletes
// reports older than the retention (but each host's newest) and, with a
// NATS connection, attests hosts on their boot and IMA events, until ctx
// ends or one of them fails.
func (s *Service) Run(ctx context.Context) error {
	tasks := make([]run.Task, 0, s.cfg.Workers+3)
	for range s.cfg.Workers {
		tasks = append(tasks, s.work)
	}
	tasks = append(tasks, s.refresh, s.prune)
	if s.nc != nil {
		tasks = append(tasks, s.subscribeEvents)
	}
	return run.Group(ctx, tasks...)
}

// DefaultInterval is Config.Interval's default: the attestation manager's
// default pollDuration.
const DefaultInterval = time.Hour

// OverdueFactor × Config.Interval is how old a host's last success may be
// before the host is overdue.
const OverdueFactor = 1.5

// OverdueBefore is the bound at now: a host whose last success (or, never
// attested, whose registration) is older is overdue. A zero Interval counts
// as DefaultInterval.
func (c *Config) OverdueBefore(now time.Time) time.Time {
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	return now.Add(-time.Duration(OverdueFactor * float64(interval)))
}

// ErrQueueFull: the async report queue is full; try again later.
var ErrQueueFull = errors.New("the report queue is full")

// Enqueue queues an async report of the host. A host already queued is not
// queued twice; once a worker has taken it, it may be queued again (that
// report quotes the node afresh).
func (s *Service) Enqueue(hostID string) error {
	if _, loaded := s.pending.LoadOrStore(hostID, struct{}{}); loaded {
		return nil
	}
	select {
	case s.queue <- hostID:
		return nil
	default:
		s.pending.Delete(hostID)
		return fmt.Errorf("queue report of host %q: %w", hostID, ErrQueueFull)
	}
}

func (s *Service) work(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case id := <-s.queue:
			s.runQueued(ctx, id)
		}
	}
}

// runQueued makes the queued report of host id. A host this replica claimed
// to refresh is attested only while the claim is still its own, or nobody's:
// a claim lapses RefreshMargin/2 after it was made, and a report that waited
// longer in the queue may have been claimed by another replica meanwhile,
// which attests it. Without a store to ask, the report is made.
func (s *Service) runQueued(ctx context.Context, id string) {
	s.pending.Delete(id)
	if _, claimed := s.claims.LoadAndDelete(id); claimed {
		now := s.cfg.Now()
		kept, err := s.store.KeepRefreshClaim(ctx, id, s.cfg.Replica, now, now.Add(s.cfg.RefreshMargin/2))
		if err == nil && !kept {
			s.logger.LogAttrs(ctx, slog.LevelDebug, "refresh skipped: another replica claimed the host since", slog.String(keyHost, id))
			return
		}
	}
	if _, err := s.CreateReport(ctx, id); err != nil && ctx.Err() == nil && !errors.Is(err, ErrHostDisabled) {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "async report failed", slog.String(keyHost, id), slog.String(keyError, err.Error()))
	}
}

// refresh queues the hosts whose latest report expires within the margin
// (and those without a report) that it could claim: replicas on one
// database never queue the same host together, and take over a dead
// replica's hosts once its claims lapse (RefreshMargin/2).
func (s *Service) refresh(ctx context.Context) error {
	return every(ctx, s.cfg.RefreshInterval, func(ctx context.Context) { s.refreshOnce(ctx) })
}

// keepQueuedClaims renews the claims on the hosts this replica queued and
// has not started: a queue that takes longer than a claim's life
// (RefreshMargin/2) to drain, on a loaded machine, would otherwise let
// another replica claim them, and each replica then left such a host to
// the other (runQueued). Only a replica that stops renewing, being dead or
// stalled for that long, loses its claims.
func (s *Service) keepQueuedClaims(ctx context.Context, now time.Time) {
	var ids []string
	s.claims.Range(func(id, _ any) bool {
		ids = append(ids, id.(string))
		return true
	})
	if len(ids) == 0 {
		return
	}
	if err := s.store.KeepRefreshClaims(ctx, s.cfg.Replica, ids, now.Add(s.cfg.RefreshMargin/2)); err != nil && ctx.Err() == nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh claims not renewed", slog.String(keyError, err.Error()))
	}
}

// refreshOnce claims and queues the hosts due now; it returns how many it
// queued.
func (s *Service) refreshOnce(ctx context.Context) int {
	now := s.cfg.Now()
	s.keepQueuedClaims(ctx, now)
	room := cap(s.queue) - len(s.queue) // claim no more than can be queued
	if room <= 0 {
		return 0
	}
	ids, err := s.store.ClaimHostsToRefresh(ctx, s.cfg.Replica, now.Add(s.cfg.RefreshMargin), now,
		now.Add(s.cfg.RefreshMargin/2), room)
	if err != nil && ctx.Err() == nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh reports", slog.String(keyError, err.Error()))
	}
	queued := 0
	for _, id := range ids {
		s.claims.Store(id, struct{}{})
		if err := s.Enqueue(id); err != nil {
			s.claims.Delete(id)
			s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh reports", slog.String(keyHost, id), slog.String(keyError, err.Error()))
			break
		}
		queued++
	}
	if queued > 0 {
		s.logger.LogAttrs(ctx, slog.LevelDebug, "reports refreshed", slog.Int(keyCount, queued))
	}
	return queued
}
