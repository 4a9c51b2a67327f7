package verifier_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

const adminPassword = verifiertest.AdminPassword

type harness struct {
	v      *verifiertest.Verifier
	base   string
	client *http.Client
	roots  *x509.CertPool
	stop   func()
}

// startVerifier runs a whole verifier (SQLite, embedded NATS) on loopback and
// bootstraps a client the way an operator does: pinned CMS root digest.
func startVerifier(t *testing.T, dataDir string, opts ...func(*verifier.Config)) *harness {
	t.Helper()
	v := verifiertest.Start(t, dataDir, opts...)
	return &harness{v: v, base: v.Base, client: v.Client, roots: v.Roots, stop: v.Stop}
}

func (h *harness) do(t *testing.T, method, path, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) login(t *testing.T, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	status, tok := h.do(t, "POST", "/aas/v1/token", "", "application/json", body)
	if status != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, status, tok)
	}
	return string(tok)
}

// tokenWith gets a custom-claims token holding exactly one permission rule.
func (h *harness) tokenWith(t *testing.T, admin, service, rule string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"subject": "matrix", "validity_seconds": 600,
		"claims": map[string]any{"permissions": []map[string]any{{"service": service, "rules": []string{rule}}}},
	})
	status, tok := h.do(t, "POST", "/aas/v1/custom-claims-token", admin, "application/json", body)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("custom claims token for %s %s: %d %s", service, rule, status, tok)
	}
	return string(tok)
}

// TestAuthorizationMatrix checks every protected route of the running
// verifier with no token (401), a token lacking the route's permission (403)
// and a token holding exactly it (neither 401 nor 403).
func TestAuthorizationMatrix(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	other := h.tokenWith(t, admin, "HVS", "unrelated:read:*")
	routes := verifier.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes: the route table is incomplete", len(routes))
	}
	for _, r := range routes {
		if r.Service == "" {
			continue
		}
		path := strings.NewReplacer("{id}", "00000000-0000-0000-0000-000000000001", "{roleId}", "00000000-0000-0000-0000-000000000002", "{hostId}", "h1").Replace(r.Pattern)
		t.Run(r.Method+" "+r.Pattern, func(t *testing.T) {
			if status, body := h.do(t, r.Method, path, "", "application/json", []byte("{}")); status != http.StatusUnauthorized {
				t.Errorf("without a token: %d %s, want 401", status, body)
			}
			if status, body := h.do(t, r.Method, path, other, "application/json", []byte("{}")); status != http.StatusForbidden {
				t.Errorf("without the permission: %d %s, want 403", status, body)
			}
			right := h.tokenWith(t, admin, r.Service, r.Rule)
			if status, body := h.do(t, r.Method, path, right, "application/json", []byte("{}")); status == http.StatusUnauthorized || status == http.StatusForbidden {
				t.Errorf("with %s %s: %d %s, want the handler's answer", r.Service, r.Rule, status, body)
			}
		})
	}
}

func TestBootstrapRefusesAWrongPin(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	wrong := strings.Repeat("ab", 48)
	if _, err := cms.FetchRootPinned(context.Background(), h.base, wrong); err == nil {
		t.Fatal("bootstrap with a wrong root digest succeeded")
	}
}

func TestOnlyTLS13IsServed(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MaxVersion: tls.VersionTLS12, RootCAs: h.roots}}}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", h.base+"/healthz", nil)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.2 client was served")
	}
}

func TestRestartKeepsTheRootAndTheAdmin(t *testing.T) {
	dir := t.TempDir()
	h := startVerifier(t, dir)
	root := h.v.CA().RootSHA384()
	h.stop()
	h2 := startVerifier(t, dir)
	if got := h2.v.CA().RootSHA384(); got != root {
		t.Fatalf("root changed across a restart: %s → %s", root, got)
	}
	h2.login(t, "admin", adminPassword)
}

// TestAgentCredentialsConnectToTheBus issues a trust agent's NATS credentials
// through AAS and uses them against the verifier's embedded bus over TLS
// pinned to the CMS root.
func TestAgentCredentialsConnectToTheBus(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	body := []byte(`{"type":"TA","parameters":{"host-id":"edge-1"}}`)
	status, creds := h.do(t, "POST", "/aas/v1/credentials", admin, "application/json", body)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("credentials: %d %s", status, creds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, h.v.NATSURL(), creds, h.roots, "agent-edge-1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("agent connect: %v", err)
	}
	defer nc.Close()
	subject, _ := bus.AgentRequests("edge-1")
	if _, err := nc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); err != nil {
		t.Fatalf("subscription refused: %v", err)
	}
}

// TestNodeLifecycleOverTheRealStack enrolls a trust agent on a swtpm with an EK
// certificate: credentials from AAS, the agent dials the embedded bus, the
// operator asks HVS to enroll it, and the AK certificate comes back.
func TestNodeLifecycleOverTheRealStack(t *testing.T) {
	sw := tpmtest.NewWithEKCert(t)
	ekRoots := tpmtest.LocalCAPool(t)
	h := startVerifier(t, t.TempDir(), func(c *verifier.Config) { c.Enrollment.EKRoots = ekRoots })
	admin := h.login(t, "admin", adminPassword)
	status, creds := h.do(t, "POST", "/aas/v1/credentials", admin, "application/json", []byte(`{"type":"TA","parameters":{"host-id":"edge-1"}}`))
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("credentials: %d %s", status, creds)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	raw, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	nt, err := agent.NewNodeTPM(raw, tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	banks, err := sandbox.ReplayEventLog(nt, sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.NewRoot(t.TempDir(), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a01", "edge-1", sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.MeasureFiles(nt, banks, map[string]string{"/usr/bin/kata-runtime": "kata"}); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{HostID: "edge-1"}, nt, measure.New(root.Dir), logger)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := bus.Connect(ctx, h.v.NATSURL(), creds, h.roots, "agent", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go func() { _ = a.Run(ctx, nc) }()

	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body = h.do(t, "POST", "/hvs/v2/aik-enrollments", admin, "application/json", []byte(`{"host_id":"edge-1"}`))
		if status == http.StatusCreated || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the agent's subscription may not be up yet
	}
	if status != http.StatusCreated {
		t.Fatalf("enrollment: %d %s", status, body)
	}
	var got struct {
		HostID        string `json:"host_id"`
		AKCertificate string `json:"ak_certificate"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.HostID != "edge-1" || !strings.Contains(got.AKCertificate, "BEGIN CERTIFICATE") {
		t.Fatalf("enrollment answer %s (%v)", body, err)
	}
	if status, body := h.do(t, "GET", "/hvs/v2/aik-enrollments/edge-1", admin, "", nil); status != http.StatusOK {
		t.Fatalf("get enrollment: %d %s", status, body)
	}

	// Register, baseline, attest: a trusted report whose JWS verifies offline
	// against the CMS root alone.
	const ctJSON = "application/json"
	if status, body := h.do(t, "POST", "/hvs/v2/hosts", admin, ctJSON, []byte(`{"host_name":"edge-1","connection_string":"nats://edge-1"}`)); status != http.StatusCreated {
		t.Fatalf("register host: %d %s", status, body)
	}
	if status, body := h.do(t, "POST", "/hvs/v2/flavors", admin, ctJSON, []byte(`{"host_id":"edge-1","partial_flavor_types":["PLATFORM","OS","IMA"]}`)); status != http.StatusCreated {
		t.Fatalf("flavors from the host: %d %s", status, body)
	}
	trusted := func() bool {
		t.Helper()
		status, body := h.do(t, "POST", "/hvs/v2/reports", admin, ctJSON, []byte(`{"host_id":"edge-1"}`))
		if status != http.StatusCreated {
			t.Fatalf("report: %d %s", status, body)
		}
		var rep report.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		status, jws := h.do(t, "GET", "/hvs/v2/reports/"+rep.ID+"?format=jws", admin, "", nil)
		if status != http.StatusOK {
			t.Fatalf("report jws: %d %s", status, jws)
		}
		signed, err := report.Verify(string(jws), h.roots, time.Now())
		if err != nil {
			t.Fatalf("the report does not verify offline: %v", err)
		}
		if signed.ID != rep.ID || signed.Trusted() != rep.Trusted() {
			t.Fatalf("signed report %s/%v differs from the served one %s/%v", signed.ID, signed.Trusted(), rep.ID, rep.Trusted())
		}
		return rep.Trusted()
	}
	if !trusted() {
		t.Fatal("first report of a freshly baselined node is not trusted")
	}
	if status, body := h.do(t, "GET", "/metrics", admin, "", nil); status != http.StatusOK || !strings.Contains(string(body), `tc_hvs_reports_total{host_status="CONNECTED",result="trusted"} 1`) || !strings.Contains(string(body), "tc_nats_connections") {
		t.Fatalf("metrics: %d\n%s", status, body)
	}
	// A file measured into PCR 10 and shown in the IMA log, but not in the golden IMA flavor.
	if err := root.MeasureFiles(nt, banks, map[string]string{"/usr/bin/evil": "evil"}); err != nil {
		t.Fatal(err)
	}
	if trusted() {
		t.Fatal("a new IMA entry left the node trusted")
	}
}

// TestManagerCredentialsReceiveReports issues the attestation manager's bus
// credentials through AAS: it may receive trust reports and publish nothing.
func TestManagerCredentialsReceiveReports(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	status, creds := h.do(t, "POST", "/aas/v1/credentials", admin, "application/json", []byte(`{"type":"AM"}`))
	if status != http.StatusOK {
		t.Fatalf("credentials: %d %s", status, creds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, h.v.NATSURL(), creds, h.roots, "attestation-manager", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("manager connect: %v", err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync(bus.AllReports); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); err != nil {
		t.Fatalf("subscription to the reports refused: %v", err)
	}
}
