package busserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/verifier/memsecrets"

	"trustedcompute.io/tc/internal/bus"
)

// refused fails the test unless creds are refused at connect, at once.
func refused(t *testing.T, url string, creds []byte, ca testCA, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	nc, err := natsbus.Connect(ctx, url, creds, ca.pool, "test", discardLogger())
	if err == nil {
		nc.Close()
		t.Fatalf("%s: connected, want refused", what)
	}
	if !errors.Is(err, nats.ErrAuthorization) && !errors.Is(err, nats.ErrAuthRevoked) {
		t.Errorf("%s: %v, want an authorization error", what, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%s: refused after %s, want at once", what, d)
	}
}

// TestRevocationsOutliveARestart plays an agent (and a manager) cut off by
// the verifier, which then restarts: a new authority and server on the same
// secrets and ledger refuse the revoked credentials from the first
// connection, before any reconciliation, and accept the others.
func TestRevocationsOutliveARestart(t *testing.T) {
	ca := newTestCA(t)
	secrets := memsecrets.New()
	ledger := newMemLedger()
	auth1, err := NewAuthority(context.Background(), secrets, errNotFound, WithLedger(ledger))
	if err != nil {
		t.Fatal(err)
	}
	srv1, stop1 := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth1)
	r1 := startRenewer(t, srv1, auth1, newFakeHosts("H1", "H2"), time.Hour)
	h1creds := mustCreds(t)(auth1.AgentCredentials("H1", bus.GrammarSplit, time.Hour))
	h2creds := mustCreds(t)(auth1.AgentCredentials("H2", bus.GrammarSplit, time.Hour))
	amCreds := mustCreds(t)(auth1.ManagerCredentials("am", time.Hour))
	otherAM := mustCreds(t)(auth1.ManagerCredentials("am2", time.Hour))
	svcCreds := mustCreds(t)(auth1.ServiceCredentials("HVS", time.Hour))
	h1, _ := client(t, srv1.ClientURL(), h1creds, ca.pool, "agent-H1")
	am, _ := client(t, srv1.ClientURL(), amCreds, ca.pool, "manager-am")

	r1.HostRemoved("H1")
	if err := r1.RevokeManager(context.Background(), "am"); err != nil {
		t.Fatal(err)
	}
	if err := r1.RevokeService(context.Background(), "HVS"); err != nil {
		t.Fatal(err)
	}
	waitDisconnected(t, h1, 2*time.Second)
	waitDisconnected(t, am, 2*time.Second)
	stop1()

	auth2, err := NewAuthority(context.Background(), secrets, errNotFound, WithLedger(ledger))
	if err != nil {
		t.Fatal(err)
	}
	srv2, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth2)
	tests := []struct {
		name    string
		creds   []byte
		refused bool
	}{
		{"the removed host's credentials are refused at the first connection after the restart", h1creds, true},
		{"the revoked manager's credentials are refused at the first connection after the restart", amCreds, true},
		{"the revoked service's credentials are refused at the first connection after the restart", svcCreds, true},
		{"another host's credentials still connect", h2creds, false},
		{"another manager's credentials still connect", otherAM, false},
		{"credentials issued to the revoked manager after the restart connect", mustCreds(t)(auth2.ManagerCredentials("am", time.Hour)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.refused {
				refused(t, srv2.ClientURL(), tt.creds, ca, tt.name)
				return
			}
			client(t, srv2.ClientURL(), tt.creds, ca.pool, "test")
		})
	}
}

// TestRevokedManagerIsCutOff revokes a named manager's credentials on the
// running server: its connections close within 2 s and stay out; another
// manager keeps receiving.
func TestRevokedManagerIsCutOff(t *testing.T) {
	b := newTestBus(t)
	r := startRenewer(t, b.srv, b.auth, newFakeHosts(), time.Hour)
	creds := mustCreds(t)(b.auth.ManagerCredentials("am", time.Hour))
	am, _ := b.dial(t, creds, "manager-am")
	other, _ := b.manager(t, "am2")

	start := time.Now()
	if err := r.RevokeManager(context.Background(), "am"); err != nil {
		t.Fatal(err)
	}
	staysOut(t, b, am, creds, 2*time.Second-time.Since(start), "the revoked manager")
	if !other.IsConnected() {
		t.Fatal("the other manager was cut off too")
	}
	for _, name := range []string{"", "a.b", "*"} {
		if err := r.RevokeManager(context.Background(), name); err == nil {
			t.Errorf("RevokeManager(%q) succeeded, want an error", name)
		}
	}
}

// failingLedger records nothing.
type failingLedger struct{ *memLedger }

func (failingLedger) RecordKeys(context.Context, ...UserKey) error { return errors.New("disk full") }

func TestCredentialsWhoseKeyIsNotRecordedAreNotIssued(t *testing.T) {
	a, err := NewAuthority(context.Background(), memsecrets.New(), errNotFound, WithLedger(failingLedger{newMemLedger()}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		issue func() ([]byte, error)
	}{
		{"agent credentials are refused", func() ([]byte, error) { return a.AgentCredentials("H1", bus.GrammarSplit, time.Hour) }},
		{"manager credentials are refused", func() ([]byte, error) { return a.ManagerCredentials("am", time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if creds, err := tt.issue(); err == nil || creds != nil {
				t.Fatalf("issued %d bytes, err %v; want none and an error", len(creds), err)
			}
		})
	}
}

func TestReconcilePrunesExpiredKeys(t *testing.T) {
	ca := newTestCA(t)
	ledger := newMemLedger()
	auth, err := NewAuthority(context.Background(), memsecrets.New(), errNotFound, WithLedger(ledger))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
	r := startRenewer(t, srv, auth, newFakeHosts("H1"), time.Hour)
	mustCreds(t)(auth.AgentCredentials("H1", bus.GrammarSplit, time.Hour))
	old := UserKey{Owner: Owner{OwnerAgent, "H0"}, PublicKey: "UOLD", Expires: time.Now().Add(-time.Minute), Revoked: time.Now().Add(-time.Hour)}
	if err := ledger.RecordKeys(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	r.Reconcile(context.Background())
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if _, ok := ledger.keys["UOLD"]; ok || len(ledger.keys) != 1 {
		t.Fatalf("after the reconciliation the ledger holds %d keys (expired one kept: %t), want the live one only", len(ledger.keys), ok)
	}
}
