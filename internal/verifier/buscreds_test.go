package verifier_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/report"
)

// TestAgentRenewsItsCredentialsAndIsCutOffWhenItsHostIsDeleted runs the
// whole verifier with bus credentials that live 3 s: an agent on a swtpm,
// with credentials from AAS, renews them at least three times over the bus
// while HVS keeps attesting it without a failure; deleting the host through
// the API closes its connection within 2 s and it stays out.
func TestAgentRenewsItsCredentialsAndIsCutOffWhenItsHostIsDeleted(t *testing.T) {
	const lifetime = 3 * time.Second
	sw := tpmtest.NewWithEKCert(t)
	ekRoots := tpmtest.LocalCAPool(t)
	h := startVerifier(t, t.TempDir(), func(c *verifier.Config) {
		c.AAS.CredentialValidity = lifetime
		c.Enrollment.EKRoots = ekRoots
	})
	admin := h.login(t, "admin", adminPassword)
	status, raw := h.do(t, "POST", "/aas/v1/credentials", admin, "application/json", []byte(`{"type":"TA","parameters":{"host-id":"edge-9"}}`))
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("credentials: %d %s", status, raw)
	}
	creds, err := bus.ParseCredentials(raw)
	if err != nil {
		t.Fatal(err)
	}

	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Close() }()
	nt, err := agent.NewNodeTPM(tp, tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.ReplayEventLog(nt, sandbox.BootLogSecureBootOn); err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.NewRoot(t.TempDir(), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a09", "edge-9", sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{HostID: "edge-9"}, nt, measure.New(root.Dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var current *nats.Conn
	dial := func(ctx context.Context, c *bus.Credentials) (*nats.Conn, error) {
		nc, err := bus.Connect(ctx, h.v.NATSURL(), c.Bytes(), h.roots, "agent-edge-9", slog.New(slog.DiscardHandler))
		if err == nil {
			mu.Lock()
			current = nc
			mu.Unlock()
		}
		return nc, err
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := h.do(t, "POST", "/hvs/v2/aik-enrollments", admin, ctJSON, []byte(`{"host_id":"edge-9"}`))
		if status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("enrollment: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond) // the agent may not be up yet
	}
	for {
		status, body := h.do(t, "POST", "/hvs/v2/hosts", admin, ctJSON, []byte(`{"host_name":"edge-9","connection_string":"nats://edge-9"}`))
		if status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("register host: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond) // the agent may not be up yet
	}

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

	if status, body := h.do(t, "DELETE", "/hvs/v2/hosts/edge-9", admin, "", nil); status != http.StatusNoContent {
		t.Fatalf("delete host: %d %s", status, body)
	}
	deleted := time.Now()
	mu.Lock()
	nc := current
	mu.Unlock()
	for nc.IsConnected() {
		if time.Since(deleted) > 2*time.Second {
			t.Fatal("the deleted host's agent is still connected after 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("cut off %s after the delete", time.Since(deleted))
	time.Sleep(lifetime) // reconnects and renewal attempts
	mu.Lock()
	nc = current
	mu.Unlock()
	if nc.IsConnected() {
		t.Fatal("the deleted host's agent is connected again")
	}
}
