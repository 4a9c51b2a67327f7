// Package fleetsim simulates a fleet of edge nodes in one process, for load
// tests of the verifier: each node runs the real trust agent
// (internal/agent) over its own connection to the verifier's bus, with a
// software TPM (internal/fleetsim/softtpm) whose EK certificate a simulator
// EK CA issued, the real OVMF boot log (internal/sandbox) replayed into its
// PCRs, and an IMA log that grows. The fleet enrolls its nodes through the
// verifier's REST API as an operator does: bus credentials from AAS, AK
// enrollment by credential activation, host registration, golden flavors
// from each node's first measurements.
//
// Nodes start in parallel, 16 × GOMAXPROCS at a time by default; AddNodes grows
// a running fleet, so a load test can measure one fleet size after another.
package fleetsim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/restapi"
)

// Log field keys.
const (
	keyHost  = "host_id"
	keyError = "error"
	keyNodes = "nodes"
	keyTook  = "took"
)

// Options configure a Fleet.
type Options struct {
	// API is the verifier's REST API with an administrator's login.
	API *API
	// NATSURL is the verifier's bus; Roots verify its TLS certificate (the
	// CMS root).
	NATSURL string
	Roots   *x509.CertPool
	// EKCA issues the nodes' EK certificates; the verifier must trust it
	// (enrollment.ek_ca_files).
	EKCA *softtpm.EKCA
	// Prefix starts every host id (default "sim"): <prefix>-00001, ...
	Prefix string
	// IMAFiles is the number of files every boot measures (default 32).
	IMAFiles int
	// Banks are the nodes' PCR banks (default SHA256).
	Banks []string
	// Parallel bounds the nodes started at once (default 16 × GOMAXPROCS:
	// a node's enrollment is a chain of round trips that waits more than
	// it computes).
	Parallel int
	// Agent configures every node's trust agent (HostID is set per node);
	// zero intervals take the agent's defaults.
	Agent agent.Config
	// NodeNames makes each agent name its host id as the Kubernetes Node
	// it runs on (agent.Config.NodeName), for a fleet whose Nodes are
	// named so (the sandbox's).
	NodeNames bool
	// Logger receives the fleet's log; AgentLogger the agents' (default:
	// discarded, thousands of agents are loud).
	Logger, AgentLogger *slog.Logger
}

// Fleet is a running simulated fleet.
type Fleet struct {
	opts  Options
	image *bootImage

	mu    sync.Mutex
	nodes []*Node

	retries atomic.Int64 // see Retries
}

// New prepares a fleet with no node yet: the boot image every node boots.
func New(ctx context.Context, opts Options) (*Fleet, error) {
	if opts.API == nil || opts.NATSURL == "" || opts.Roots == nil || opts.EKCA == nil {
		return nil, errors.New("fleetsim: api, nats url, roots and ek ca are required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "sim"
	}
	if opts.IMAFiles <= 0 {
		opts.IMAFiles = 32
	}
	if len(opts.Banks) == 0 {
		opts.Banks = []string{evidence.BankSHA256}
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 16 * runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AgentLogger == nil {
		opts.AgentLogger = slog.New(slog.DiscardHandler)
	}
	if opts.Agent.AgentVersion == "" {
		opts.Agent.AgentVersion = "fleetsim"
	}
	img, err := newBootImage(ctx, opts.Banks, opts.IMAFiles)
	if err != nil {
		return nil, err
	}
	return &Fleet{opts: opts, image: img}, nil
}

// Nodes lists the fleet's nodes, in the order they were numbered.
func (f *Fleet) Nodes() []*Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Node(nil), f.nodes...)
}

// AddNodes starts n more nodes, Parallel at a time: each boots, connects
// its agent to the bus, is enrolled, registered and baselined. It returns
// when all are, or at the first failure.
func (f *Fleet) AddNodes(ctx context.Context, n int) error {
	f.mu.Lock()
	first := len(f.nodes) + 1
	f.mu.Unlock()
	start := time.Now()
	added := make([]*Node, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.opts.Parallel)
	for i := range n {
		g.Go(func() error {
			node, err := f.startNode(gctx, first+i)
			added[i] = node
			return err
		})
	}
	err := g.Wait()
	f.mu.Lock()
	for _, node := range added {
		if node != nil {
			f.nodes = append(f.nodes, node)
		}
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "nodes enrolled", slog.Int(keyNodes, n), slog.Duration(keyTook, time.Since(start)))
	return nil
}

// startNode makes node i and brings it into the verifier. A node that
// started is returned even when a later step fails, so that Stop stops it.
func (f *Fleet) startNode(ctx context.Context, i int) (*Node, error) {
	n, err := newNode(i, f.opts.Prefix, f.opts.EKCA, f.image, f.opts.Banks)
	if err != nil {
		return nil, err
	}
	api := f.opts.API
	var creds []byte
	if err := f.retry(ctx, func() error {
		creds, err = api.Credentials(ctx, restapi.CredentialsAgent, n.HostID)
		return err
	}); err != nil {
		return nil, fmt.Errorf("bus credentials of %s: %w", n.HostID, err)
	}
	n.dial = func(ctx context.Context) (*nats.Conn, error) {
		return natsbus.Connect(ctx, f.opts.NATSURL, creds, f.opts.Roots, "agent-"+n.HostID, f.opts.AgentLogger)
	}
	n.agentCfg, n.nodeNames, n.logger = f.opts.Agent, f.opts.NodeNames, f.opts.AgentLogger
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	if err := f.enroll(ctx, n); err != nil {
		return n, err
	}
	return n, nil
}

// enroll enrolls the node's AK, registers the host and makes its first
// measurements its golden flavors. Transient refusals are retried (retry).
func (f *Fleet) enroll(ctx context.Context, n *Node) error {
	api := f.opts.API
	if err := f.retry(ctx, func() error {
		_, err := api.Call(ctx, http.MethodPost, "/hvs/v2/aik-enrollments", map[string]string{"host_id": n.HostID})
		return err
	}); err != nil {
		return fmt.Errorf("enroll the ak of %s: %w", n.HostID, err)
	}
	host := restapi.HostRequest{HostName: n.HostID, ConnectionString: "nats://" + n.HostID, Description: "fleetsim node"}
	attempts := 0
	if err := f.retry(ctx, func() error {
		attempts++
		_, err := api.Call(ctx, http.MethodPost, "/hvs/v2/hosts", host)
		var se *StatusError
		if attempts > 1 && errors.As(err, &se) && se.Status == http.StatusConflict {
			return nil // the attempt that failed had registered it
		}
		return err
	}); err != nil {
		return fmt.Errorf("register host %s: %w", n.HostID, err)
	}
	baseline := restapi.FlavorRequest{HostID: n.HostID, PartialFlavorTypes: []flavor.Part{flavor.PartPlatform, flavor.PartOS, flavor.PartIMA}}
	if err := f.retry(ctx, func() error {
		_, err := api.Call(ctx, http.MethodPost, "/hvs/v2/flavors", baseline)
		return err
	}); err != nil {
		return fmt.Errorf("baseline %s: %w", n.HostID, err)
	}
	return nil
}

// Retries is the number of enrollment steps retried so far: answered 503
// (the agent not subscribed yet, or reconnecting on a loaded machine) or
// 500 (a store timeout under the enrollment load).
func (f *Fleet) Retries() int64 { return f.retries.Load() }

// retry calls call until it does not fail with 503 or 500, for at most
// about 15 s, counting the retries.
func (f *Fleet) retry(ctx context.Context, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := call()
		var se *StatusError
		if err == nil || !errors.As(err, &se) || attempt == 60 ||
			(se.Status != http.StatusServiceUnavailable && se.Status != http.StatusInternalServerError) {
			return err
		}
		f.retries.Add(1)
		f.opts.Logger.LogAttrs(ctx, slog.LevelDebug, "enrollment step retried", slog.String(keyError, err.Error()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop stops every node's agent and closes its bus connection.
func (f *Fleet) Stop() {
	var wg sync.WaitGroup
	for _, n := range f.Nodes() {
		wg.Go(n.StopAgent)
	}
	wg.Wait()
}
