package fleet

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/fleetsim/softtpm"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/enroll"
)

// Options configure a sandbox fleet. The zero value runs three nodes in a
// temp dir against the sandbox's local Kubernetes API.
type Options struct {
	// Nodes is the number of edge nodes (default 3).
	Nodes int
	// Dir holds the verifier's database and CMS root, the admin password
	// and one directory per node; a temp dir, removed at the end, when empty.
	Dir string
	// PollInterval is the attestation manager's poll duration (default
	// and minimum: the manager's minimum, one minute). Reboots, IMA
	// changes and the controls are attested at once, on the reports the
	// verifier publishes.
	PollInterval time.Duration
	// NodeCommand is the argv that starts a node process, before the node
	// flags: the running binary with its "sandbox node" subcommand by
	// default. NodeEnv is added to the node's environment.
	NodeCommand []string
	NodeEnv     []string
	// Logger receives the sandbox's, the verifier's and the manager's
	// logs; nil discards.
	Logger *slog.Logger
	// KubeConfig, when set, is a real cluster: the sandbox creates a Node
	// object per node (if missing) and runs the attestation manager's
	// controller against it, as in production. Without it the manager
	// acts on Node objects in the sandbox's local Kubernetes API.
	KubeConfig *rest.Config
	// KubeAssets, when set and KubeConfig is not, is a directory holding
	// kube-apiserver and etcd (hack/kube-tools.sh builds them): the
	// sandbox runs them as its Kubernetes API, for the fleet's lifetime,
	// and writes an administrator's kubeconfig into its data dir.
	KubeAssets string
	// Namespace holds the onboard requests (cluster.DefaultNamespace).
	Namespace string
	// Simulator is SimulatorProcess or SimulatorFleet; empty runs node
	// processes up to MaxProcessNodes nodes and the fleet simulator above.
	Simulator string
	// Parallel bounds the nodes started at once (default GOMAXPROCS for
	// node processes, 16 × GOMAXPROCS on the fleet simulator, whose
	// enrollments wait more than they compute).
	Parallel int
}

// defaults fills in the zero values and checks the rest.
func (o *Options) defaults() error {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Nodes > MaxNodes {
		return fmt.Errorf("%d nodes: the sandbox starts at most %d", o.Nodes, MaxNodes)
	}
	switch o.Simulator {
	case "":
		o.Simulator = SimulatorProcess
		if o.Nodes > MaxProcessNodes {
			o.Simulator = SimulatorFleet
		}
	case SimulatorProcess, SimulatorFleet:
	default:
		return fmt.Errorf("simulator %q: want %s or %s", o.Simulator, SimulatorProcess, SimulatorFleet)
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
		if o.Simulator == SimulatorFleet {
			o.Parallel *= 16
		}
	}
	if o.PollInterval == 0 {
		// A large fleet is attested at about 17 reports a second, what
		// 1,000 nodes at a minute ask: the sandbox shares its cores with
		// them all.
		o.PollInterval = max(manager.MinPollDuration, time.Duration(o.Nodes)*60*time.Millisecond)
	}
	if o.Namespace == "" {
		o.Namespace = cluster.DefaultNamespace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.NodeCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("node command: %w", err)
		}
		o.NodeCommand = []string{exe, "sandbox", "node"}
	}
	return nil
}

// Fleet is a running sandbox: the verifier, the node processes, the
// Kubernetes API (local or real) and the attestation manager.
type Fleet struct {
	opts     Options
	dir      string
	log      *slog.Logger
	verifier *verifier.Verifier
	client   *Client
	roots    *x509.CertPool
	// nodes are the fleet's nodes in their order (node i is nodes[i-1]);
	// procs the node processes, sim the fleet simulator, whichever runs them.
	nodes  []member
	byName map[string]member
	procs  []*nodeProc
	sim    *fleetsim.Fleet
	ekCA   *softtpm.EKCA
	// control is the kube-apiserver and etcd the sandbox runs (KubeAssets).
	control *controlPlane

	// kube is the Kubernetes API the manager acts on; api is set when it
	// is the local one.
	kube     kubernetes.Interface
	api      *localAPI
	adapter  *cluster.Nodes
	requests *cluster.OnboardRequests
	notices  *notices
	// hold is read-held by every reconcile of the local controller;
	// holding it pauses the manager (tests).
	hold sync.RWMutex

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	rmDir  bool
}

const adminUser = "admin"

// Log field keys.
const (
	keyPart       = "part"
	keyNode       = "node"
	keyPID        = "pid"
	keyError      = "error"
	keyCommand    = "command"
	keyBoot       = "boot"
	keySecureBoot = "secure_boot"
	keyBanks      = "banks"
	keyPCR        = "pcr"
	keySubject    = "subject"
	keyControl    = "control"
)

// Start brings the fleet up: the verifier; the node processes, each
// enrolled (EK registered, AK activated); their Node objects; the
// attestation manager, which registers, baselines and attests them. It does
// not wait for the first verdicts (see WaitAllVerified). Stop ends it all;
// ctx bounds the start only.
func Start(ctx context.Context, opts Options) (f *Fleet, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	f = &Fleet{opts: opts, log: opts.Logger, dir: opts.Dir, byName: map[string]member{}}
	if f.dir == "" {
		if f.dir, err = os.MkdirTemp("", "tc-sandbox-"); err != nil {
			return nil, err
		}
		f.rmDir = true
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	defer func() {
		if err != nil {
			f.Stop()
			f = nil
		}
	}()
	if opts.Simulator == SimulatorFleet {
		if err := raiseFileLimit(opts.Nodes); err != nil {
			return f, err
		}
	}
	if opts.KubeAssets != "" && opts.KubeConfig == nil {
		if err := f.startControlPlane(); err != nil {
			return f, err
		}
	}
	if err := f.kubernetesAPI(); err != nil {
		return f, err
	}
	if err := f.startVerifier(ctx, runCtx); err != nil {
		return f, err
	}
	if err := f.forgetEarlierRun(ctx); err != nil {
		return f, err
	}
	if opts.Simulator == SimulatorFleet {
		err = f.startSimulated(ctx)
	} else {
		err = f.startProcesses(ctx, runCtx)
	}
	if err != nil {
		return f, err
	}
	if err := f.createNodes(ctx); err != nil {
		return f, err
	}
	return f, f.startManager(ctx, runCtx)
}

// inParallel runs do(i) for i in [0, n), at most limit at once, and
// returns the first failure.
func inParallel(ctx context.Context, n, limit int, do func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := range n {
		g.Go(func() error { return do(gctx, i) })
	}
	return g.Wait()
}

// add makes m a node of the fleet.
func (f *Fleet) add(m member) {
	name, _ := m.id()
	f.nodes = append(f.nodes, m)
	f.byName[name] = m
}

// startProcesses starts the node processes, Parallel at a time, each
// enrolled as soon as it is up.
func (f *Fleet) startProcesses(ctx, runCtx context.Context) error {
	procs := make([]*nodeProc, f.opts.Nodes)
	err := inParallel(ctx, f.opts.Nodes, f.opts.Parallel, func(ctx context.Context, i int) error {
		n, err := f.startNode(ctx, runCtx, i+1)
		procs[i] = n
		if err != nil {
			return err
		}
		return f.enroll(ctx, n)
	})
	for _, n := range procs {
		if n != nil {
			f.procs = append(f.procs, n)
			f.add(n)
		}
	}
	return err
}

// simBanks are the PCR banks of the simulated fleet's TPMs.
var simBanks = []string{evidence.BankSHA256}

// startSimulated starts the nodes on the fleet simulator, Parallel at a
// time: each is enrolled (its EK certificate chains to the simulator's EK
// CA, which the verifier trusts), registered and baselined.
func (f *Fleet) startSimulated(ctx context.Context) error {
	sim, err := fleetsim.New(ctx, fleetsim.Options{
		API: f.client.API, NATSURL: f.verifier.NATSURL(), Roots: f.roots, EKCA: f.ekCA,
		Prefix: nodePrefix, Banks: simBanks, Parallel: f.opts.Parallel,
		Agent: agent.Config{AgentVersion: "sandbox", IMAPollInterval: time.Second, IMADebounce: 300 * time.Millisecond},
		// The sandbox's Nodes are named after their hosts.
		NodeNames: true,
		Logger:    f.log.With(keyPart, "fleet simulator"), AgentLogger: f.log.With(keyPart, "agent"),
	})
	if err != nil {
		return fmt.Errorf("fleet simulator: %w", err)
	}
	f.sim = sim
	err = sim.AddNodes(ctx, f.opts.Nodes)
	for _, n := range sim.Nodes() {
		f.add(simNode{n: n, banks: simBanks})
	}
	return err
}

// raiseFileLimit makes room for the open files of nodes simulated nodes:
// both ends of each one's bus connection are in this process.
func raiseFileLimit(nodes int) error {
	need := uint64(2*nodes + 1024)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	lim.Cur, lim.Max = need, max(lim.Max, need)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("%d simulated nodes need %d open files (both ends of each bus connection are in this process), and the limit could not be raised: raise it (ulimit -n %d) or start fewer nodes: %w", nodes, need, need, err)
	}
	return nil
}

// goTask runs a long-lived part; its failure stops the fleet.
func (f *Fleet) goTask(name string, run func() error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := run(); err != nil && !errors.Is(err, context.Canceled) {
			f.errMu.Lock()
			if f.err == nil {
				f.err = fmt.Errorf("%s: %w", name, err)
			}
			f.errMu.Unlock()
			f.log.Error("sandbox part stopped", keyPart, name, keyError, err.Error())
			f.cancel()
		}
	}()
}

// Err is the first failure of a long-lived part, if any.
func (f *Fleet) Err() error {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.err
}

// adminPassword reads the admin password of a data dir that has one (AAS
// keeps its first admin), else makes one and writes it there, 0600.
func adminPassword(dir string) (string, error) {
	path := filepath.Join(dir, "admin-password")
	if b, err := os.ReadFile(path); err == nil { //nolint:gosec // a file in the sandbox's own data dir
		return strings.TrimSpace(string(b)), nil
	}
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(pw)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return password, os.WriteFile(path, []byte(password+"\n"), 0o600)
}

// startVerifier runs the verifier until runCtx ends; ctx bounds the start.
func (f *Fleet) startVerifier(ctx, runCtx context.Context) error {
	password, err := adminPassword(f.dir)
	if err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	vdir := filepath.Join(f.dir, "verifier")
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return err
	}
	cfg := verifier.LoopbackConfig(vdir)
	cfg.AAS.AdminPassword = password
	// The simulator has no EK certificate: the sandbox registers each
	// node's EK public key, as an operator would.
	// The fleet simulator's TPMs have EK certificates from its EK CA.
	cfg.Enrollment = enroll.Config{AllowRegisteredEKs: true}
	// The operator's dashboard, as a real deployment can turn it on.
	cfg.Dashboard = verifier.DashboardConfig{Listen: "127.0.0.1:0"}
	if f.opts.Simulator == SimulatorFleet {
		if f.ekCA, err = softtpm.NewEKCA(time.Now()); err != nil {
			return err
		}
		cfg.Enrollment.EKRoots = f.ekCA.Pool()
	}
	v, err := verifier.New(runCtx, cfg, f.log.With(keyPart, "verifier"))
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	if err := v.Listen(runCtx); err != nil {
		_ = v.Store().Close()
		return err
	}
	f.verifier = v
	done := make(chan struct{})
	f.goTask("verifier", func() error { defer close(done); return v.Run(runCtx) })
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-v.Ready():
	case <-done:
		return fmt.Errorf("verifier stopped while starting: %w", f.Err())
	case <-time.After(60 * time.Second):
		return errors.New("verifier not ready in 60s")
	}
	base := "https://" + v.Addr()
	root, err := cms.FetchRootPinned(ctx, base, v.CA().RootSHA384())
	if err != nil {
		return fmt.Errorf("pinned bootstrap: %w", err)
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(root)
	f.client = NewClient(base, f.roots, adminUser, password, 2*f.opts.Parallel)
	return nil
}

// nodeProc is a node process as the parent sees it.
type nodeProc struct {
	name, uuid, dir string
	cmd             *exec.Cmd
	stdin           io.WriteCloser
	msgs            chan nodeMessage
	exited          chan struct{}
	ekPEM           string

	mu sync.Mutex // one command at a time
	rc uint32     // the reset count after the last boot, as the node said
}

// nodeUUID is the hardware UUID of node i: the first 256 nodes keep the
// UUIDs they always had (…1a00 to …1aff), and the last group counts on past
// them instead of growing beyond its 12 hex digits.
func nodeUUID(i int) string {
	return fmt.Sprintf("6f1f7c1e-2d6b-4b8a-9c3e-%012x", 0x5a4d3c2b1a00+uint64(i))
}

// startNode starts node i for the fleet's lifetime (runCtx); ctx bounds the
// wait for it. A node whose process started is returned even when it then
// failed, so that Stop stops it.
func (f *Fleet) startNode(ctx, runCtx context.Context, i int) (*nodeProc, error) {
	n := &nodeProc{
		name: nodeName(i),
		uuid: nodeUUID(i),
		msgs: make(chan nodeMessage, 8), exited: make(chan struct{}),
	}
	n.dir = filepath.Join(f.dir, "nodes", n.name)
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return nil, err
	}
	creds, err := f.verifier.Authority().AgentCredentials(n.name, bus.GrammarTwoPrefixes, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.verifier.CA().Root().Raw})
	if err := os.WriteFile(filepath.Join(n.dir, nodeCredsFile), creds, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(n.dir, nodeRootFile), rootPEM, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(n.dir, nodeLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{}, f.opts.NodeCommand[1:]...)
	args = append(args, "--dir", n.dir, "--host-id", n.name, "--uuid", n.uuid, "--nats", f.verifier.NATSURL())
	// The fleet's context kills the node as a last resort; Stop asks first.
	n.cmd = exec.CommandContext(runCtx, f.opts.NodeCommand[0], args...) //nolint:gosec // our own binary
	n.cmd.Env = append(os.Environ(), f.opts.NodeEnv...)
	n.cmd.Stderr = logFile
	// The node dies with the sandbox, even if the sandbox is killed, and is
	// in a process group of its own: Ctrl-C reaches the sandbox, which
	// stops the nodes in order.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start node %s: %w", n.name, err)
	}
	go func() {
		defer close(n.msgs)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			var m nodeMessage
			if json.Unmarshal(s.Bytes(), &m) == nil {
				n.msgs <- m
			}
		}
	}()
	go func() {
		_ = n.cmd.Wait()
		_ = logFile.Close()
		close(n.exited)
	}()
	select {
	case m, ok := <-n.msgs:
		if !ok || m.Type != "ready" {
			return n, fmt.Errorf("node %s did not start (see %s)", n.name, filepath.Join(n.dir, nodeLogFile))
		}
		n.ekPEM, n.rc = m.EKPublicPEM, m.ResetCount
	case <-time.After(60 * time.Second):
		return n, fmt.Errorf("node %s not ready in 60s", n.name)
	case <-ctx.Done():
		return n, ctx.Err()
	}
	f.log.Info("node started", keyNode, n.name, keyPID, n.cmd.Process.Pid)
	return n, nil
}

// command sends one command to a node process and waits for its answer.
func (n *nodeProc) command(ctx context.Context, line string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := io.WriteString(n.stdin, line+"\n"); err != nil {
		return fmt.Errorf("node %s: %w", n.name, err)
	}
	select {
	case m, ok := <-n.msgs:
		if !ok {
			return fmt.Errorf("node %s exited", n.name)
		}
		if m.Type == "error" {
			return fmt.Errorf("node %s: %s", n.name, m.Error)
		}
		n.rc = m.ResetCount
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("node %s: no answer to %q in 60s", n.name, line)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop asks the node to quit, then kills it, and waits for it.
func (n *nodeProc) stop() {
	_, _ = io.WriteString(n.stdin, "quit\n")
	_ = n.stdin.Close()
	select {
	case <-n.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// forgetEarlierRun deletes the hosts an earlier run in the same --data dir
// left in the verifier, with their reports and flavors: this run's nodes
// are new machines (new TPMs, a first boot), which the manager registers
// and baselines afresh. It runs before the nodes get their bus credentials.
func (f *Fleet) forgetEarlierRun(ctx context.Context) error {
	return inParallel(ctx, f.opts.Nodes, f.opts.Parallel, func(ctx context.Context, i int) error {
		name := f.nameOf(i + 1)
		err := f.client.Do(ctx, http.MethodDelete, "/hvs/v2/hosts/"+name, nil, nil)
		if apiErr := (*APIError)(nil); errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete host %s of an earlier run: %w", name, err)
		}
		f.log.Info("host of an earlier run deleted", keyNode, name)
		return nil
	})
}

// nodePrefix starts every node's name.
const nodePrefix = "edge"

// nodeName is the name (and host id) of node process i.
func nodeName(i int) string { return fmt.Sprintf("%s-%d", nodePrefix, i) }

// nameOf is the name of node i: edge-1 for a process, edge-00001 as the
// fleet simulator numbers its nodes.
func (f *Fleet) nameOf(i int) string {
	if f.opts.Simulator == SimulatorFleet {
		return fmt.Sprintf("%s-%05d", nodePrefix, i)
	}
	return nodeName(i)
}

// enroll registers the node's EK and enrolls its AK by credential
// activation, as an operator does for a TPM without an EK certificate. The
// attestation manager registers the host and makes its first measurements
// the golden flavors, as in production.
func (f *Fleet) enroll(ctx context.Context, n *nodeProc) error {
	err := f.client.Do(ctx, http.MethodPost, "/hvs/v2/tpm-endorsements", map[string]string{
		"hardware_uuid": n.uuid, "issuer": "sandbox", "description": "simulated TPM of " + n.name, "ek_public_key": n.ekPEM,
	}, nil)
	if err != nil {
		return fmt.Errorf("register the ek of %s: %w", n.name, err)
	}
	// Enroll the AK first (this also replaces the enrollment of an earlier
	// run in the same --data dir). The agent's subscription may not be up
	// yet: retry for a while.
	var last error
	err = poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, error) {
		last = f.client.Do(ctx, http.MethodPost, "/hvs/v2/aik-enrollments", map[string]string{"host_id": n.name}, nil)
		return last == nil, nil
	}, func() error { return last })
	if err != nil {
		return fmt.Errorf("enroll the ak of %s: %w", n.name, err)
	}
	f.log.Info("node enrolled", keyNode, n.name)
	return nil
}

// Kubernetes is the API the manager acts on: the sandbox's local one, or
// the cluster of Options.KubeConfig.
func (f *Fleet) Kubernetes() kubernetes.Interface { return f.kube }

// VerifierURL is the verifier's HTTPS base URL.
func (f *Fleet) VerifierURL() string { return "https://" + f.verifier.Addr() }

// DashboardURL is the verifier's fleet dashboard.
func (f *Fleet) DashboardURL() string { return "https://" + f.verifier.DashboardAddr() + "/" }

// LoginCommand is the tcctl command line that logs in to the sandbox's
// verifier as its administrator, pinning its CMS root.
func (f *Fleet) LoginCommand() string {
	return fmt.Sprintf("tcctl login --url %s --root-sha384 %s --username %s --password-file %s",
		f.VerifierURL(), f.verifier.CA().RootSHA384(), adminUser, filepath.Join(f.dir, "admin-password"))
}

// NATSURL is the verifier's bus.
func (f *Fleet) NATSURL() string { return f.verifier.NATSURL() }

// Dir is the sandbox's data directory.
func (f *Fleet) Dir() string { return f.dir }

// NodeNames lists the nodes, node 1 first.
func (f *Fleet) NodeNames() []string {
	out := make([]string, 0, len(f.nodes))
	for _, n := range f.nodes {
		name, _ := n.id()
		out = append(out, name)
	}
	return out
}

// Simulator is what the nodes run on: SimulatorProcess or SimulatorFleet.
func (f *Fleet) Simulator() string { return f.opts.Simulator }

// PIDs lists the node processes' ids (none on the fleet simulator).
func (f *Fleet) PIDs() []int {
	var out []int
	for _, n := range f.procs {
		out = append(out, n.cmd.Process.Pid)
	}
	return out
}

func (f *Fleet) node(name string) (member, error) {
	if n, ok := f.byName[name]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("%w: %s", cluster.ErrNodeNotFound, name)
}

// Measure makes the node's kernel measure a file: an IMA log entry and PCR 10.
func (f *Fleet) Measure(ctx context.Context, node, path, content string) error {
	n, err := f.node(node)
	if err != nil {
		return err
	}
	return n.measure(ctx, path, content)
}

// Reboot resets the node's TPM and boots it again, with Secure Boot on or off.
func (f *Fleet) Reboot(ctx context.Context, node string, secureBootOff bool) error {
	n, err := f.node(node)
	if err != nil {
		return err
	}
	return n.reboot(ctx, secureBootOff)
}

// Stop ends everything: manager, nodes (asked to quit, killed after 5s, and
// waited for), verifier (listeners closed). It removes a temp data dir.
func (f *Fleet) Stop() {
	var wg sync.WaitGroup
	for _, n := range f.procs {
		wg.Go(n.stop)
	}
	if f.sim != nil {
		wg.Go(f.sim.Stop)
	}
	wg.Wait()
	f.cancel()
	f.wg.Wait()
	if f.client != nil {
		f.client.Close()
	}
	if f.control != nil {
		f.control.stop(f.log)
	}
	if f.rmDir {
		_ = os.RemoveAll(f.dir)
	}
}

// WaitStatus waits until node has status (and, unless nil, cordon state).
func (f *Fleet) WaitStatus(ctx context.Context, node string, status cluster.Status, cordoned *bool, timeout time.Duration) (cluster.NodeInfo, error) {
	var info cluster.NodeInfo
	err := poll(ctx, timeout, 100*time.Millisecond, func() (bool, error) {
		var err error
		if info, err = f.adapter.Get(ctx, node); err != nil {
			return false, err
		}
		if info.Status == status && (cordoned == nil || info.Cordoned == *cordoned) {
			return true, nil
		}
		return false, f.Err()
	}, func() error {
		return fmt.Errorf("node %s: status %s (cordoned %v) after %s, want %s", node, info.Status, info.Cordoned, timeout, status)
	})
	return info, err
}

// WaitAllVerified waits until every node is Verified.
func (f *Fleet) WaitAllVerified(ctx context.Context, timeout time.Duration) error {
	var (
		rows, left []NodeRow
		err        error
	)
	return poll(ctx, timeout, 250*time.Millisecond, func() (bool, error) {
		rows, err = f.Rows(ctx)
		left = nil
		for _, r := range rows {
			if r.Status != statusTitle(cluster.StatusVerified) {
				left = append(left, r)
			}
		}
		if err == nil && len(left) == 0 {
			return true, nil
		}
		return false, f.Err()
	}, func() error {
		if err != nil {
			return err
		}
		return fmt.Errorf("%d of %d nodes not Verified after %s, %s among them: %s %s", len(left), len(rows), timeout, left[0].Node, left[0].Status, left[0].Message)
	})
}
