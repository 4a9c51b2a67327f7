// Package manager is the attestation manager: it keeps the golden flavors of
// every Trusted Compute node current, schedules attestations, decides
// Verified / Attestation Failed / Secure Boot Disabled from each trust report
// and acts on the decision through the Kubernetes adapter and the Edge
// Infrastructure Manager.
//
// The Manager holds no state that matters across a restart: what was acted on
// lives in the Node objects (status label, last report annotation, cordon)
// and the reports live in the verifier. What a node may write itself (its
// annotations) is never taken as a verdict: the verdict labels are under
// node-restriction.kubernetes.io/, onboard requests come from
// cluster.OnboardRequests, a host id is only the node's claim, which the
// verifier's host record binds to the first node name (ErrHostClaimed), and
// each pass compares the Node with the verdict this process last made and
// makes it say so again when it drifted. A restarted manager reads the latest
// report of each node and skips it when the Node already names it, so it
// neither cordons twice nor evicts twice nor re-sends a verdict.
//
// Its dependencies are small interfaces declared here (Verifier, Nodes,
// StatusSink, Clock), so the whole behaviour runs in unit tests with
// hand-written fakes and a fake clock; Tick is one deterministic step of Run.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/verifier/report"

	"trustedcompute.io/tc/internal/clock"
)

// AnnotationPollDuration overrides the poll duration of one Node, in minutes
// ("30") like the Helm value, or as a Go duration ("90m").
const AnnotationPollDuration = "trustedcompute.io/poll-duration"

// BaselineParts are the flavor parts made from a host's own measurements.
var BaselineParts = []string{"PLATFORM", "OS", "IMA"}

// Log field keys.
const (
	keyNode     = "node"
	keyHostID   = "host_id"
	keyReportID = "report_id"
	keyStatus   = "status"
	keyParts    = "parts"
	keyReady    = "ready"
	keyReason   = "reason"
	keyTrigger  = "trigger"
	keyNext     = "next"
	keyEvicted  = "evicted"
	keyErr      = "error"
	keyValue    = "value"
)

// Reasons of Pending and Withdraw calls.
const (
	ReasonVerifierUnreachable = cluster.ReasonVerifierUnreachable
	ReasonHostIDMissing       = "HostIDMissing"
	ReasonHostClaimRefused    = cluster.ReasonHostClaimRefused
)

// ErrHostClaimed is returned (wrapped) by Verifier.RegisterHost when the
// verifier has bound the node's host id to another node name, or the node
// name to another host id. The node is refused, never given that host.
var ErrHostClaimed = errors.New("host claim refused")

// Node is an enabled Node as the manager sees it.
type Node struct {
	cluster.NodeInfo
	// PollDuration is the raw value of AnnotationPollDuration, empty when
	// the annotation is absent.
	PollDuration string
}

// Verifier is what the manager needs of the verifier. Host ids are the
// verifier's (RegisterHost returns it).
type Verifier interface {
	// RegisterHost registers the node's host (or finds it when already
	// registered under this node name) and returns its id in the verifier;
	// ErrHostClaimed when the host id or the name is bound otherwise.
	RegisterHost(ctx context.Context, nodeName, hostID string) (string, error)
	// Rebaseline makes the host's golden flavors of parts from its current
	// measurements.
	Rebaseline(ctx context.Context, hostID string, parts []string) error
	HasAutomaticFlavors(ctx context.Context, hostID string) (bool, error)
	// CreateReport attests the host now.
	CreateReport(ctx context.Context, hostID string) (*report.Report, error)
	// LatestReport returns the newest report, nil without error when the
	// host has none yet.
	LatestReport(ctx context.Context, hostID string) (*report.Report, error)
}

// Nodes is what the manager needs of the Kubernetes adapter (cluster.Nodes
// plus the poll-duration annotation). Every method is idempotent.
type Nodes interface {
	EnabledNodes(ctx context.Context) ([]Node, error)
	MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error
	MarkFailed(ctx context.Context, node string, status cluster.Status, parts []string, reportID, message string) (changed bool, err error)
	Evict(ctx context.Context, node string, namespaces []string) (int, error)
	// Onboarded also clears the node's onboard request.
	Onboarded(ctx context.Context, node string, ready bool, reportID string) error
	Pending(ctx context.Context, node, reason, message string) error
	Withdraw(ctx context.Context, node, reason, message string) (changed bool, err error)
}

// StatusSink receives every decision (the EIM notifier). Notify must not block.
type StatusSink interface {
	Notify(hostGUID string, status eim.Status, detail string) error
}

// Clock is the manager's time source.
type Clock = clock.Clock

// VerifierError is a failure to get a result from the verifier: no decision
// can be made, the node's status stays and the node is marked Pending.
type VerifierError struct {
	Op  string
	Err error
}

func (e *VerifierError) Error() string { return "verifier " + e.Op + ": " + e.Err.Error() }
func (e *VerifierError) Unwrap() error { return e.Err }

func verr(op string, err error) error { return &VerifierError{Op: op, Err: err} }

// Deps are the Manager's collaborators. Verifier and Nodes are required.
type Deps struct {
	Verifier Verifier
	Nodes    Nodes
	// Status is nil when no EIM is configured.
	Status StatusSink
	// Clock defaults to the real clock.
	Clock Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Rand returns numbers in [0, 1) for the jitter; default math/rand/v2.
	Rand func() float64
	// OnCordon, when set, is told of every node this manager newly marks
	// failed (metrics).
	OnCordon func(node string, status cluster.Status)
}

// Manager runs the attestation of every enabled node.
type Manager struct {
	cfg      Config
	v        Verifier
	nodes    Nodes
	sink     StatusSink
	clock    Clock
	log      *slog.Logger
	rnd      func() float64
	onCordon func(node string, status cluster.Status)

	mu         sync.Mutex
	hosts      map[string]*nodeState // by node name
	byHost     map[string]string     // host id (node's and verifier's) → node name
	events     map[string]bool       // host ids with a published report not yet handled
	refreshDue time.Time
	wake       chan struct{}
}

// nodeState is what this process knows about a node. Losing it (a restart)
// costs at most a registration lookup and a report read per node.
type nodeState struct {
	node          Node
	seen          bool   // evaluated at least once by this process
	verifierID    string // host id in the verifier, "" until registered
	registeredFor string // node host id the registration is for
	flavorsKnown  bool
	hasFlavors    bool
	resetKnown    bool
	resetCount    uint32
	lastActed     string // report id this process acted on
	next          time.Time
	failures      int
	onboardTried  bool
	evictPending  bool // an eviction was refused or failed: retry at the next failure
	// evidenceAt is when the evidence of the last verdict was made (its
	// report's creation); zero when this process does not know.
	evidenceAt time.Time
	// want is the last verdict this process made the Node say; nil before.
	want *verdict
	// drift: the Node no longer says want.
	drift bool
}

// verdict is what the Node must say, to be said again when it drifts.
type verdict struct {
	status   cluster.Status // verified, a failure status, or unknown (withdrawn)
	ready    bool
	reportID string
	message  string
	parts    []string
	reason   string // of a withdrawal
}

// drifted tells whether the Node no longer says v.
func (v *verdict) drifted(n Node) bool {
	switch v.status {
	case cluster.StatusVerified:
		return n.Status != v.status || n.Ready != v.ready
	case cluster.StatusUnknown:
		return n.Ready || n.Status == cluster.StatusVerified || n.Status == cluster.StatusPending
	default: // failed
		return n.Status != v.status || n.Ready || !n.Tainted || !n.Cordoned
	}
}

// New returns a Manager. cfg is completed with defaults and validated.
func New(cfg Config, d Deps) (*Manager, error) {
	cfg = cfg.WithDefaults()
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if d.Verifier == nil {
		errs = append(errs, errors.New("manager: verifier is required"))
	}
	if d.Nodes == nil {
		errs = append(errs, errors.New("manager: nodes are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, v: d.Verifier, nodes: d.Nodes, sink: d.Status, clock: d.Clock, log: d.Logger, rnd: d.Rand, onCordon: d.OnCordon,
		hosts: map[string]*nodeState{}, byHost: map[string]string{}, events: map[string]bool{},
		wake: make(chan struct{}, 1),
	}
	if m.clock == nil {
		m.clock = clock.Real{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.rnd == nil {
		m.rnd = rand.Float64
	}
	return m, nil
}

// ReportPublished tells the manager that the verifier published a new trust
// report of hostID (the host id taken from the NATS subject). It never
// blocks: events of one host coalesce until the next Tick evaluates them.
func (m *Manager) ReportPublished(hostID string) {
	hostID = strings.ToLower(strings.TrimSpace(hostID))
	if hostID == "" {
		return
	}
	m.mu.Lock()
	m.events[hostID] = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run evaluates nodes until ctx ends: it refreshes the node list every
// Config.RefreshInterval, attests every node at its jittered poll time and
// evaluates a node at once when a report of it is published. It returns nil
// when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.log.Info("attestation manager started",
		slog.Duration("poll_duration", m.cfg.PollDuration), slog.String("golden_flavors", string(m.cfg.GoldenFlavors)))
	for {
		next := m.Tick(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := max(next.Sub(m.clock.Now()), minWait)
		select {
		case <-ctx.Done():
			return nil
		case <-m.clock.After(wait):
		case <-m.wake:
		}
	}
}

// minWait keeps Run from spinning when a node is due again at once.
const minWait = 50 * time.Millisecond

type trigger string

const (
	triggerStart    trigger = "start"    // first evaluation by this process
	triggerSchedule trigger = "schedule" // poll duration elapsed
	triggerEvent    trigger = "report"   // a report was published
	triggerOnboard  trigger = "onboard"  // an operator asked for re-onboarding
	triggerDrift    trigger = "drift"    // the Node no longer says the verdict
)

type work struct {
	st  *nodeState
	why trigger
}

// Tick does one round: it refreshes the node list when due, evaluates every
// node that is due or has a published report (at most Config.Concurrency at
// a time) and returns when the next round is due.
func (m *Manager) Tick(ctx context.Context) time.Time {
	now := m.clock.Now()
	if m.refreshDueAt(now) {
		m.refresh(ctx, now)
	}
	jobs := m.collect(now)
	sem := make(chan struct{}, m.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.evaluate(ctx, j.st, j.why)
		})
	}
	wg.Wait()
	return m.nextDue()
}

func (m *Manager) refreshDueAt(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !now.Before(m.refreshDue)
}

// refresh reads the enabled nodes: new nodes get a state, gone nodes lose
// theirs, a changed host id drops the registration.
func (m *Manager) refresh(ctx context.Context, now time.Time) {
	list, err := m.nodes.EnabledNodes(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshDue = now.Add(m.cfg.RefreshInterval)
	if err != nil {
		m.log.Warn("listing enabled nodes failed", slog.Any(keyErr, err))
		return
	}
	keep := make(map[string]bool, len(list))
	for _, n := range list {
		keep[n.Name] = true
		st, ok := m.hosts[n.Name]
		if !ok {
			st = &nodeState{}
			m.hosts[n.Name] = st
		}
		if st.node.HostID != n.HostID {
			st.verifierID, st.registeredFor, st.flavorsKnown, st.resetKnown = "", "", false, false
			// A verdict is about a host: another claimed host is attested
			// (or refused) now, not at the next poll.
			st.next = now
		}
		if !n.OnboardRequested {
			st.onboardTried = false
		}
		st.node = n
		if st.want != nil && st.want.drifted(n) {
			st.drift = true
		}
	}
	for name := range m.hosts {
		if !keep[name] {
			delete(m.hosts, name)
		}
	}
	// A host's reports go to the node registered for it; a node merely
	// claiming the same id does not take them over.
	clear(m.byHost)
	for name, st := range m.hosts {
		if st.verifierID != "" {
			m.byHost[strings.ToLower(st.verifierID)] = name
		}
	}
	for name, st := range m.hosts {
		if _, taken := m.byHost[st.node.HostID]; st.node.HostID != "" && !taken {
			m.byHost[st.node.HostID] = name
		}
	}
}

// collect picks the nodes to evaluate now and why.
func (m *Manager) collect(now time.Time) []work {
	m.mu.Lock()
	defer m.mu.Unlock()
	var jobs []work
	evented := map[string]bool{}
	for host := range m.events {
		if name, ok := m.byHost[host]; ok {
			evented[name] = true
		} else {
			// A report of a host we do not know: perhaps a node enabled
			// since the last refresh.
			m.refreshDue = now
		}
	}
	clear(m.events)
	for _, st := range m.hosts {
		switch {
		case !st.seen:
			jobs = append(jobs, work{st, triggerStart})
		case st.node.OnboardRequested && !st.onboardTried:
			jobs = append(jobs, work{st, triggerOnboard})
		case evented[st.node.Name]:
			// Before the schedule: the published report may carry a reboot.
			// A node also due is attested at the next Tick.
			jobs = append(jobs, work{st, triggerEvent})
		case !now.Before(st.next):
			jobs = append(jobs, work{st, triggerSchedule})
		case st.drift:
			jobs = append(jobs, work{st, triggerDrift})
		}
	}
	return jobs
}

func (m *Manager) nextDue() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.refreshDue
	if len(m.events) > 0 {
		return m.clock.Now()
	}
	for _, st := range m.hosts {
		if st.next.Before(next) {
			next = st.next
		}
	}
	return next
}

// trusted tells whether the Node says Verified or ready: what must not
// outlive its evidence.
func trusted(n Node) bool { return n.Status == cluster.StatusVerified || n.Ready }

// stale tells whether the node's evidence is older than MaxEvidenceAge at
// now, or of an unknown age (a restarted manager that could not read the
// verifier yet).
func (m *Manager) stale(st *nodeState, now time.Time) bool {
	return st.evidenceAt.IsZero() || now.Sub(st.evidenceAt) >= m.cfg.MaxEvidenceAge
}

// schedule sets the node's next attestation d from now (see clampNext).
func (m *Manager) schedule(st *nodeState, d time.Duration) {
	st.next = m.clock.Now().Add(d)
	m.clampNext(st)
}

// clampNext moves the node's next attestation to when its evidence grows
// older than MaxEvidenceAge if that comes first, whatever its poll duration
// (the node's own annotation may ask for a week).
func (m *Manager) clampNext(st *nodeState) {
	if st.evidenceAt.IsZero() {
		return
	}
	if deadline := st.evidenceAt.Add(m.cfg.MaxEvidenceAge); deadline.After(m.clock.Now()) && deadline.Before(st.next) {
		st.next = deadline
	}
}

// interval is the poll duration of a node: its annotation, or the default.
func (m *Manager) interval(st *nodeState) time.Duration {
	if v := st.node.PollDuration; v != "" {
		d, err := ParsePollDuration(v)
		if err == nil {
			return d
		}
		m.log.Warn("ignoring invalid poll-duration annotation", slog.String(keyNode, st.node.Name),
			slog.String(keyValue, v), slog.Any(keyErr, err))
	}
	return m.cfg.PollDuration
}

// jittered spreads d uniformly over d ± Jitter·d.
func (m *Manager) jittered(d time.Duration) time.Duration {
	return Jittered(d, m.cfg.Jitter, m.rnd())
}

// Jittered returns d moved by (2u-1)·frac·d, u in [0, 1): uniformly within
// d ± frac·d.
func Jittered(d time.Duration, frac, u float64) time.Duration {
	return d + time.Duration((2*u-1)*frac*float64(d))
}

// ParsePollDuration reads a poll duration: whole minutes ("60", the Helm
// value's form) or a Go duration ("90m"). It must be at least a minute and at
// most a week.
func ParsePollDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.Atoi(s); err == nil {
		d = time.Duration(n) * time.Minute
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("poll duration %q: want minutes or a duration such as 90m", s)
	}
	if d < MinPollDuration || d > MaxPollDuration {
		return 0, fmt.Errorf("poll duration %s: want %s to %s", d, MinPollDuration, MaxPollDuration)
	}
	return d, nil
}

// StatusCounts returns how many enabled nodes this manager knows in each
// status (metrics).
func (m *Manager) StatusCounts() map[cluster.Status]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[cluster.Status]int{}
	for _, st := range m.hosts {
		s := st.node.Status
		if s == "" {
			s = cluster.StatusPending
		}
		out[s]++
	}
	return out
}
