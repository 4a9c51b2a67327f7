package busserver

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
)

func TestManagerRenewsItsCredentialsAndKeepsReceivingReports(t *testing.T) {
	const lifetime = 3 * time.Second
	ca := newTestCA(t)
	auth := newTestAuthority(t)
	srv, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
	startRenewer(t, srv, auth, newFakeHosts("H1"), lifetime)
	creds, err := bus.ParseCredentials(mustCreds(t)(auth.ManagerCredentials("am", lifetime)))
	if err != nil {
		t.Fatal(err)
	}
	firstExpiry := creds.Expires()

	var mu sync.Mutex
	got := map[int]bool{}
	dial := func(ctx context.Context, c *bus.Credentials) (*nats.Conn, error) {
		return natsbus.Connect(ctx, srv.ClientURL(), c.Bytes(), ca.pool, "attestation-manager", discardLogger())
	}
	subscribe := func(nc *nats.Conn) ([]*nats.Subscription, error) {
		sub, err := nc.Subscribe(bus.AllReports, func(m *nats.Msg) {
			n, err := strconv.Atoi(string(m.Data))
			if err != nil {
				return
			}
			mu.Lock()
			got[n] = true
			mu.Unlock()
		})
		if err != nil {
			return nil, err
		}
		return []*nats.Subscription{sub}, nc.Flush()
	}
	renewals := make(chan *bus.Credentials, 16)
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc, err := natsbus.DialManager(ctx, creds, dial, subscribe, func(c *bus.Credentials) { renewals <- c }, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mc.Run(ctx) }()

	svc, err := ConnectInProcess(srv, mustCreds(t)(auth.ServiceCredentials("hvs", time.Hour)), "hvs-reports", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	stopPub := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPub:
				_ = svc.Flush()
				return
			case <-tick.C:
			}
			if err := svc.Publish("trust-reports.H1", []byte(strconv.Itoa(n))); err == nil {
				n++
			}
		}
	}()

	var last *bus.Credentials
	for i := range 3 {
		select {
		case last = <-renewals:
		case <-time.After(2 * lifetime):
			t.Fatalf("renewal %d did not happen; log:\n%s", i+1, rec.text())
		}
	}
	if !last.Expires().After(firstExpiry) {
		t.Fatalf("the last renewed credentials expire at %s, not after the first ones (%s)", last.Expires(), firstExpiry)
	}
	if !time.Now().After(firstExpiry) {
		t.Fatalf("3 renewals before the first credentials expired (%s): renewing too early", firstExpiry)
	}
	if !mc.IsConnected() {
		t.Fatal("the manager is not connected after 3 renewals")
	}
	close(stopPub)
	n := <-published
	if n < 100 {
		t.Fatalf("only %d reports published", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		var missing []int
		for i := range n {
			if !got[i] {
				missing = append(missing, i)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d reports published during the renewals were not received, first %d", len(missing), n, missing[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d reports received through 3 renewals", n)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestManagerCannotRenewOrReadCredentialsOfAnotherManager(t *testing.T) {
	ca := newTestCA(t)
	auth := newTestAuthority(t)
	srv, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
	startRenewer(t, srv, auth, newFakeHosts("H1"), time.Hour)
	am, log := client(t, srv.ClientURL(), mustCreds(t)(auth.ManagerCredentials("am", time.Hour)), ca.pool, "manager-am")

	otherRenew, _ := bus.ManagerRenewSubject("other")
	otherIssued, _ := bus.ManagerIssuedSubject("other")
	agentRenew, _ := bus.RenewSubject("H1")
	tests := []struct {
		name string
		try  func() error
	}{
		{"a manager asking on another manager's renewal subject is refused by the server", publishRefused(am, log, otherRenew)},
		{"a manager asking on an agent's renewal subject is refused by the server", publishRefused(am, log, agentRenew)},
		{"a manager subscribing to another manager's answers is refused by the server", subscribeRefused(am, otherIssued)},
		{"a manager subscribing to every manager's answers is refused by the server", subscribeRefused(am, bus.AllManagerIssued)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.try(); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("a manager's own renewal yields credentials of that manager only", func(t *testing.T) {
		current, err := bus.ParseCredentials(mustCreds(t)(auth.ManagerCredentials("am", time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fresh, err := bus.RenewManagerCredentials(ctx, natsbus.Adapt(am), current)
		if err != nil {
			t.Fatal(err)
		}
		if fresh.Name() != "manager:am" {
			t.Fatalf("renewed credentials of %q, want manager:am", fresh.Name())
		}
	})
}
