package busserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// errNotFound stands in for the store's sentinel error.
var errNotFound = memsecrets.ErrNotFound

func newTestAuthority(t testing.TB) *Authority {
	t.Helper()
	a, err := NewAuthority(context.Background(), memsecrets.New(), errNotFound)
	if err != nil {
		t.Fatalf("NewAuthority: %v", err)
	}
	return a
}

// testCA is a CA made for one test, with a server certificate for localhost.
type testCA struct {
	pool      *x509.CertPool
	serverTLS *tls.Config
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	ca := testca.New(t, "bus test root CA")
	return testCA{
		pool: ca.Pool(),
		serverTLS: &tls.Config{
			Certificates: []tls.Certificate{ca.ServerCert(t, "localhost")},
			MinVersion:   tls.VersionTLS13,
		},
	}
}

// testBus is a TLS server on a CA and an authority made for one test.
type testBus struct {
	ca   testCA
	auth *Authority
	srv  *Server
}

func newTestBus(t testing.TB) testBus {
	t.Helper()
	b := testBus{ca: newTestCA(t), auth: newTestAuthority(t)}
	b.srv, _ = startServer(t, ServerConfig{Host: "127.0.0.1", TLS: b.ca.serverTLS}, b.auth)
	return b
}

// dial connects to b with creds under name.
func (b testBus) dial(t testing.TB, creds []byte, name string) (*nats.Conn, *recorder) {
	t.Helper()
	return client(t, b.srv.ClientURL(), creds, b.ca.pool, name)
}

// agent connects the agent of host ("agent-<host>") with credentials of ttl.
func (b testBus) agent(t testing.TB, host string) (*nats.Conn, *recorder) {
	t.Helper()
	return b.dial(t, mustCreds(t)(b.auth.AgentCredentials(host, bus.GrammarSplit, ttl)), "agent-"+host)
}

// manager connects the manager name ("manager-<name>") with credentials of ttl.
func (b testBus) manager(t testing.TB, name string) (*nats.Conn, *recorder) {
	t.Helper()
	return b.dial(t, mustCreds(t)(b.auth.ManagerCredentials(name, ttl)), "manager-"+name)
}

// startServer runs a server until the test ends and checks that Run returns
// nil after the clean shutdown. stop ends it earlier.
func startServer(t testing.TB, cfg ServerConfig, auth *Authority) (srv *Server, stop func()) {
	t.Helper()
	srv, err := NewServer(cfg, auth, discardLogger())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	if err := srv.Ready(10 * time.Second); err != nil {
		cancel()
		t.Fatalf("Ready: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// recorder is a slog.Handler that keeps every record's message and
// attributes as one line, to assert on what was logged.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// waitFor polls until the log holds substr or the timeout passes.
func (r *recorder) waitFor(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(r.text(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client connects with creds and a recording logger, closing at test end.
func client(t testing.TB, url string, creds []byte, roots *x509.CertPool, name string, extra ...nats.Option) (*nats.Conn, *recorder) {
	t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsbus.Connect(ctx, url, creds, roots, name, slog.New(rec), extra...)
	if err != nil {
		t.Fatalf("Connect %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc, rec
}

// subscribed subscribes nc to subj and flushes, so that the server holds
// the subscription before anything is published; it ends with the test.
func subscribed(t testing.TB, nc *nats.Conn, subj string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subj)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// echoAgent answers every request on its own subjects with "<host>:<data>".
func echoAgent(t testing.TB, nc *nats.Conn, hostID string) {
	t.Helper()
	subj, err := bus.AgentRequests(hostID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(subj, func(m *nats.Msg) {
		_ = m.Respond(append([]byte(hostID+":"), m.Data...))
	}); err != nil {
		t.Fatalf("agent %s subscribe: %v", hostID, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// mustCreds(t)(auth.XCredentials(...)) fails the test on an error.
func mustCreds(t testing.TB) func([]byte, error) []byte {
	return func(creds []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("credentials: %v", err)
		}
		return creds
	}
}
