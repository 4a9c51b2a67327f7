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
// hand-written fakes and a fake clock. ReconcileNode is the whole work on
// one node; Controller runs it as a controller-runtime reconciler (Node
// watch, published reports, jittered requeues, bounded workers, Lease
// leader election); Tick is one deterministic pass over every node, for
// tests.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/hostlimit"
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
	ReasonHostIDInvalid       = "HostIDInvalid"
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
	// Node reads one Node as it is now: cluster.ErrNodeNotFound when it
	// is gone, cluster.ErrNotEnabled when it is not (or no longer)
	// selected for Trusted Compute.
	Node(ctx context.Context, name string) (Node, error)
	MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error
	MarkFailed(ctx context.Context, node string, status cluster.Status, parts []string, reportID, message string) (changed bool, err error)
	Evict(ctx context.Context, node string, namespaces []string) (int, error)
	// Onboarded also clears the node's onboard request.
	Onboarded(ctx context.Context, node string, ready bool, reportID string) error
	Pending(ctx context.Context, node, reason, message string) error
	Withdraw(ctx context.Context, node, reason, message string) (changed bool, err error)
	// FlavorsReplaced records that a boot whose measurements differed from
	// the golden flavors replaced them (cluster.Nodes.FlavorsReplaced).
	FlavorsReplaced(ctx context.Context, node, reportID, message string) error
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
	// claims gives each node its budget of attestations out of schedule
	// for a change of the host it claims, which it writes itself.
	claims *hostlimit.Limiter

	mu     sync.Mutex
	hosts  map[string]*nodeState // by node name
	byHost map[string]string     // host id (node's and verifier's) → node name
	events map[string]bool       // node names with a published report not yet evaluated
	woken  map[string]struct{}   // node names not yet handed to the controller
	wake   chan struct{}
}

// A node that keeps changing the host it claims (its host-id annotation or
// system UUID, which it writes itself), or keeps dropping and setting its
// own enabled label (each set makes it new to the manager), is attested out
// of schedule ClaimBurst times at once and then once a ClaimInterval at the
// most: each such attestation costs the verifier a report or a registration
// and the API server an Event. A real re-annotation is rare. The budget is
// kept by Node name, so forgetting a node does not refill it; a node's
// first attestation by this process takes one turn of the burst.
const (
	ClaimBurst    = 3
	ClaimInterval = 30 * time.Second
)

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
	// staleToldAt is when the EIM was last told that the verdict is stale
	// (tellEIMStale); zero since the last verdict.
	staleToldAt time.Time
	// verdictHost is the host id of the last verdict this process made.
	verdictHost string
	// leftTold is the verdictHost the EIM was told the node no longer
	// claims (withdraw); "" since the last verdict.
	leftTold string
	// drift: the Node no longer says want.
	drift bool
	// shown is node.Status after the last reconcile, under Manager.mu.
	shown cluster.Status
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
		woken: map[string]struct{}{}, wake: make(chan struct{}, 1),
	}
	if m.clock == nil {
		m.clock = clock.Real{}
	}
	m.claims = hostlimit.New(m.clock, ClaimInterval, ClaimBurst)
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
// blocks: events of one node coalesce until its next reconcile, and the node
// is handed to the controller's channel source (see Controller) at once.
func (m *Manager) ReportPublished(hostID string) {
	hostID = strings.ToLower(strings.TrimSpace(hostID))
	if hostID == "" {
		return
	}
	m.mu.Lock()
	name, ok := m.byHost[hostID]
	if ok {
		m.events[name] = true
		m.woken[name] = struct{}{}
	}
	m.mu.Unlock()
	if !ok {
		// A host no tracked node claims: a node enabled since is
		// reconciled from the Node watch, and reads the latest report then.
		return
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// takeWoken returns the nodes with a published report not yet handed to the
// controller, and forgets them.
func (m *Manager) takeWoken() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Keys(m.woken))
	clear(m.woken)
	return out
}

// minWait keeps a node due again at once from spinning.
const minWait = 50 * time.Millisecond

type trigger string

const (
	triggerStart    trigger = "start"    // first evaluation by this process
	triggerSchedule trigger = "schedule" // poll duration elapsed
	triggerEvent    trigger = "report"   // a report was published
	triggerOnboard  trigger = "onboard"  // an operator asked for re-onboarding
	triggerDrift    trigger = "drift"    // the Node no longer says the verdict
	// triggerClaimPutOff: the Node claims another host, whose attestation
	// its claims' budget puts off; its verdict, about the host it claimed
	// before, is withdrawn meanwhile.
	triggerClaimPutOff trigger = "claim-put-off"
)

// Tick reconciles every enabled node once, one after another, and returns
// when the next one is due. It is what the controller does over time, in one
// deterministic step: tests drive it with a fake clock. A node that is not
// due, has no published report, no onboard request and no drift is only
// looked at.
func (m *Manager) Tick(ctx context.Context) time.Time {
	list, err := m.nodes.EnabledNodes(ctx)
	if err != nil {
		m.log.Warn("listing enabled nodes failed", slog.Any(keyErr, err))
	}
	names := make(map[string]bool, len(list))
	for _, n := range list {
		names[n.Name] = true
	}
	m.mu.Lock()
	for name := range m.hosts {
		names[name] = true // gone or disabled nodes are forgotten by their reconcile
	}
	m.mu.Unlock()
	next := m.clock.Now().Add(m.cfg.PollDuration)
	for _, name := range slices.Sorted(maps.Keys(names)) {
		after, err := m.ReconcileNode(ctx, name)
		if err != nil {
			m.log.Warn("reconcile failed", slog.String(keyNode, name), slog.Any(keyErr, err))
			continue
		}
		if at := m.clock.Now().Add(after); after > 0 && at.Before(next) {
			next = at
		}
	}
	return next
}

// ReconcileNode brings one node up to date: it reads the Node, evaluates it
// when it is due, has a published report, an onboard request or drifted
// from the verdict, and returns how long until it is due again (the
// jittered poll duration, or the retry after a verifier failure). A Node
// gone or no longer enabled is forgotten (0, nil). An error is a failure to
// read or act on the Node; the caller retries it rate-limited.
func (m *Manager) ReconcileNode(ctx context.Context, name string) (time.Duration, error) {
	n, err := m.nodes.Node(ctx, name)
	if errors.Is(err, cluster.ErrNodeNotFound) || errors.Is(err, cluster.ErrNotEnabled) {
		m.forget(name)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := m.clock.Now()
	st, why, due := m.track(n, now)
	if due {
		err = m.evaluate(ctx, st, why)
	}
	m.mu.Lock()
	st.shown = st.node.Status // for StatusCounts, which may run meanwhile
	m.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return max(st.next.Sub(m.clock.Now()), minWait), nil
}

// track brings this process's state of the node up to date with n: a new
// node gets a state, a changed host id drops the registration, a Node that
// no longer says the verdict is marked drifted. It says whether the node is
// to be evaluated now, and why; a published report is consumed.
func (m *Manager) track(n Node, now time.Time) (*nodeState, trigger, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	putOff := false
	st, ok := m.hosts[n.Name]
	if !ok {
		st = &nodeState{}
		m.hosts[n.Name] = st
	}
	if st.node.HostID != n.HostID {
		if old := st.node.HostID; old != "" && m.byHost[old] == n.Name {
			delete(m.byHost, old)
		}
		st.verifierID, st.registeredFor, st.flavorsKnown, st.resetKnown = "", "", false, false
		// A verdict is about a host: another claimed host is attested
		// (or refused) now, not at the next poll. The node writes its
		// claim itself, so one that keeps changing it gets ClaimBurst
		// attestations and then one a ClaimInterval, never later than
		// its schedule.
		next := now.Add(m.claims.Next(n.Name))
		if next.Before(st.next) || st.next.IsZero() {
			st.next = next
		}
		// The verdict the Node shows is about the host it claimed before:
		// it goes now, not at the new claim's turn (fail closed).
		putOff = st.seen && now.Before(st.next)
	}
	if !n.OnboardRequested {
		st.onboardTried = false
	}
	st.node = n
	if st.want != nil && st.want.drifted(n) {
		st.drift = true
	}
	// A host's reports go to the node registered for it; a node merely
	// claiming the same id does not take them over.
	if _, taken := m.byHost[n.HostID]; n.HostID != "" && !taken {
		m.byHost[n.HostID] = n.Name
	}
	evented := m.events[n.Name]
	delete(m.events, n.Name)
	switch {
	case putOff:
		return st, triggerClaimPutOff, true
	case !st.seen && now.Before(st.next):
		// New to this process, and put off by its claims' budget: a node
		// that drops and sets its own enabled label again and again is
		// new at every set.
		return st, "", false
	case !st.seen:
		return st, triggerStart, true
	case n.OnboardRequested && !st.onboardTried:
		return st, triggerOnboard, true
	case evented:
		// Before the schedule: the published report may carry a reboot.
		// A node also due is attested at its next reconcile, at once.
		return st, triggerEvent, true
	case !now.Before(st.next):
		return st, triggerSchedule, true
	case st.drift:
		return st, triggerDrift, true
	}
	return st, "", false
}

// forget drops the state of a node that is gone or no longer enabled.
func (m *Manager) forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.hosts, name)
	delete(m.events, name)
	delete(m.woken, name)
	for host, owner := range m.byHost {
		if owner == name {
			delete(m.byHost, host)
		}
	}
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

// ParseMinutes reads whole minutes ("60", the Helm values' form) or a Go
// duration ("90m").
func ParseMinutes(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Minute, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want minutes or a duration such as 90m", s)
	}
	return d, nil
}

// ParsePollDuration reads a poll duration (ParseMinutes). It must be at
// least a minute and at most a week.
func ParsePollDuration(s string) (time.Duration, error) {
	d, err := ParseMinutes(s)
	if err != nil {
		return 0, fmt.Errorf("poll duration %w", err)
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
		s := st.shown
		if s == "" {
			s = cluster.StatusPending
		}
		out[s]++
	}
	return out
}
