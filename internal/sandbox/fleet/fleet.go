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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/aas"
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
	// Namespace holds the onboard requests (cluster.DefaultNamespace).
	Namespace string
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
	nodes    []*nodeProc

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
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = manager.MinPollDuration
	}
	if opts.Namespace == "" {
		opts.Namespace = cluster.DefaultNamespace
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.NodeCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("node command: %w", err)
		}
		opts.NodeCommand = []string{exe, "sandbox", "node"}
	}
	f = &Fleet{opts: opts, log: opts.Logger, dir: opts.Dir}
	if err := f.kubernetesAPI(); err != nil {
		return nil, err
	}
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
	if err := f.startVerifier(ctx, runCtx); err != nil {
		return f, err
	}
	if err := f.forgetEarlierRun(ctx); err != nil {
		return f, err
	}
	for i := 1; i <= opts.Nodes; i++ {
		if err := f.startNode(ctx, runCtx, i); err != nil {
			return f, err
		}
	}
	for _, n := range f.nodes {
		if err := f.enroll(ctx, n); err != nil {
			return f, err
		}
		if err := f.ensureNode(ctx, n); err != nil {
			return f, err
		}
	}
	return f, f.startManager(ctx, runCtx)
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
	acfg := aas.DefaultConfig()
	acfg.AdminPassword = password
	vdir := filepath.Join(f.dir, "verifier")
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return err
	}
	cfg := verifier.Config{
		Listen:     "127.0.0.1:0",
		Database:   "sqlite:" + filepath.Join(vdir, "verifier.db"),
		DataDir:    vdir,
		ServerName: "localhost",
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		AAS:        acfg,
		NATS:       verifier.NATSConfig{Host: "127.0.0.1"},
		// The simulator has no EK certificate: the sandbox registers each
		// node's EK public key, as an operator would.
		Enrollment: enroll.Config{AllowRegisteredEKs: true},
		// The operator's dashboard, as a real deployment can turn it on.
		Dashboard: verifier.DashboardConfig{Listen: "127.0.0.1:0"},
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
	f.client = NewClient(base, f.roots, adminUser, password)
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
	resetCount      uint32 // after the last boot, as the node said

	mu sync.Mutex // one command at a time
}

// nodeUUID is the hardware UUID of node i: the first 256 nodes keep the
// UUIDs they always had (…1a00 to …1aff), and the last group counts on past
// them instead of growing beyond its 12 hex digits.
func nodeUUID(i int) string {
	return fmt.Sprintf("6f1f7c1e-2d6b-4b8a-9c3e-%012x", 0x5a4d3c2b1a00+uint64(i))
}

// startNode starts node i for the fleet's lifetime (runCtx); ctx bounds the
// wait for it.
func (f *Fleet) startNode(ctx, runCtx context.Context, i int) error {
	n := &nodeProc{
		name: nodeName(i),
		uuid: nodeUUID(i),
		msgs: make(chan nodeMessage, 8), exited: make(chan struct{}),
	}
	n.dir = filepath.Join(f.dir, "nodes", n.name)
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	creds, err := f.verifier.Authority().AgentCredentials(n.name, 24*time.Hour)
	if err != nil {
		return err
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.verifier.CA().Root().Raw})
	if err := os.WriteFile(filepath.Join(n.dir, nodeCredsFile), creds, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.dir, nodeRootFile), rootPEM, 0o600); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(n.dir, nodeLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
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
		return err
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return err
	}
	if err := n.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start node %s: %w", n.name, err)
	}
	f.nodes = append(f.nodes, n)
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
			return fmt.Errorf("node %s did not start (see %s)", n.name, filepath.Join(n.dir, nodeLogFile))
		}
		n.ekPEM, n.resetCount = m.EKPublicPEM, m.ResetCount
	case <-time.After(60 * time.Second):
		return fmt.Errorf("node %s not ready in 60s", n.name)
	case <-ctx.Done():
		return ctx.Err()
	}
	f.log.Info("node started", keyNode, n.name, keyPID, n.cmd.Process.Pid)
	return nil
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
		n.resetCount = m.ResetCount
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
	for i := 1; i <= f.opts.Nodes; i++ {
		name := nodeName(i)
		err := f.client.Do(ctx, http.MethodDelete, "/hvs/v2/hosts/"+name, nil, nil)
		if apiErr := (*APIError)(nil); errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete host %s of an earlier run: %w", name, err)
		}
		f.log.Info("host of an earlier run deleted", keyNode, name)
	}
	return nil
}

// nodeName is the name (and host id) of node i.
func nodeName(i int) string { return fmt.Sprintf("edge-%d", i) }

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
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f.client.Do(ctx, http.MethodPost, "/hvs/v2/aik-enrollments", map[string]string{"host_id": n.name}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("enroll the ak of %s: %w", n.name, err)
		}
		time.Sleep(200 * time.Millisecond)
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

// NodeNames lists the nodes.
func (f *Fleet) NodeNames() []string {
	var out []string
	for _, n := range f.nodes {
		out = append(out, n.name)
	}
	return out
}

// PIDs lists the node processes' ids.
func (f *Fleet) PIDs() []int {
	var out []int
	for _, n := range f.nodes {
		out = append(out, n.cmd.Process.Pid)
	}
	return out
}

func (f *Fleet) node(name string) (*nodeProc, error) {
	for _, n := range f.nodes {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", cluster.ErrNodeNotFound, name)
}

// Measure makes the node's kernel measure a file: an IMA log entry and PCR 10.
func (f *Fleet) Measure(ctx context.Context, node, path, content string) error {
	n, err := f.node(node)
	if err != nil {
		return err
	}
	return n.command(ctx, "measure "+path+" "+content)
}

// Reboot resets the node's TPM and boots it again, with Secure Boot on or off.
func (f *Fleet) Reboot(ctx context.Context, node string, secureBootOff bool) error {
	n, err := f.node(node)
	if err != nil {
		return err
	}
	line := "reboot"
	if secureBootOff {
		line += " secureboot-off"
	}
	return n.command(ctx, line)
}

// Stop ends everything: manager, nodes (asked to quit, killed after 5s, and
// waited for), verifier (listeners closed). It removes a temp data dir.
func (f *Fleet) Stop() {
	for _, n := range f.nodes {
		n.stop()
	}
	f.cancel()
	f.wg.Wait()
	if f.client != nil {
		f.client.Close()
	}
	if f.rmDir {
		_ = os.RemoveAll(f.dir)
	}
}

// WaitStatus waits until node has status (and, unless nil, cordon state).
func (f *Fleet) WaitStatus(ctx context.Context, node string, status cluster.Status, cordoned *bool, timeout time.Duration) (cluster.NodeInfo, error) {
	deadline := time.Now().Add(timeout)
	for {
		info, err := f.adapter.Get(ctx, node)
		if err != nil {
			return info, err
		}
		if info.Status == status && (cordoned == nil || info.Cordoned == *cordoned) {
			return info, nil
		}
		if err := f.Err(); err != nil {
			return info, err
		}
		if time.Now().After(deadline) {
			return info, fmt.Errorf("node %s: status %s (cordoned %v) after %s, want %s", node, info.Status, info.Cordoned, timeout, status)
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitAllVerified waits until every node is Verified.
func (f *Fleet) WaitAllVerified(ctx context.Context, timeout time.Duration) error {
	for _, n := range f.nodes {
		if _, err := f.WaitStatus(ctx, n.name, cluster.StatusVerified, nil, timeout); err != nil {
			return err
		}
	}
	return nil
}
