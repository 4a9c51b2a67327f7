package verifier_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/pgtest"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/report"
)

// TestAgentRenewsItsCredentialsAndIsCutOffWhenItsHostIsDeletedOrDisabled
// runs the whole verifier with bus credentials that live 3 s: an agent on a
// swtpm, with credentials from AAS, renews them at least three times over
// the bus while HVS keeps attesting it without a failure; deleting or
// disabling the host through the API closes its connection within 2 s and it
// stays out (its renewals and reconnections refused).
func TestAgentRenewsItsCredentialsAndIsCutOffWhenItsHostIsDeletedOrDisabled(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"deleting the host cuts its agent off", "DELETE", "/hvs/v2/hosts/edge-9", http.StatusNoContent},
		{"disabling the host cuts its agent off", "POST", "/hvs/v2/hosts/edge-9/disable", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { agentRenewsUntilCutOff(t, tt.method, tt.path, tt.status) })
	}
}

func agentRenewsUntilCutOff(t *testing.T, method, path string, wantStatus int) {
	const lifetime = 3 * time.Second
	sw := tpmtest.NewWithEKCert(t)
	ekRoots := tpmtest.LocalCAPool(t)
	h := startVerifier(t, t.TempDir(), func(c *verifier.Config) {
		c.AAS.CredentialValidity = lifetime
		c.Enrollment.EKRoots = ekRoots
	})
	admin := h.login(t, "admin", adminPassword)
	creds, err := bus.ParseCredentials(issue(t, h, admin, `{"type":"TA","parameters":{"host-id":"edge-9"}}`))
	if err != nil {
		t.Fatal(err)
	}

	nt, _, root := measuredNode(t, sw, "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a09", "edge-9")
	a, err := agent.New(agent.Config{HostID: "edge-9"}, nt, measure.New(root.Dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var current *nats.Conn
	dial := func(ctx context.Context, c *bus.Credentials) (bus.Conn, error) {
		nc, err := natsbus.Connect(ctx, h.v.NATSURL(), c.Bytes(), h.v.Roots, "agent-edge-9", slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		current = nc
		mu.Unlock()
		return natsbus.Adapt(nc), nil
	}
	renewals := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.RunRenewing(ctx, creds, dial, func(*bus.Credentials) error { renewals <- struct{}{}; return nil })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()

	const ctJSON = "application/json"
	h.eventually(t, http.StatusCreated, "POST", "/hvs/v2/aik-enrollments", admin, []byte(`{"host_id":"edge-9"}`))
	h.eventually(t, http.StatusCreated, "POST", "/hvs/v2/hosts", admin, []byte(`{"host_name":"edge-9","connection_string":"nats://edge-9"}`))

	start := time.Now()
	reports, renewed := 0, 0
	for renewed < 3 {
		select {
		case <-renewals:
			renewed++
			continue
		default:
		}
		if time.Since(start) > 5*lifetime {
			t.Fatalf("%d renewals in %s", renewed, time.Since(start))
		}
		status, body := h.do(t, "POST", "/hvs/v2/reports", admin, ctJSON, []byte(`{"host_id":"edge-9"}`))
		var rep report.Report
		if status != http.StatusCreated || json.Unmarshal(body, &rep) != nil || rep.HostStatus != "CONNECTED" {
			t.Fatalf("report %d, after %d renewals: %d %s", reports+1, renewed, status, body)
		}
		reports++
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d renewals in %s, %d reports without a failure", renewed, time.Since(start), reports)

	if status, body := h.do(t, method, path, admin, "", nil); status != wantStatus {
		t.Fatalf("%s %s: %d %s", method, path, status, body)
	}
	deleted := time.Now()
	mu.Lock()
	nc := current
	mu.Unlock()
	for nc.IsConnected() {
		if time.Since(deleted) > 2*time.Second {
			t.Fatal("the host's agent is still connected after 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("cut off %s after %s %s", time.Since(deleted), method, path)
	time.Sleep(lifetime) // reconnects and renewal attempts
	mu.Lock()
	nc = current
	mu.Unlock()
	if nc.IsConnected() {
		t.Fatal("the host's agent is connected again")
	}
}

// connectBus dials the verifier's embedded bus with creds.
func connectBus(t *testing.T, h *harness, creds []byte, name string) (*nats.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return natsbus.Connect(ctx, h.v.NATSURL(), creds, h.v.Roots, name, slog.New(slog.DiscardHandler))
}

// renews fails the test unless the agent of host, connected with creds,
// gets its credentials renewed by the verifier over the bus.
func renews(t *testing.T, h *harness, creds []byte, host string) {
	t.Helper()
	current, err := bus.ParseCredentials(creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := connectBus(t, h, creds, "agent-"+host)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bus.RenewCredentials(ctx, natsbus.Adapt(nc), host, current); err != nil {
		t.Fatalf("renew %s: %v", host, err)
	}
}

// issue asks AAS for bus credentials.
func issue(t *testing.T, h *harness, admin, body string) []byte {
	t.Helper()
	status, creds := h.do(t, "POST", "/aas/v1/credentials", admin, "application/json", []byte(body))
	if status != http.StatusOK {
		t.Fatalf("credentials %s: %d %s", body, status, creds)
	}
	return creds
}

// TestCutOffCredentialsStayRefusedAfterARestart plays a removed node, a
// disabled node, a revoked attestation manager and a stolen, revoked HVS
// service credential against the whole verifier: each connection closes
// within 2 s of the operator's call (the verifier's own connection stays), and
// after the verifier restarts on the same database their credentials are
// refused at the first connection (before any reconciliation), while the
// credentials of a host in good standing still connect. A disabled host gets
// no credentials and no report; enabled again, its agent connects with fresh
// credentials, never with the old ones.
func TestCutOffCredentialsStayRefusedAfterARestart(t *testing.T) {
	backends := []struct {
		name string
		opts func(t *testing.T) []func(*verifier.Config)
	}{
		{"on SQLite", func(*testing.T) []func(*verifier.Config) { return nil }},
		{"on PostgreSQL", func(t *testing.T) []func(*verifier.Config) {
			dsn := pgtest.Schema(t)
			kek := filepath.Join(t.TempDir(), "kek")
			writeKey(t, kek, 0o600)
			return []func(*verifier.Config){func(c *verifier.Config) { c.Database, c.KeyEncryption.KeyFile = dsn, kek }}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { cutOffsStayRefusedAfterARestart(t, b.opts(t)...) })
	}
}

func cutOffsStayRefusedAfterARestart(t *testing.T, opts ...func(*verifier.Config)) {
	const ctJSON = "application/json"
	dir := t.TempDir()
	h := startVerifier(t, dir, opts...)
	admin := h.login(t, "admin", adminPassword)
	for _, id := range []string{"edge-1", "edge-2", "edge-3"} {
		if status, body := h.do(t, "POST", "/hvs/v2/hosts", admin, ctJSON, []byte(`{"host_name":"`+id+`","connection_string":"nats://`+id+`"}`)); status != http.StatusCreated {
			t.Fatalf("register %s: %d %s", id, status, body)
		}
	}
	good := issue(t, h, admin, `{"type":"TA","parameters":{"host-id":"edge-3"}}`)
	cutOffs := []struct {
		name  string
		creds []byte
		cut   func() (int, []byte)
		want  int
	}{
		{"a deleted host's agent", issue(t, h, admin, `{"type":"TA","parameters":{"host-id":"edge-1"}}`),
			func() (int, []byte) { return h.do(t, "DELETE", "/hvs/v2/hosts/edge-1", admin, "", nil) }, http.StatusNoContent},
		{"a disabled host's agent", issue(t, h, admin, `{"type":"TA","parameters":{"host-id":"edge-2"}}`),
			func() (int, []byte) { return h.do(t, "POST", "/hvs/v2/hosts/edge-2/disable", admin, "", nil) }, http.StatusOK},
		{"a revoked attestation manager", issue(t, h, admin, `{"type":"AM"}`),
			func() (int, []byte) {
				return h.do(t, "DELETE", "/aas/v1/credentials/managers/attestation-manager", admin, "", nil)
			}, http.StatusNoContent},
		{"a stolen HVS service credential", issue(t, h, admin, `{"type":"HVS"}`),
			func() (int, []byte) { return h.do(t, "DELETE", "/aas/v1/credentials/services/HVS", admin, "", nil) }, http.StatusNoContent},
	}
	for _, c := range cutOffs {
		t.Run(c.name+" is cut off within 2 s", func(t *testing.T) {
			nc, err := connectBus(t, h, c.creds, "victim")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			start := time.Now()
			if status, body := c.cut(); status != c.want {
				t.Fatalf("cut off: %d %s, want %d", status, body, c.want)
			}
			for nc.IsConnected() {
				if time.Since(start) > 2*time.Second {
					t.Fatal("still connected after 2 s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("cut off after %s", time.Since(start))
		})
	}
	t.Run("a disabled host gets no credentials and no report", func(t *testing.T) {
		if status, body := h.do(t, "POST", "/aas/v1/credentials", admin, ctJSON, []byte(`{"type":"TA","parameters":{"host-id":"edge-2"}}`)); status != http.StatusConflict {
			t.Errorf("credentials: %d %s, want 409", status, body)
		}
		if status, body := h.do(t, "POST", "/hvs/v2/reports", admin, ctJSON, []byte(`{"host_id":"edge-2"}`)); status != http.StatusConflict {
			t.Errorf("report: %d %s, want 409", status, body)
		}
	})

	t.Run("revoking the service name hvs leaves the verifier's own connection: an agent still renews", func(t *testing.T) {
		if status, body := h.do(t, "DELETE", "/aas/v1/credentials/services/hvs", admin, "", nil); status != http.StatusNoContent {
			t.Fatalf("revoke hvs: %d %s", status, body)
		}
		renews(t, h, good, "edge-3")
	})
	t.Run("revoking a service needs a valid name", func(t *testing.T) {
		if status, body := h.do(t, "DELETE", "/aas/v1/credentials/services/a.b", admin, "", nil); status != http.StatusBadRequest {
			t.Fatalf("revoke a.b: %d %s, want 400", status, body)
		}
	})

	h.v.Stop()
	h = startVerifier(t, dir, opts...)
	admin = h.login(t, "admin", adminPassword)
	for _, c := range cutOffs {
		t.Run(c.name+" is refused at the first connection after a restart", func(t *testing.T) {
			if nc, err := connectBus(t, h, c.creds, "victim"); err == nil {
				nc.Close()
				t.Fatal("connected")
			}
		})
	}
	t.Run("a host in good standing still connects after a restart", func(t *testing.T) {
		nc, err := connectBus(t, h, good, "agent-edge-3")
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	})
	t.Run("a host is still disabled after a restart, and enabled takes fresh credentials only", func(t *testing.T) {
		var list restapi.HostList
		status, body := h.do(t, "GET", "/hvs/v2/hosts?nameEqualTo=edge-2", admin, "", nil)
		if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil || len(list.Hosts) != 1 || !list.Hosts[0].Disabled {
			t.Fatalf("host list: %d %s", status, body)
		}
		if status, body := h.do(t, "POST", "/hvs/v2/hosts/edge-2/enable", admin, "", nil); status != http.StatusOK {
			t.Fatalf("enable: %d %s", status, body)
		}
		if nc, err := connectBus(t, h, cutOffs[1].creds, "agent-edge-2"); err == nil {
			nc.Close()
			t.Fatal("the old credentials of an enabled host connect")
		}
		nc, err := connectBus(t, h, issue(t, h, admin, `{"type":"TA","parameters":{"host-id":"edge-2"}}`), "agent-edge-2")
		if err != nil {
			t.Fatalf("fresh credentials of the enabled host: %v", err)
		}
		nc.Close()
	})
}
