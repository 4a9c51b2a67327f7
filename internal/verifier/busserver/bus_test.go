package busserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
)

const ttl = time.Hour

// fleet is a TLS server with a service, a manager and the agents of H1 and H2
// (both answering their own requests).
type fleet struct {
	testBus
	service, manager  *nats.Conn
	agent1, agent2    *nats.Conn
	agent1Log, mgrLog *recorder
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{testBus: newTestBus(t)}
	f.service, _ = f.dial(t, mustCreds(t)(f.auth.ServiceCredentials("hvs", ttl)), "hvs")
	f.manager, f.mgrLog = f.dial(t, mustCreds(t)(f.auth.ManagerCredentials("manager", ttl)), "manager")
	f.agent1, f.agent1Log = f.agent(t, "H1")
	f.agent2, _ = f.agent(t, "H2")
	echoAgent(t, f.agent1, "H1")
	echoAgent(t, f.agent2, "H2")
	return f
}

// subject(t)(bus.AgentRequestSubject(...)) fails the test on an error.
func subject(t testing.TB) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestAllowedTraffic(t *testing.T) {
	f := newFleet(t)

	t.Run("the service's quote request to H1 is answered by H1's agent", func(t *testing.T) {
		subj := subject(t)(bus.AgentRequestSubject("H1", bus.QuoteRequest))
		msg, err := f.service.Request(subj, []byte("nonce"), 5*time.Second)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		if got, want := string(msg.Data), "H1:nonce"; got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
	})

	t.Run("an event published by H1's agent on its own subject reaches the service", func(t *testing.T) {
		sub := subscribed(t, f.service, bus.AllEvents)
		subj := subject(t)(bus.EventSubject("H1", bus.BootEvent))
		if err := f.agent1.Publish(subj, []byte("booted")); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("service did not receive the event: %v", err)
		}
		host, typ, err := bus.ParseEventSubject(msg.Subject)
		if err != nil || host != "H1" || typ != bus.BootEvent || string(msg.Data) != "booted" {
			t.Errorf("got %s %q (host %q type %q err %v), want H1 boot \"booted\"", msg.Subject, msg.Data, host, typ, err)
		}
	})

	t.Run("a report published by the service reaches the manager", func(t *testing.T) {
		sub := subscribed(t, f.manager, bus.AllReports)
		subj := subject(t)(bus.ReportSubject("H1"))
		if err := f.service.Publish(subj, []byte("report")); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("manager did not receive the report: %v", err)
		}
		if msg.Subject != subj || string(msg.Data) != "report" {
			t.Errorf("got %s %q, want %s \"report\"", msg.Subject, msg.Data, subj)
		}
	})
}

func TestDeniedSubscriptions(t *testing.T) {
	f := newFleet(t)
	runProbes(t, []probe{
		{"agent H1 cannot subscribe to H2's requests", subscribeRefused(f.agent1, "trust-agent.H2.>")},
		{"agent H1 cannot subscribe to H2's quote requests by wildcard", subscribeRefused(f.agent1, "trust-agent.*.quote-request")},
		{"agent H1 cannot subscribe to every request", subscribeRefused(f.agent1, "trust-agent.>")},
		{"agent H1 cannot subscribe to everything", subscribeRefused(f.agent1, ">")},
		{"agent H1 cannot subscribe to other agents' events", subscribeRefused(f.agent1, "trust-events.>")},
		{"agent H1 cannot subscribe to reports", subscribeRefused(f.agent1, "trust-reports.H1")},
		{"agent H1 cannot subscribe to reply inboxes", subscribeRefused(f.agent1, "_INBOX.>")},
		{"the manager cannot subscribe to agent events", subscribeRefused(f.manager, "trust-events.>")},
		{"the manager cannot subscribe to reply inboxes", subscribeRefused(f.manager, "_INBOX.>")},
		{"the service cannot subscribe to agent requests", subscribeRefused(f.service, "trust-agent.>")},
		{"agent H1 cannot hear the key broker's answers to H2", subscribeRefused(f.agent1, "trust-secrets.H2.answer")},
		{"agent H1 cannot hear every key broker answer", subscribeRefused(f.agent1, "trust-secrets.*.answer")},
	})

	t.Run("agent H1 does not receive H2's requests through any subscription", func(t *testing.T) {
		// All of H1's attempts above were refused; H2's requests still go to H2 only.
		msg, err := f.service.Request(subject(t)(bus.AgentRequestSubject("H2", bus.QuoteRequest)), []byte("n2"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.Data) != "H2:n2" {
			t.Errorf("reply = %q, want from H2", msg.Data)
		}
	})
}

func TestDeniedPublishes(t *testing.T) {
	f := newFleet(t)
	// inbox is a reply subject the service listens on but never sent to H1.
	inbox := f.service.NewRespInbox()
	tests := []struct {
		name      string
		publisher func() (*nats.Conn, *recorder)
		subject   string
		observer  func() *nats.Conn // subscribed to subject: must see nothing
	}{
		{"agent H1 cannot raise a boot event for H2", f.h1, "trust-events.H2.boot", f.svc},
		{"agent H1 cannot raise an event outside its event subjects", f.h1, "trust-events.H1", f.svc},
		{"agent H1 cannot answer on a reply inbox it did not receive", f.h1, inbox, f.svc},
		{"agent H1 cannot send requests to H2", f.h1, "trust-agent.H2.quote-request", f.h2},
		{"agent H1 cannot publish reports", f.h1, "trust-reports.H1", f.mgr},
		{"agent H1 cannot ask the key broker for H2's secrets", f.h1, "trust-secrets.H2.request", f.svc},
		{"agent H1 cannot forge a key broker answer to H2", f.h1, "trust-secrets.H2.answer", f.h2},
		{"the manager cannot publish reports", f.mgrPub, "trust-reports.H2", f.mgr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subscribed(t, tt.observer(), tt.subject)
			nc, log := tt.publisher()
			if err := nc.Publish(tt.subject, []byte("forged")); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("Permissions Violation for Publish to %q", tt.subject)
			if !log.waitFor(want, 5*time.Second) {
				t.Errorf("publisher's log lacks %s; log:\n%s", want, log.text())
			}
			if msg, err := sub.NextMsg(300 * time.Millisecond); err == nil {
				t.Errorf("observer received %s %q, want nothing", msg.Subject, msg.Data)
			}
		})
	}

	t.Run("an agent answers a request only once", func(t *testing.T) {
		// Host H3's agent has a single subscription (see the package doc:
		// two subscriptions matching one request use up its one answer).
		agent, log := f.agent(t, "H3")
		subj := subject(t)(bus.AgentRequestSubject("H3", bus.VersionRequest))
		reqs := subscribed(t, agent, subj)
		reply := f.service.NewRespInbox()
		replies := subscribed(t, f.service, reply)
		if err := f.service.PublishRequest(subj, reply, []byte("v?")); err != nil {
			t.Fatal(err)
		}
		req, err := reqs.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range []string{"first", "second"} {
			if err := req.Respond([]byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		if err := agent.Flush(); err != nil {
			t.Fatal(err)
		}
		if !log.waitFor(fmt.Sprintf("Permissions Violation for Publish to %q", reply), 5*time.Second) {
			t.Errorf("second answer was not refused; log:\n%s", log.text())
		}
		var got []string
		for {
			m, err := replies.NextMsg(300 * time.Millisecond)
			if err != nil {
				break
			}
			got = append(got, string(m.Data))
		}
		if len(got) != 1 || got[0] != "first" {
			t.Errorf("service got answers %q, want only \"first\"", got)
		}
	})
}

func (f *fleet) h1() (*nats.Conn, *recorder)     { return f.agent1, f.agent1Log }
func (f *fleet) mgrPub() (*nats.Conn, *recorder) { return f.manager, f.mgrLog }
func (f *fleet) svc() *nats.Conn                 { return f.service }
func (f *fleet) h2() *nats.Conn                  { return f.agent2 }
func (f *fleet) mgr() *nats.Conn                 { return f.manager }

func TestCredentialsAtConnect(t *testing.T) {
	b := newTestBus(t)
	auth := b.auth
	expiredAuth := *auth
	expiredAuth.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	otherAuth := newTestAuthority(t)

	tests := []struct {
		name    string
		creds   func() ([]byte, error)
		refused bool
	}{
		{"agent credentials valid for another hour are accepted", func() ([]byte, error) { return auth.AgentCredentials("H1", bus.GrammarSplit, time.Hour) }, false},
		{"agent credentials that expired an hour ago are refused", func() ([]byte, error) { return expiredAuth.AgentCredentials("H1", bus.GrammarSplit, time.Hour) }, true},
		{"service credentials that expired an hour ago are refused", func() ([]byte, error) { return expiredAuth.ServiceCredentials("hvs", time.Hour) }, true},
		{"credentials of another authority are refused", func() ([]byte, error) { return otherAuth.AgentCredentials("H1", bus.GrammarSplit, time.Hour) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := mustCreds(t)(tt.creds())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			nc, err := natsbus.Connect(ctx, b.srv.ClientURL(), creds, b.ca.pool, "test", discardLogger())
			if !tt.refused {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("Connect succeeded, want refused")
			}
			if !errors.Is(err, nats.ErrAuthorization) && !errors.Is(err, nats.ErrAuthExpired) {
				t.Errorf("Connect error = %v, want an authorization error", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refusal took %s, want no retries", d)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	ca := newTestCA(t)
	auth := newTestAuthority(t)
	creds := mustCreds(t)(auth.AgentCredentials("H1", bus.GrammarSplit, ttl))
	srv, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
	plain, _ := startServer(t, ServerConfig{Host: "127.0.0.1", AllowPlaintextForTests: true}, auth)

	t.Run("a server without tls config is not created", func(t *testing.T) {
		if _, err := NewServer(ServerConfig{}, auth, discardLogger()); err == nil {
			t.Error("NewServer without TLS succeeded, want an error")
		}
	})

	t.Run("the server's tls config is raised to tls 1.3", func(t *testing.T) {
		old := ca.serverTLS.Clone()
		old.MinVersion = tls.VersionTLS12
		s, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: old}, auth)
		addr := strings.TrimPrefix(s.ClientURL(), "tls://")
		raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := bufio.NewReader(raw).ReadString('\n'); err != nil { // INFO
			t.Fatal(err)
		}
		conn := tls.Client(raw, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12})
		if err := conn.Handshake(); err == nil {
			t.Error("tls 1.2 handshake succeeded, want refused")
		}
	})

	tests := []struct {
		name, url string
		expect    string // "PONG" or "closed"
	}{
		{"a server allowed plaintext for tests answers a plaintext client", plain.ClientURL(), "PONG"},
		{"a tls server drops a client that speaks plaintext", srv.ClientURL(), "closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawPlaintextConnect(t, tt.url, creds); got != tt.expect {
				t.Errorf("plaintext CONNECT + PING got %s, want %s", got, tt.expect)
			}
		})
	}

	t.Run("a client with another root CA cannot connect", func(t *testing.T) {
		other := newTestCA(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := natsbus.Connect(ctx, srv.ClientURL(), creds, other.pool, "agent-H1", discardLogger())
		if err == nil {
			nc.Close()
			t.Fatal("Connect succeeded, want a certificate error")
		}
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Errorf("Connect error = %v, want a certificate verification error", err)
		}
	})

	t.Run("a client refuses a server without tls", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := natsbus.Connect(ctx, plain.ClientURL(), creds, ca.pool, "agent-H1", discardLogger())
		if err == nil {
			nc.Close()
			t.Fatal("Connect succeeded, want refused")
		}
		if !errors.Is(err, nats.ErrSecureConnWanted) {
			t.Errorf("Connect error = %v, want %v", err, nats.ErrSecureConnWanted)
		}
	})
}

// rawPlaintextConnect speaks the NATS protocol in plaintext: it reads INFO,
// sends a signed CONNECT and a PING, and reports "PONG", "closed" or the
// unexpected line.
func rawPlaintextConnect(t *testing.T, url string, creds []byte) string {
	t.Helper()
	addr := url[strings.Index(url, "://")+3:]
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := conn.Write(connectLine(t, creds, readInfoNonce(t, r), false)); err != nil {
		return "closed"
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "closed"
		}
		switch line = strings.TrimSpace(line); {
		case line == "PONG":
			return "PONG"
		case strings.HasPrefix(line, "-ERR"):
			continue // then the server closes
		default:
			return line
		}
	}
}

// readInfoNonce reads the server's INFO line, the first of a connection,
// and returns the nonce a CONNECT signs.
func readInfoNonce(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("read INFO: %q %v", line, err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	return info.Nonce
}

// connectLine is a CONNECT with the JWT of creds and its signature of
// nonce, then a PING.
func connectLine(t *testing.T, creds []byte, nonce string, tlsRequired bool) []byte {
	t.Helper()
	c, err := bus.ParseCredentials(creds)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := c.Sign([]byte(nonce))
	if err != nil {
		t.Fatal(err)
	}
	connect, err := json.Marshal(map[string]any{
		"verbose": false, "pedantic": false, "protocol": 1, "tls_required": tlsRequired,
		"jwt": c.JWT(), "sig": base64.RawURLEncoding.EncodeToString(sig),
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, "CONNECT %s\r\nPING\r\n", connect)
}

func TestAgentStartedBeforeServer(t *testing.T) {
	ca := newTestCA(t)
	auth := newTestAuthority(t)
	port := freePort(t)
	url := "tls://127.0.0.1:" + strconv.Itoa(port)
	cfg := ServerConfig{Host: "127.0.0.1", Port: port, TLS: ca.serverTLS}

	rec := &recorder{}
	type result struct {
		nc  *nats.Conn
		err error
	}
	connected := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		nc, err := natsbus.Connect(ctx, url, mustCreds(t)(auth.AgentCredentials("H1", bus.GrammarSplit, ttl)), ca.pool, "agent-H1", slog.New(rec))
		connected <- result{nc, err}
	}()
	if !rec.waitFor("nats server unreachable, retrying", 10*time.Second) {
		t.Fatalf("agent did not retry; log:\n%s", rec.text())
	}
	select {
	case r := <-connected:
		t.Fatalf("Connect returned before the server started: %v", r.err)
	default:
	}

	_, stop := startServer(t, cfg, auth)
	var agent *nats.Conn
	select {
	case r := <-connected:
		if r.err != nil {
			t.Fatalf("Connect: %v", r.err)
		}
		agent = r.nc
		t.Cleanup(agent.Close)
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not connect after the server came up; log:\n%s", rec.text())
	}
	echoAgent(t, agent, "H1")

	request := func(t *testing.T) {
		t.Helper()
		service, _ := client(t, url, mustCreds(t)(auth.ServiceCredentials("hvs", ttl)), ca.pool, "hvs")
		msg, err := service.Request(subject(t)(bus.AgentRequestSubject("H1", bus.QuoteRequest)), []byte("n"), 5*time.Second)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		if string(msg.Data) != "H1:n" {
			t.Errorf("reply %q, want H1:n", msg.Data)
		}
	}
	t.Run("the agent answers once the server is up", request)

	t.Run("the agent reconnects and answers after the server restarts", func(t *testing.T) {
		stop()
		if !rec.waitFor("nats disconnected", 10*time.Second) {
			t.Fatalf("no disconnect logged; log:\n%s", rec.text())
		}
		startServer(t, cfg, auth)
		if !rec.waitFor("nats reconnected", 20*time.Second) {
			t.Fatalf("agent did not reconnect; log:\n%s", rec.text())
		}
		request(t)
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestInProcessConnections(t *testing.T) {
	b := newTestBus(t)
	srv, auth := b.srv, b.auth
	agent, _ := b.agent(t, "H1")
	echoAgent(t, agent, "H1")

	t.Run("an in-process service reaches an agent connected over tls", func(t *testing.T) {
		svc, err := ConnectInProcess(srv, mustCreds(t)(auth.ServiceCredentials("hvs", ttl)), "hvs", discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		msg, err := svc.Request(subject(t)(bus.AgentRequestSubject("H1", bus.HostInfoRequest)), []byte("i"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.Data) != "H1:i" {
			t.Errorf("reply %q, want H1:i", msg.Data)
		}
	})

	t.Run("agent credentials are refused in process", func(t *testing.T) {
		if testing.Short() {
			// Over net.Pipe the server's error write waits for its 10 s write
			// deadline before the client sees the refusal.
			t.Skip("takes 10 s")
		}
		nc, err := ConnectInProcess(srv, mustCreds(t)(auth.AgentCredentials("H1", bus.GrammarSplit, ttl)), "agent-H1", discardLogger())
		if err == nil {
			nc.Close()
			t.Fatal("ConnectInProcess with agent credentials succeeded, want refused")
		}
	})
}

func TestServerRun(t *testing.T) {
	auth := newTestAuthority(t)
	ca := newTestCA(t)

	t.Run("a server whose port is taken fails Run and Ready", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		srv, err := NewServer(ServerConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: ca.serverTLS}, auth, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		runErr := srv.Run(context.Background())
		if runErr == nil {
			t.Fatal("Run succeeded on a taken port")
		}
		if !strings.Contains(runErr.Error(), "address already in use") {
			t.Errorf("Run error %q does not say why", runErr)
		}
		if err := srv.Ready(time.Second); err == nil {
			t.Error("Ready = nil after a failed Run")
		}
	})

	t.Run("Run cannot be called twice", func(t *testing.T) {
		srv, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
		if err := srv.Run(context.Background()); err == nil {
			t.Error("second Run succeeded")
		}
	})

	t.Run("the client url names the loopback address when listening on all interfaces", func(t *testing.T) {
		srv, _ := startServer(t, ServerConfig{TLS: ca.serverTLS}, auth)
		if got := srv.ClientURL(); !strings.HasPrefix(got, "tls://127.0.0.1:") {
			t.Errorf("ClientURL = %q, want tls://127.0.0.1:<port>", got)
		}
	})
}
