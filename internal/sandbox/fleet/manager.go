package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Manager is the attestation manager in local mode. Run attests the enabled
// nodes through the verifier and acts on Nodes until ctx ends. The sandbox
// runs a minimal built-in loop (see localManager) unless Options.NewManager
// plugs in another one, such as internal/manager.
type Manager interface {
	Run(ctx context.Context) error
}

// Nodes is what a manager acts on: internal/cluster.Nodes in a cluster, the
// sandbox's Registry here. The signatures are cluster.Nodes'.
type Nodes interface {
	EnabledNodes(ctx context.Context) ([]cluster.NodeInfo, error)
	Get(ctx context.Context, name string) (cluster.NodeInfo, error)
	MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error
	MarkFailed(ctx context.Context, node string, status cluster.Status, parts []string, reportID, message string) (bool, error)
	Onboarded(ctx context.Context, node string, ready bool, reportID string) error
	Pending(ctx context.Context, node, reason, message string) error
}

var (
	_ Nodes = (*Registry)(nil)
	_ Nodes = (*cluster.Nodes)(nil)
)

// ManagerDeps is what the sandbox hands a manager.
type ManagerDeps struct {
	// VerifierURL is the verifier's HTTPS base URL; RootCAs pins its CMS
	// root. AdminUser and AdminPasswordFile log in to AAS; Verifier is a
	// ready client with those.
	VerifierURL       string
	RootCAs           *x509.CertPool
	AdminUser         string
	AdminPasswordFile string
	Verifier          *Client
	// NATSURL and NATSCreds (manager credentials: subscribe to
	// trust-reports.> only) reach the verifier's bus.
	NATSURL   string
	NATSCreds []byte
	Nodes     Nodes
	// PollInterval is how often every node is attested.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// NewManagerFunc builds a manager.
type NewManagerFunc func(ManagerDeps) (Manager, error)

// Messages and reasons of the local manager.
const (
	reasonAgentUnreachable = "AgentUnreachable"
	msgVerified            = "attestation passed"
	msgFailed              = "attestation failed"
	msgSecureBootOff       = "Secure Boot is disabled (read from the quoted PCR 7 events)"
)

// localManager is the sandbox's stand-in for internal/manager: poll every
// node, act on every published report, re-baseline after a reboot, decide
// Verified / Attestation Failed / Secure Boot Disabled, never uncordon but
// on an operator's onboard request.
type localManager struct {
	d     ManagerDeps
	log   *slog.Logger
	state map[string]*hostState
}

type hostState struct {
	last       time.Time // creation of the last report acted on
	resetCount uint32
	known      bool
}

// NewLocalManager returns the built-in manager loop.
func NewLocalManager(d ManagerDeps) (Manager, error) {
	if d.Verifier == nil || d.Nodes == nil {
		return nil, errors.New("local manager: a verifier client and nodes are required")
	}
	if d.PollInterval <= 0 {
		d.PollInterval = 5 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &localManager{d: d, log: d.Logger, state: map[string]*hostState{}}, nil
}

func (m *localManager) Run(ctx context.Context) error {
	reports := make(chan *report.Report, 64)
	if m.d.NATSURL != "" && len(m.d.NATSCreds) > 0 {
		nc, err := bus.Connect(ctx, m.d.NATSURL, m.d.NATSCreds, m.d.RootCAs, "manager-sandbox", m.log)
		if err != nil {
			return err
		}
		defer nc.Close()
		sub, err := nc.Subscribe(bus.AllReports, func(msg *nats.Msg) {
			r, err := report.Verify(string(msg.Data), m.d.RootCAs, time.Now())
			if err != nil {
				m.log.Warn("published report refused", keyError, err.Error())
				return
			}
			select {
			case reports <- r:
			default:
			}
		})
		if err != nil {
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	tick := time.NewTicker(m.d.PollInterval)
	defer tick.Stop()
	m.pollAll(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.pollAll(ctx)
		case r := <-reports:
			nodes, err := m.d.Nodes.EnabledNodes(ctx)
			if err != nil {
				continue
			}
			for _, n := range nodes {
				if n.HostID == strings.ToLower(r.HostID) {
					m.act(ctx, n.Name, r)
				}
			}
		}
	}
}

func (m *localManager) pollAll(ctx context.Context) {
	nodes, err := m.d.Nodes.EnabledNodes(ctx)
	if err != nil {
		m.log.Warn("list nodes", keyError, err.Error())
		return
	}
	for _, n := range nodes {
		if ctx.Err() != nil {
			return
		}
		r, err := m.d.Verifier.Report(ctx, n.HostID)
		if err != nil {
			if ctx.Err() == nil {
				_ = m.d.Nodes.Pending(ctx, n.Name, cluster.ReasonVerifierUnreachable, err.Error())
			}
			continue
		}
		m.act(ctx, n.Name, r)
	}
}

// act decides on one report of node and acts on it.
func (m *localManager) act(ctx context.Context, node string, r *report.Report) {
	st := m.state[node]
	if st == nil {
		st = &hostState{}
		m.state[node] = st
	}
	if !r.Created.After(st.last) {
		return // older than what was acted on
	}
	st.last = r.Created
	if r.HostStatus == report.StatusConnectionFailure || r.HostStatus == report.StatusConnectionTimeout {
		_ = m.d.Nodes.Pending(ctx, node, reasonAgentUnreachable, "the trust agent did not answer: "+strings.ToLower(r.HostStatus))
		return
	}
	quoted := len(r.Nonce) > 0
	if quoted && (r.Rebooted || (st.known && r.ResetCount != st.resetCount)) {
		// The seed's rule: after every reboot the first measurements
		// become the golden flavors.
		m.log.Info("node rebooted: re-baseline", keyNode, node, keyResetCount, r.ResetCount)
		if err := m.d.Verifier.Rebaseline(ctx, r.HostID); err != nil {
			_ = m.d.Nodes.Pending(ctx, node, cluster.ReasonVerifierUnreachable, "re-baseline: "+err.Error())
			return
		}
		again, err := m.d.Verifier.Report(ctx, r.HostID)
		if err != nil {
			_ = m.d.Nodes.Pending(ctx, node, cluster.ReasonVerifierUnreachable, err.Error())
			return
		}
		r = again
		st.last = r.Created
		quoted = len(r.Nonce) > 0
	}
	if quoted {
		st.resetCount, st.known = r.ResetCount, true
	}
	if err := m.decide(ctx, node, r); err != nil && ctx.Err() == nil {
		m.log.Warn("act on node", keyNode, node, keyError, err.Error())
	}
}

func (m *localManager) decide(ctx context.Context, node string, r *report.Report) error {
	sb := r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled
	switch {
	case !sb:
		_, err := m.d.Nodes.MarkFailed(ctx, node, cluster.StatusSecureBootDisabled, failedParts(r), r.ID, msgSecureBootOff)
		return err
	case !r.Trusted():
		_, err := m.d.Nodes.MarkFailed(ctx, node, cluster.StatusAttestationFailed, failedParts(r), r.ID, msgFailed)
		return err
	}
	// Ready as the attestation manager decides it by default: disk
	// encryption measured from PCR 15, not only claimed by the agent.
	ready := r.HostInfo.DiskEncryptionStatus == appraise.DiskEncryptionMeasured
	info, err := m.d.Nodes.Get(ctx, node)
	if err != nil {
		return err
	}
	if info.OnboardRequested {
		return m.d.Nodes.Onboarded(ctx, node, ready, r.ID)
	}
	return m.d.Nodes.MarkVerified(ctx, node, ready, r.ID, msgVerified)
}

// failedParts names the failed flavor parts, else the evidence faults.
func failedParts(r *report.Report) []string {
	if parts := r.FailedParts(); len(parts) > 0 {
		return parts
	}
	var names []string
	for _, f := range r.Faults {
		names = append(names, f.Name)
	}
	return names
}
