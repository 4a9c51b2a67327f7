package verifier_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

const adminPassword = verifiertest.AdminPassword

// harness is a running verifier with the requests the tests make of it.
type harness struct{ v *verifiertest.Verifier }

// startVerifier runs a whole verifier (SQLite, embedded NATS) on loopback and
// bootstraps a client the way an operator does: pinned CMS root digest.
func startVerifier(t *testing.T, dataDir string, opts ...func(*verifier.Config)) *harness {
	t.Helper()
	return &harness{v: verifiertest.Start(t, dataDir, opts...)}
}

func (h *harness) do(t *testing.T, method, path, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	return h.v.Do(t, method, path, token, contentType, body)
}

func (h *harness) login(t *testing.T, user, password string) string {
	t.Helper()
	return h.v.Login(t, user, password)
}

// eventually repeats a request until it answers want, for at most 20 s: a
// new agent's subscription may not be up yet.
func (h *harness) eventually(t *testing.T, want int, method, path, token string, body []byte) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, answer := h.do(t, method, path, token, "application/json", body)
		if status == want {
			return answer
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %d %s, want %d", method, path, status, answer, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// measuredNode is a node on the swtpm sw after a Secure Boot measured boot:
// its TPM, the banks its event log extended and its file system root.
func measuredNode(t *testing.T, sw *tpmtest.Swtpm, hardwareUUID, hostID string) (*agent.NodeTPM, []string, *sandbox.Root) {
	t.Helper()
	raw, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	nt, err := agent.NewNodeTPM(raw, tpm.AKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	banks, err := sandbox.ReplayEventLog(nt, sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.NewRoot(t.TempDir(), hardwareUUID, hostID, sandbox.BootLogSecureBootOn)
	if err != nil {
		t.Fatal(err)
	}
	return nt, banks, root
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
	if _, err := cms.FetchRootPinned(context.Background(), h.v.Base, wrong); err == nil {
		t.Fatal("bootstrap with a wrong root digest succeeded")
	}
}

func TestOnlyTLS13IsServed(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MaxVersion: tls.VersionTLS12, RootCAs: h.v.Roots}}}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", h.v.Base+"/healthz", nil)
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
	h.v.Stop()
	h2 := startVerifier(t, dir)
	if got := h2.v.CA().RootSHA384(); got != root {
		t.Fatalf("root changed across a restart: %s → %s", root, got)
	}
	h2.login(t, "admin", adminPassword)
}

// TestIssuedCredentialsSubscribeToTheirSubjects issues bus credentials
// through AAS and uses them against the verifier's embedded bus over TLS
// pinned to the CMS root.
func TestIssuedCredentialsSubscribeToTheirSubjects(t *testing.T) {
	agentRequests, _ := bus.AgentRequests("edge-1")
	tests := []struct {
		name, request, client, subject string
	}{
		{"a trust agent's credentials take its requests", `{"type":"TA","parameters":{"host-id":"edge-1"}}`, "agent-edge-1", agentRequests},
		{"the attestation manager's credentials take the trust reports", `{"type":"AM"}`, "attestation-manager", bus.AllReports},
	}
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := connectBus(t, h, issue(t, h, admin, tt.request), tt.client)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer nc.Close()
			if _, err := nc.SubscribeSync(tt.subject); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := nc.LastError(); err != nil {
				t.Fatalf("subscription to %s refused: %v", tt.subject, err)
			}
		})
	}
}

// TestNodeLifecycleOverTheRealStack enrolls a trust agent on a swtpm with an EK
// certificate: credentials from AAS, the agent dials the embedded bus, the
// operator asks HVS to enroll it, and the AK certificate comes back.
func TestNodeLifecycleOverTheRealStack(t *testing.T) {
	n := startNode(t, "edge-1")
	h, admin, nt, banks, root := n.h, n.admin, n.tpm, n.banks, n.root

	body := h.eventually(t, http.StatusCreated, "POST", "/hvs/v2/aik-enrollments", admin, []byte(`{"host_id":"edge-1"}`))
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
	n.register(t)
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
		signed, err := report.Verify(string(jws), h.v.Roots, time.Now())
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
