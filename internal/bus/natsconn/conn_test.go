package natsconn_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsconn"
	"trustedcompute.io/tc/internal/eventually"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// testBus is the verifier's embedded NATS server (operator/account JWT
// authority, TLS 1.3) on a fixed port, so that a test can restart it.
type testBus struct {
	t     *testing.T
	auth  *busserver.Authority
	roots *x509.CertPool
	tls   *tls.Config
	port  int
	stop  func()
	url   string
}

func newTestBus(t *testing.T) *testBus {
	t.Helper()
	auth, err := busserver.NewAuthority(context.Background(), memsecrets.New(), memsecrets.ErrNotFound)
	if err != nil {
		t.Fatalf("nats authority: %v", err)
	}
	ca := testca.New(t, "natsconn test CA")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	b := &testBus{t: t, auth: auth, roots: ca.Pool(), port: port,
		tls: &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t, "localhost")}, MinVersion: tls.VersionTLS13},
		url: "tls://localhost:" + strconv.Itoa(port)}
	b.start()
	t.Cleanup(func() { b.stop() })
	return b
}

func (b *testBus) start() {
	b.t.Helper()
	srv, err := busserver.NewServer(busserver.ServerConfig{Host: "127.0.0.1", Port: b.port, TLS: b.tls}, b.auth, slog.New(slog.DiscardHandler))
	if err != nil {
		b.t.Fatalf("nats server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.stop = func() {
		cancel()
		if err := <-done; err != nil {
			b.t.Errorf("nats server: %v", err)
		}
		b.stop = func() {}
	}
	if err := srv.Ready(10 * time.Second); err != nil {
		b.t.Fatalf("nats server: %v", err)
	}
}

// creds parses the credentials an authority issued (raw, err).
func (b *testBus) creds(raw []byte, err error) *bus.Credentials {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	c, err := bus.ParseCredentials(raw)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// dial connects with c as the trust agent does.
func (b *testBus) dial(c *bus.Credentials, name string) (*natsconn.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return natsconn.Dial(ctx, natsconn.Options{URL: b.url, Creds: c, RootCAs: b.roots, Name: name,
		Logger: slog.New(slog.DiscardHandler), PingInterval: 200 * time.Millisecond})
}

// connect dials with c until the test ends.
func (b *testBus) connect(c *bus.Credentials, name string) *natsconn.Conn {
	b.t.Helper()
	conn, err := b.dial(c, name)
	if err != nil {
		b.t.Fatalf("%s connect: %v", name, err)
	}
	b.t.Cleanup(conn.Close)
	return conn
}

func (b *testBus) agentCreds(hostID string) *bus.Credentials {
	return b.creds(b.auth.AgentCredentials(hostID, bus.GrammarTwoPrefixes, time.Hour))
}

func (b *testBus) agent(hostID string) *natsconn.Conn {
	return b.connect(b.agentCreds(hostID), "agent-"+hostID)
}

func (b *testBus) service() *natsconn.Conn {
	return b.connect(b.creds(b.auth.ServiceCredentials("hvs", time.Hour)), "hvs")
}

// serve answers every request of hostID with answer(request data).
func serve(t *testing.T, c *natsconn.Conn, hostID string, answer func([]byte) []byte) bus.Subscription {
	t.Helper()
	subject, err := bus.AgentRequests(hostID)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.QueueSubscribe(subject, "trust-agent", func(m *bus.Msg) {
		if err := c.Publish(m.Reply, answer(m.Data)); err != nil {
			t.Errorf("reply: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("agent subscribe: %v", err)
	}
	return sub
}

func request(t *testing.T, c *natsconn.Conn, hostID string, data []byte) ([]byte, error) {
	t.Helper()
	subject, err := bus.AgentRequestSubject(hostID, bus.VersionRequest)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Request(ctx, subject, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func TestTheAgentClientAnswersTheVerifiersRequests(t *testing.T) {
	b := newTestBus(t)
	agent, svc := b.agent("H1"), b.service()
	serve(t, agent, "H1", func(d []byte) []byte { return append([]byte("echo "), d...) })
	got, err := request(t, svc, "H1", []byte("hello"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(got) != "echo hello" {
		t.Fatalf("reply %q, want %q", got, "echo hello")
	}
}

func TestALargeReplyArrivesWhole(t *testing.T) {
	b := newTestBus(t)
	agent, svc := b.agent("H1"), b.service()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16) // 3 MiB, an IMA log of a busy node
	serve(t, agent, "H1", func([]byte) []byte { return big })
	got, err := request(t, svc, "H1", nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("reply of %d bytes, want the %d sent", len(got), len(big))
	}
}

func TestAMessageBeyondTheServersMaxPayloadIsRefused(t *testing.T) {
	b := newTestBus(t)
	agent := b.agent("H1")
	events, _ := bus.EventSubject("H1", bus.BootEvent)
	err := agent.Publish(events, make([]byte, busserver.DefaultMaxPayload+1))
	if !errors.Is(err, natsconn.ErrMaxPayload) {
		t.Fatalf("publish beyond max payload: %v, want ErrMaxPayload", err)
	}
	if !agent.IsConnected() {
		t.Fatal("the refused message dropped the connection")
	}
}

func TestTheServerDecidesWhatAnAgentMayDo(t *testing.T) {
	b := newTestBus(t)
	agent, svc := b.agent("H1"), b.service()
	seen := make(chan string, 4)
	if _, err := svc.Subscribe(bus.AllEvents, func(m *bus.Msg) { seen <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("an agent may not subscribe to another host's requests", func(t *testing.T) {
		other, _ := bus.AgentRequests("H2")
		_, err := agent.Subscribe(other, func(*bus.Msg) { t.Error("got another host's request") })
		if !errors.Is(err, natsconn.ErrPermission) {
			t.Fatalf("subscribe to %s: %v, want ErrPermission", other, err)
		}
	})
	t.Run("an agent may not publish another host's events", func(t *testing.T) {
		other, _ := bus.EventSubject("H2", bus.BootEvent)
		if err := agent.Publish(other, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := agent.Flush(ctx); !errors.Is(err, natsconn.ErrPermission) {
			t.Fatalf("flush after publishing %s: %v, want ErrPermission", other, err)
		}
	})
	t.Run("an agent may publish its own events", func(t *testing.T) {
		own, _ := bus.EventSubject("H1", bus.BootEvent)
		if err := agent.Publish(own, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := agent.Flush(ctx); err != nil {
			t.Fatalf("flush after an allowed publish: %v", err)
		}
		select {
		case s := <-seen:
			if s != own {
				t.Fatalf("the verifier saw %s, want only %s", s, own)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the verifier did not see the agent's own event")
		}
	})
	t.Run("the connection survives the refusals", func(t *testing.T) {
		if !agent.IsConnected() {
			t.Fatal("disconnected")
		}
		select {
		case s := <-seen:
			t.Fatalf("the verifier saw %s", s)
		default:
		}
	})
}

func TestRefusedCredentialsAreNotRetried(t *testing.T) {
	b := newTestBus(t)
	other := newTestBus(t) // another verifier: another operator and account
	creds := b.creds(other.auth.AgentCredentials("H1", bus.GrammarTwoPrefixes, time.Hour))
	start := time.Now()
	_, err := b.dial(creds, "agent-H1")
	if !errors.Is(err, natsconn.ErrAuthorization) {
		t.Fatalf("connect with another verifier's credentials: %v, want ErrAuthorization", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s, want at once", d)
	}
}

func TestAServerWhoseCertificateDoesNotVerifyIsRefused(t *testing.T) {
	b := newTestBus(t)
	c := b.agentCreds("H1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := natsconn.Dial(ctx, natsconn.Options{URL: b.url, Creds: c, RootCAs: testca.New(t, "another CA").Pool(),
		Name: "agent-H1", Logger: slog.New(slog.DiscardHandler)})
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	if !errors.As(err, &unknown) && !errors.As(err, &verify) {
		t.Fatalf("connect to a server of another CA: %v, want a certificate error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("retried until the context ended")
	}
}

func TestTheAgentClientReconnectsAndSubscribesAgainAfterAServerRestart(t *testing.T) {
	b := newTestBus(t)
	agent := b.agent("H1")
	serve(t, agent, "H1", func(d []byte) []byte { return d })
	b.stop()
	eventually.True(t, 5*time.Second, "disconnected from the stopped server", func() bool { return !agent.IsConnected() })
	if err := agent.Publish("trust-events.H1.boot", nil); !errors.Is(err, natsconn.ErrNotConnected) {
		t.Fatalf("publish while disconnected: %v, want ErrNotConnected", err)
	}
	b.start()
	svc := b.service()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := request(t, svc, "H1", []byte("again"))
		if err == nil {
			if string(got) != "again" {
				t.Fatalf("reply %q", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after the restart: %v", err)
		}
	}
}

func TestDrainAnswersTheRequestsAlreadyDelivered(t *testing.T) {
	b := newTestBus(t)
	agent, svc := b.agent("H1"), b.service()
	started := make(chan struct{}, 1)
	sub := serve(t, agent, "H1", func(d []byte) []byte {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond) // a TPM quote
		return d
	})
	answer := make(chan error, 1)
	go func() {
		got, err := request(t, svc, "H1", []byte("slow"))
		if err == nil && string(got) != "slow" {
			err = errors.New("wrong answer " + string(got))
		}
		answer <- err
	}()
	<-started
	if err := sub.Drain(); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := <-answer; err != nil {
		t.Fatalf("the request delivered before the drain: %v", err)
	}
	if _, err := request(t, svc, "H1", []byte("late")); err == nil {
		t.Fatal("a drained subscription still answers")
	}
}

func TestCloseEndsTheConnection(t *testing.T) {
	b := newTestBus(t)
	agent := b.agent("H1")
	agent.Close()
	agent.Close() // twice is fine
	if agent.IsConnected() {
		t.Fatal("connected after Close")
	}
	if _, err := agent.Subscribe("trust-agent.H1.>", func(*bus.Msg) {}); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("subscribe after Close: %v", err)
	}
}

func TestACustomDialerCarriesTheConnection(t *testing.T) {
	b := newTestBus(t)
	c := b.agentCreds("H1")
	// As the serial-line dialer does: the address is the URL's, the bytes
	// go wherever the dialer takes them; TLS still checks the URL's name.
	var dialled []string
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(b.port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := natsconn.Dial(ctx, natsconn.Options{URL: "nats://localhost:" + strconv.Itoa(b.port), Creds: c, RootCAs: b.roots,
		Name: "agent-H1", Logger: slog.New(slog.DiscardHandler), Dial: dial})
	if err != nil {
		t.Fatalf("connect through the dialer: %v", err)
	}
	defer conn.Close()
	if want := "localhost:" + strconv.Itoa(b.port); len(dialled) != 1 || dialled[0] != want {
		t.Fatalf("dialled %v, want [%s]", dialled, want)
	}
	if err := conn.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}
