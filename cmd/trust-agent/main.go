// Command trust-agent owns a node's TPM and answers the verifier's requests
// for evidence over the NATS bus it dials out to.
//
//	trust-agent run      [-config file]        serve the verifier (no listening port)
//	trust-agent evidence [-config file] -nonce <hex> [-pcrs 0,7,...] [-banks SHA256,...] [-ima]
//	trust-agent version
package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsconn"
	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/tpm"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { program().Main() }

func program() cli.Program {
	return cli.Program{Name: "trust-agent", Version: version, Usage: usage,
		Commands: map[string]cli.Func{"run": cmdRun, "evidence": cmdEvidence, "health": cmdHealth}}
}

const usage = `usage: trust-agent <command> [flags]

commands:
  run       connect to the verifier's bus and answer its requests
  evidence  print one evidence bundle (quote, event log, IMA log, host facts, keys) as JSON
  health    exit 0 while the running agent's heartbeat is fresh (-ready: and its bus is up)
  version   print the version

Run "trust-agent <command> -h" for the flags of a command.`

// common holds the flags every command shares.
type common struct {
	configPath string
	tpmSpec    string
	root       string
	hostID     string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "config", "", "YAML configuration file")
	fs.StringVar(&c.tpmSpec, "tpm", "", "TPM: device | device:<path> | swtpm:unix:<path> | swtpm:<host>:<port> | simulator (overrides the config)")
	fs.StringVar(&c.root, "root", "", "file system root to read measurements under (overrides the config)")
	fs.StringVar(&c.hostID, "host-id", "", "host id on the bus (default: the SMBIOS system UUID)")
}

// config loads and validates the configuration the flags name and returns it
// with the logger of the command.
func (c *common) config(getenv func(string) string, stderr io.Writer, needBus bool) (Config, *slog.Logger, error) {
	cfg, err := loadConfig(c.configPath, getenv)
	if err != nil {
		return cfg, nil, err
	}
	cfg.TPM = cmp.Or(c.tpmSpec, cfg.TPM)
	cfg.Root = cmp.Or(c.root, cfg.Root)
	cfg.HostID = cmp.Or(c.hostID, cfg.HostID)
	if err := cfg.validate(needBus); err != nil {
		return cfg, nil, err
	}
	logger, err := cli.Logger(stderr, cfg.LogLevel)
	return cfg, logger, err
}

// node opens the TPM and the measurements and builds the agent.
type node struct {
	tpm    *agent.NodeTPM
	agent  *agent.Agent
	hostID string
	// secrets keeps the key broker's secrets; nil when none are configured.
	secrets *agent.Secrets
	// conn is the bus connection the agent serves on (health file).
	conn *atomic.Pointer[bus.Conn]
}

// openNode opens the node's TPM and agent; roots are the CMS roots the key
// broker's answers must be signed under (nil when the node has no bus).
func openNode(ctx context.Context, cfg Config, roots *x509.CertPool, logger *slog.Logger) (*node, error) {
	t, err := tpm.OpenContext(ctx, cfg.TPM)
	if err != nil {
		return nil, err
	}
	nt, err := agent.NewNodeTPM(t, tpm.AKOptions{Algorithm: tpm.KeyAlgorithm(strings.ToLower(cfg.AKAlgorithm)), Handle: cfg.AKHandle})
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	opts := []measure.Option{measure.WithLogger(logger)}
	if filepath.Clean(cfg.Root) != "/" {
		// In a pod the host's /proc is mounted under root; "self" would be
		// the container's own overlay root, so read the host's init instead.
		opts = append(opts, measure.WithMountinfo("proc/1/mountinfo"))
	}
	m := measure.New(cfg.Root, opts...)
	hostID := cfg.HostID
	if hostID == "" {
		info, err := m.HostInfo(ctx)
		if err != nil {
			_ = t.Close()
			return nil, err
		}
		if info.HardwareUUID == "" {
			_ = t.Close()
			return nil, errors.New("no SMBIOS system UUID on this host: set host_id (TC_HOST_ID or -host-id)")
		}
		hostID = info.HardwareUUID
	}
	var secrets *agent.Secrets // the key broker's secrets, when configured
	acfg := agent.Config{HostID: hostID, NodeName: cfg.NodeName, AgentVersion: version, IMAPollInterval: cfg.IMAPollInterval}
	conn := new(atomic.Pointer[bus.Conn])
	acfg.OnConnect = func(nc bus.Conn, g bus.AgentGrammar) {
		conn.Store(&nc)
		if secrets == nil {
			return
		}
		if err := secrets.Attach(ctx, nc, g); err != nil {
			logger.Warn("secrets not attached to the bus", "error", err.Error())
		}
	}
	a, err := agent.New(acfg, nt, m, logger)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	if len(cfg.Secrets.Names) > 0 {
		if secrets, err = a.NewSecrets(agent.SecretsConfig{Names: cfg.Secrets.Names, Dir: cfg.Secrets.Dir, Roots: roots}, nt); err != nil {
			_ = t.Close()
			return nil, err
		}
	}
	return &node{tpm: nt, agent: a, hostID: hostID, secrets: secrets, conn: conn}, nil
}

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer, getenv func(string) string) error {
	fs := cli.NewFlagSet("run", stderr)
	var c common
	c.register(fs)
	healthFile := fs.String("health-file", "", "write a heartbeat here for \"trust-agent health\" (the pod's probes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, logger, err := c.config(getenv, stderr, true)
	if err != nil {
		return err
	}
	setMemoryLimit(cfg.MemoryLimit, getenv)
	creds, err := os.ReadFile(cfg.NATS.CredsFile)
	if err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.NATS.CAFile)
	if err != nil {
		return fmt.Errorf("nats ca file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("nats ca file %s holds no PEM certificate", cfg.NATS.CAFile)
	}
	n, err := openNode(ctx, cfg, roots, logger)
	if err != nil {
		return err
	}
	defer func() { _ = n.tpm.Close() }()
	opts := natsconn.Options{URL: cfg.NATS.URL, RootCAs: roots, Name: "trust-agent", Logger: logger}
	if cfg.NATS.SerialDevice != "" {
		// A serial line is slow (115200 baud): allow the TLS handshake
		// more than the 5 s default.
		serial := serialDialer{path: cfg.NATS.SerialDevice}
		opts.Dial = func(_ context.Context, addr string) (net.Conn, error) { return serial.Dial("tcp", addr) }
		opts.ConnectTimeout = serialConnectTimeout
	}
	parsed, err := bus.ParseCredentials(creds)
	if err != nil {
		return fmt.Errorf("nats credentials %s: %w", cfg.NATS.CredsFile, err)
	}
	connect := func(ctx context.Context, c *bus.Credentials) (bus.Conn, error) {
		o := opts
		o.Creds = c
		return natsconn.Dial(ctx, o)
	}
	var save func(*bus.Credentials) error
	if cfg.NATS.UpdateCredsFile {
		save = func(c *bus.Credentials) error { return writeFileAtomic(cfg.NATS.CredsFile, c.Bytes()) }
	}
	logger.Info("trust agent serving", "host_id", n.hostID, "nats_url", cfg.NATS.URL, "creds_expire", parsed.Expires().UTC())
	if *healthFile != "" {
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		up := func() bool { nc := n.conn.Load(); return nc != nil && (*nc).IsConnected() }
		go func() { defer close(done); heartbeat(hctx, *healthFile, heartbeatInterval, up, logger) }()
		defer func() { cancel(); <-done }()
	}
	if n.secrets != nil {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = n.secrets.Run(sctx) }()
		defer func() { cancel(); <-done }() // drops the secrets when the agent stops
	}
	return n.agent.RunRenewing(ctx, parsed, connect, save)
}

// setMemoryLimit sets the Go runtime's soft memory limit, unless it is 0 or
// the GOMEMLIMIT environment variable already set one.
func setMemoryLimit(limit int64, getenv func(string) string) {
	if limit > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
}

// writeFileAtomic replaces path with data (mode 0600) through a temporary
// file in the same directory, so a crash never leaves half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// serialConnectTimeout bounds connecting (TLS handshake included) over
// nats.serial_device.
const serialConnectTimeout = 30 * time.Second

// Bundle is what `trust-agent evidence` prints.
type Bundle struct {
	Keys     evidence.AKInfo         `json:"keys"`
	Request  evidence.QuoteRequest   `json:"request"`
	Response *evidence.QuoteResponse `json:"response"`
}

func cmdEvidence(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := cli.NewFlagSet("evidence", stderr)
	var c common
	c.register(fs)
	nonceHex := fs.String("nonce", "", "the verifier's nonce, hex (required)")
	pcrList := fs.String("pcrs", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,23", "PCRs to quote")
	banks := fs.String("banks", "SHA256,SHA384", "PCR banks to quote")
	ima := fs.Bool("ima", true, "include the IMA log")
	eventLog := fs.Bool("eventlog", true, "include the TCG event log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nonce, err := hex.DecodeString(*nonceHex)
	if err != nil || len(nonce) == 0 {
		return errors.New("-nonce must be a non-empty hex string")
	}
	pcrs, err := parseInts(*pcrList)
	if err != nil {
		return err
	}
	cfg, logger, err := c.config(getenv, stderr, false)
	if err != nil {
		return err
	}
	cfg.HostID = cmp.Or(cfg.HostID, "local")
	n, err := openNode(ctx, cfg, nil, logger)
	if err != nil {
		return err
	}
	defer func() { _ = n.tpm.Close() }()
	req := evidence.QuoteRequest{Version: evidence.Version, Nonce: nonce, PCRs: pcrs, Banks: strings.Split(*banks, ","), IMAMeasureEnabled: *ima, EventLog: *eventLog}
	resp, err := n.agent.Evidence(ctx, req)
	if err != nil {
		return err
	}
	keys, err := n.tpm.KeyInfo()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(Bundle{Keys: keys, Request: req, Response: resp})
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("bad PCR list %q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}
