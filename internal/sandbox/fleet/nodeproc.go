package fleet

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
)

// Files the parent writes into a node's directory before starting it.
const (
	nodeCredsFile = "agent.creds"
	nodeRootFile  = "cms-root.pem"
	nodeRootDir   = "root"
	nodeLogFile   = "node.log"
)

// NodeConfig is what a node process needs.
type NodeConfig struct {
	// Dir holds agent.creds and cms-root.pem (written by the parent, 0600)
	// and receives the node's file system root.
	Dir          string
	HostID       string
	HardwareUUID string
	// NATSURL is the verifier's bus.
	NATSURL string
	// SecureBootOff boots the first time with the Secure Boot disabled log.
	SecureBootOff bool
}

// nodeMessage is one line a node process writes on its stdout for the parent.
type nodeMessage struct {
	// Type is "ready" (once, after the first boot), "ok" or "error" (one
	// per command).
	Type string `json:"type"`
	Cmd  string `json:"cmd,omitempty"`
	// EKPublicPEM is the EK public key (SPKI PEM), for registration.
	EKPublicPEM string `json:"ek_public_pem,omitempty"`
	ResetCount  uint32 `json:"reset_count,omitempty"`
	Error       string `json:"error,omitempty"`
}

// resettableTPM is the simulator: a TPM transport that can be reset.
type resettableTPM interface {
	io.ReadWriteCloser
	Reset() error
}

// baseFiles are the files every boot measures; gen (the boot number) is in
// containerd's content, so that every boot has new golden IMA measurements,
// as after an update, and only a re-baseline makes a rebooted node Verified.
func baseFiles(gen int) map[string]string {
	return map[string]string{
		"/usr/lib/systemd/systemd": "systemd 252",
		"/usr/bin/containerd":      fmt.Sprintf("containerd, update %d", gen),
		"/usr/bin/kata-runtime":    "kata-runtime 3.2",
	}
}

// NodeMain is the entry point of a node process: it parses the node flags
// from args and runs the node with stdin/stdout as the parent's pipe.
func NodeMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg NodeConfig
	fs.StringVar(&cfg.Dir, "dir", "", "node directory")
	fs.StringVar(&cfg.HostID, "host-id", "", "host id")
	fs.StringVar(&cfg.HardwareUUID, "uuid", "", "system UUID")
	fs.StringVar(&cfg.NATSURL, "nats", "", "verifier bus URL")
	fs.BoolVar(&cfg.SecureBootOff, "secure-boot-off", false, "first boot with Secure Boot disabled")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Dir == "" || cfg.HostID == "" || cfg.HardwareUUID == "" || cfg.NATSURL == "" {
		return errors.New("node: --dir, --host-id, --uuid and --nats are required")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With(keyNode, cfg.HostID)
	return RunNode(ctx, cfg, stdin, stdout, logger)
}

// node is a running simulated edge node.
type node struct {
	cfg    NodeConfig
	logger *slog.Logger
	sim    resettableTPM
	creds  []byte
	roots  *x509.CertPool
	out    *json.Encoder

	gen   int
	tpm   *lockedTPM
	banks []string
	root  *sandbox.Root

	stopAgent func()
	// secrets is the key broker keeper of the secret scenario.
	secrets secretKeeper
}

// RunNode boots the node — measured boot replayed into a fresh simulator,
// a file system root, IMA measurements — and runs the trust agent against
// the verifier's bus until ctx ends, stdin closes or "quit" is read. Other
// commands on stdin, one a line:
//
//	measure <path> [content]   the kernel measures a file: PCR 10 + IMA log
//	reboot [secureboot-off]    platform reset, measured boot again, agent restarted
//	secret [<dir> <name>]      keep a key broker secret in dir (a tmpfs); none: stop keeping
//	quit
func RunNode(ctx context.Context, cfg NodeConfig, stdin io.Reader, stdout io.Writer, logger *slog.Logger) error {
	creds, err := os.ReadFile(filepath.Join(cfg.Dir, nodeCredsFile))
	if err != nil {
		return fmt.Errorf("node credentials: %w", err)
	}
	rootPEM, err := os.ReadFile(filepath.Join(cfg.Dir, nodeRootFile))
	if err != nil {
		return fmt.Errorf("cms root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return errors.New("cms root: no certificate")
	}
	sim, err := openResettable()
	if err != nil {
		return fmt.Errorf("open tpm simulator: %w", err)
	}
	n := &node{cfg: cfg, logger: logger, sim: sim, creds: creds, roots: roots, out: json.NewEncoder(stdout)}
	defer func() {
		n.stop()
		_ = sim.Close()
	}()
	if err := n.boot(cfg.SecureBootOff); err != nil {
		return err
	}
	ek, err := n.tpm.ekPEM()
	if err != nil {
		return err
	}
	if err := n.start(ctx); err != nil {
		return err
	}
	rc, _ := n.tpm.ResetCount()
	if err := n.out.Encode(nodeMessage{Type: "ready", EKPublicPEM: ek, ResetCount: rc}); err != nil {
		return err
	}

	lines := make(chan string)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdin)
		for s.Scan() {
			select {
			case lines <- s.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
			if cmd == "quit" {
				return nil
			}
			msg := nodeMessage{Type: "ok", Cmd: cmd}
			if err := n.command(ctx, cmd, arg); err != nil {
				logger.Warn("command failed", keyCommand, cmd, keyError, err.Error())
				msg = nodeMessage{Type: "error", Cmd: cmd, Error: err.Error()}
			}
			msg.ResetCount, _ = n.tpm.ResetCount()
			if err := n.out.Encode(msg); err != nil {
				return err
			}
		}
	}
}

func (n *node) command(ctx context.Context, cmd, arg string) error {
	switch cmd {
	case "measure":
		path, content, _ := strings.Cut(arg, " ")
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("measure: want an absolute path, got %q", path)
		}
		if content == "" {
			content = "content of " + path
		}
		return n.measure(map[string]string{path: content})
	case "extend":
		pcr, err := strconv.Atoi(arg)
		if err != nil || pcr < 0 || pcr > 23 {
			return fmt.Errorf("extend: want a PCR index 0 to 23, got %q", arg)
		}
		return n.extend(pcr)
	case "kill":
		n.stop()
		n.logger.Warn("trust agent killed")
		return nil
	case "reboot":
		n.stop()
		n.tpm.mu.Lock()
		err := n.sim.Reset()
		n.tpm.mu.Unlock()
		if err != nil {
			return fmt.Errorf("platform reset: %w", err)
		}
		if err := n.boot(arg == "secureboot-off"); err != nil {
			return err
		}
		return n.start(ctx)
	case "secret":
		return n.keepSecret(ctx, arg)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// boot is what firmware and the kernel do at power-on: the firmware's
// event log extended into the PCRs, the root laid out with that log and a
// new, empty IMA log, and the boot's files measured.
func (n *node) boot(secureBootOff bool) error {
	n.gen++
	// A new wrapper per boot: the EK's transient handle did not survive the
	// reset; the persistent AK did.
	t := tpm.New(transport.FromReadWriteCloser(noClose{n.sim}))
	nt, err := agent.NewNodeTPM(t, tpm.AKOptions{})
	if err != nil {
		return err
	}
	n.tpm = &lockedTPM{nt: nt}
	log := sandbox.BootLogSecureBootOn
	if secureBootOff {
		log = sandbox.BootLogSecureBootOff
	}
	if n.banks, err = sandbox.ReplayEventLog(n.tpm, log); err != nil {
		return fmt.Errorf("measured boot: %w", err)
	}
	if n.root, err = sandbox.NewRoot(filepath.Join(n.cfg.Dir, nodeRootDir), n.cfg.HardwareUUID, n.cfg.HostID, log); err != nil {
		return err
	}
	if err := n.root.WritePlatform(!secureBootOff); err != nil {
		return err
	}
	// systemd-cryptsetup unlocks the root volume with tpm2-measure-pcr=yes
	// and logs it in /run, which the reboot emptied.
	if err := n.root.ClearMeasureLog(); err != nil {
		return err
	}
	if err := n.root.MeasurePlatformRootVolume(n.tpm, n.banks); err != nil {
		return fmt.Errorf("measure the root volume key: %w", err)
	}
	n.logger.Info("booted", keyBoot, n.gen, keySecureBoot, !secureBootOff, keyBanks, n.banks)
	return n.measure(baseFiles(n.gen))
}

// measure extends PCR 10 and appends to the IMA log under the TPM lock, so
// that no quote falls between the two.
func (n *node) measure(files map[string]string) error {
	n.tpm.mu.Lock()
	defer n.tpm.mu.Unlock()
	for _, path := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256([]byte(files[path]))
		line, err := sandbox.MeasureFile(n.tpm.nt, n.banks, path, sum[:])
		if err != nil {
			return fmt.Errorf("measure %s: %w", path, err)
		}
		if err := n.root.AppendIMA(line); err != nil {
			return err
		}
	}
	return nil
}

// extend extends pcr in every bank with a digest no event log explains, as
// an unmeasured change to the platform would.
func (n *node) extend(pcr int) error {
	n.tpm.mu.Lock()
	defer n.tpm.mu.Unlock()
	if err := sandbox.ExtendUnlogged(n.tpm.nt, n.banks, pcr); err != nil {
		return err
	}
	n.logger.Warn("pcr extended outside the event log", keyPCR, pcr)
	return nil
}

// start connects to the bus and runs the trust agent until stop.
func (n *node) start(ctx context.Context) error {
	actx, cancel := context.WithCancel(ctx)
	nc, err := natsbus.Connect(actx, n.cfg.NATSURL, n.creds, n.roots, "agent-"+n.cfg.HostID, n.logger)
	if err != nil {
		cancel()
		return fmt.Errorf("connect to the verifier bus: %w", err)
	}
	// The sandbox's Node is named after the host, as its agent says.
	a, err := agent.New(agent.Config{HostID: n.cfg.HostID, NodeName: n.cfg.HostID, AgentVersion: "sandbox", IMAPollInterval: time.Second, IMADebounce: 300 * time.Millisecond},
		n.tpm, measure.New(n.root.Dir, measure.WithLogger(n.logger)), n.logger)
	if err != nil {
		cancel()
		nc.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(actx, natsbus.Adapt(nc)); err != nil && actx.Err() == nil {
			n.logger.Error("agent stopped", keyError, err.Error())
		}
	}()
	n.stopAgent = func() {
		cancel()
		<-done
		nc.Close()
	}
	return nil
}

func (n *node) stop() {
	if n.stopAgent != nil {
		n.stopAgent()
		n.stopAgent = nil
	}
}

// lockedTPM serializes the agent's TPM use with the sandbox's extends.
type lockedTPM struct {
	mu sync.Mutex
	nt *agent.NodeTPM
}

// locked runs f holding mu (nt is set once, when the TPM boots).
func locked[T any](l *lockedTPM, f func() (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return f()
}

func (l *lockedTPM) Quote(nonce []byte, pcrs []int, banks []string) (*evidence.QuoteResponse, error) {
	return locked(l, func() (*evidence.QuoteResponse, error) { return l.nt.Quote(nonce, pcrs, banks) })
}

func (l *lockedTPM) ActivateCredential(blob, secret []byte) ([]byte, error) {
	return locked(l, func() ([]byte, error) { return l.nt.ActivateCredential(blob, secret) })
}

func (l *lockedTPM) Info() (evidence.TPMInfo, error)   { return locked(l, l.nt.Info) }
func (l *lockedTPM) ResetCount() (uint32, error)       { return locked(l, l.nt.ResetCount) }
func (l *lockedTPM) KeyInfo() (evidence.AKInfo, error) { return locked(l, l.nt.KeyInfo) }

// Extend and ActiveBanks make it an Extender; callers hold mu or run
// before the agent starts.
func (l *lockedTPM) Extend(pcr int, bank string, digest []byte) error {
	return l.nt.Extend(pcr, bank, digest)
}

func (l *lockedTPM) ActiveBanks() ([]string, error) { return l.nt.ActiveBanks() }

// ekPEM is the EK public key as the verifier's registration wants it.
func (l *lockedTPM) ekPEM() (string, error) {
	ek, err := locked(l, l.nt.PreferredEK)
	if err != nil {
		return "", fmt.Errorf("endorsement key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(ek.Key)
	if err != nil {
		return "", fmt.Errorf("endorsement key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// noClose keeps a boot's TPM wrapper from closing the simulator.
type noClose struct{ io.ReadWriter }

func (noClose) Close() error { return nil }
