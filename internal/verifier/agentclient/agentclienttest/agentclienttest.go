// Package agentclienttest runs the real parts a test of the verifier's agent
// traffic needs: the embedded NATS server with TLS and operator-mode
// credentials (package bus), and real trust agents (package agent) on swtpm.
package agentclienttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/store"
)

// credsTTL is the lifetime of the credentials issued for a test.
const credsTTL = time.Hour

// Bus is an embedded NATS server that runs until the test ends.
type Bus struct {
	Server    *busserver.Server
	Authority *busserver.Authority
	// Roots verifies the server's TLS certificate.
	Roots *x509.CertPool
}

// NewBus starts an embedded NATS server on 127.0.0.1 with TLS 1.3 (a
// certificate from a CA made for the test) and an authority whose keys live
// in a fresh in-memory SQLite store.
func NewBus(t testing.TB) *Bus {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	authority, err := busserver.NewAuthority(context.Background(), st, store.ErrNotFound)
	if err != nil {
		t.Fatalf("nats authority: %v", err)
	}
	roots, serverTLS := testCA(t)
	srv, err := busserver.NewServer(busserver.ServerConfig{Host: "127.0.0.1", TLS: serverTLS}, authority, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	runUntilCleanup(t, "nats server", srv.Run)
	if err := srv.Ready(10 * time.Second); err != nil {
		t.Fatalf("nats server: %v", err)
	}
	return &Bus{Server: srv, Authority: authority, Roots: roots}
}

// ServiceConn connects in process with service credentials, as HVS does.
func (b *Bus) ServiceConn(t testing.TB) *nats.Conn {
	t.Helper()
	creds, err := b.Authority.ServiceCredentials("hvs", credsTTL)
	if err != nil {
		t.Fatalf("service credentials: %v", err)
	}
	nc, err := busserver.ConnectInProcess(b.Server, creds, "hvs", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("service connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// AgentConn connects over TLS with the agent credentials of hostID, as a
// trust agent does.
func (b *Bus) AgentConn(t testing.TB, hostID string) *nats.Conn {
	t.Helper()
	creds, err := b.Authority.AgentCredentials(hostID, bus.GrammarTwoPrefixes, credsTTL)
	if err != nil {
		t.Fatalf("agent credentials: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsbus.Connect(ctx, b.Server.ClientURL(), creds, b.Roots, "agent-"+hostID, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("agent connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Agent is a real trust agent serving on the bus until the test ends.
type Agent struct {
	HostID string
	// TPM is the agent's TPM, with its EK and AK loaded.
	TPM *agent.NodeTPM
}

// StartAgent opens the swtpm sw, loads its EK and creates its AK, and runs a
// trust agent for hostID on the bus. It returns once the agent answers.
// The agent's host facts come from an almost empty file system root whose
// host name is "node-<hostID>".
func (b *Bus) StartAgent(t testing.TB, hostID string, sw *tpmtest.Swtpm) *Agent {
	t.Helper()
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatalf("open tpm: %v", err)
	}
	t.Cleanup(func() { _ = tp.Close() }) // the last cleanup: after the agent stopped
	node, err := agent.NewNodeTPM(tp, tpm.AKOptions{})
	if err != nil {
		t.Fatalf("node tpm: %v", err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("node-"+hostID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{HostID: hostID, AgentVersion: "test"}, node, measure.New(root), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	nc := b.AgentConn(t, hostID)
	runUntilCleanup(t, "agent "+hostID, func(ctx context.Context) error { return a.Run(ctx, natsbus.Adapt(nc)) })
	waitForAgent(t, agentclient.New(b.ServiceConn(t), time.Second), hostID)
	return &Agent{HostID: hostID, TPM: node}
}

// runUntilCleanup runs task until the test ends; then it cancels the task's
// context, waits for it and reports its error, named what.
func runUntilCleanup(t testing.TB, what string, task func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- task(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
}

// BootNode opens the TPM at spec as a node's TPM, replays the measured boot
// bootLog into it and writes a node root (see sandbox.NewRoot) with the
// SMBIOS system UUID hardwareUUID and host name hostName. It returns the
// TPM, its active PCR banks and the root; the TPM closes when the test ends.
func BootNode(t testing.TB, spec, hardwareUUID, hostName string, bootLog []byte) (*agent.NodeTPM, []string, *sandbox.Root) {
	t.Helper()
	raw, err := tpm.Open(spec)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	nt, err := agent.NewNodeTPM(raw, tpm.AKOptions{})
	if err != nil {
		t.Fatalf("node tpm: %v", err)
	}
	banks, err := sandbox.ReplayEventLog(nt, bootLog)
	if err != nil {
		t.Fatalf("replay the boot log: %v", err)
	}
	root, err := sandbox.NewRoot(t.TempDir(), hardwareUUID, hostName, bootLog)
	if err != nil {
		t.Fatalf("node root: %v", err)
	}
	return nt, banks, root
}

// waitForAgent polls the agent's version until it answers.
func waitForAgent(t testing.TB, c *agentclient.Client, hostID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Version(context.Background(), hostID)
		if err == nil {
			return
		}
		if !errors.Is(err, agentclient.ErrNoResponders) || time.Now().After(deadline) {
			t.Fatalf("agent %s does not answer: %v", hostID, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testCA makes a CA for one test and a server certificate for 127.0.0.1.
func testCA(t testing.TB) (*x509.CertPool, *tls.Config) {
	t.Helper()
	ca := testca.New(t, "agentclient test CA")
	return ca.Pool(), &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t, "localhost")}, MinVersion: tls.VersionTLS13}
}
