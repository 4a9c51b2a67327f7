package busserver

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// staysOut fails the test unless nc, connected with creds, is closed by the
// server within timeout and creds are refused from then on.
func staysOut(t *testing.T, b testBus, nc *nats.Conn, creds []byte, timeout time.Duration, what string) {
	t.Helper()
	t.Logf("%s cut off after %s", what, waitDisconnected(t, nc, timeout))
	time.Sleep(500 * time.Millisecond) // the client's reconnect attempts
	if nc.IsConnected() {
		t.Fatalf("%s reconnected", what)
	}
	refused(t, b.srv.ClientURL(), creds, b.ca, what)
}

// TestRevokedServiceCredentialsAreCutOff plays a thief holding stolen HVS
// service credentials (POST /aas/v1/credentials {"type":"HVS"}): connected
// over TLS to the real embedded server it reads every agent's events. Once
// the service is revoked its connection closes within 2 s and its
// credentials are refused; the other service name and the verifier's own
// in-process connection stay, and credentials issued afterwards work. On
// the old code service keys were never recorded, so nothing could cut the
// thief off before the credentials expired (30 days by default).
func TestRevokedServiceCredentialsAreCutOff(t *testing.T) {
	b := newTestBus(t)
	r := startRenewer(t, b.srv, b.auth, newFakeHosts(), time.Hour)
	stolen := mustCreds(t)(b.auth.ServiceCredentials("HVS", time.Hour))
	thief, _ := b.dial(t, stolen, "thief")
	events := subscribed(t, thief, "trust-events.>")
	exported, _ := b.dial(t, mustCreds(t)(b.auth.ServiceCredentials("hvs", time.Hour)), "exported")
	own, err := ConnectInProcess(b.srv, mustCreds(t)(b.auth.InProcessCredentials("HVS", time.Hour)), "own", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Close)
	agent, _ := b.agent(t, "H1")
	if err := agent.Publish("trust-events.H1.boot", []byte("boot")); err != nil {
		t.Fatal(err)
	}
	if _, err := events.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("the thief read no agent event before the revocation: %v", err)
	}

	start := time.Now()
	if err := r.RevokeService(context.Background(), "HVS"); err != nil {
		t.Fatal(err)
	}
	staysOut(t, b, thief, stolen, 2*time.Second-time.Since(start), "the stolen service credentials")
	tests := []struct {
		name string
		nc   *nats.Conn
	}{
		{"the credentials of another service name stay connected", exported},
		{"the verifier's own in-process connection stays connected", own},
		{"the agent stays connected", agent},
		{"credentials issued to the revoked service afterwards connect", func() *nats.Conn {
			nc, _ := b.dial(t, mustCreds(t)(b.auth.ServiceCredentials("HVS", time.Hour)), "fresh")
			return nc
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.nc.IsConnected() {
				t.Fatal("disconnected")
			}
			if err := tt.nc.Flush(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, name := range []string{"", "a.b", "*"} {
		if err := r.RevokeService(context.Background(), name); err == nil {
			t.Errorf("RevokeService(%q) succeeded, want an error", name)
		}
	}
}

// TestInProcessCredentialsAreRefusedOverTCP: the verifier's own credentials,
// which no revocation touches, are worth nothing outside its process.
func TestInProcessCredentialsAreRefusedOverTCP(t *testing.T) {
	b := newTestBus(t)
	refused(t, b.srv.ClientURL(), mustCreds(t)(b.auth.InProcessCredentials("hvs", time.Hour)), b.ca, "in-process credentials over TCP")
}
