package verifier_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier"
)

// These tests play issue 11 points 1, 3 and 6 against the running verifier.

const ctJSON = "application/json"

// newUser creates a user through the API with a new role holding perms (in
// AAS) plus extra roles, and returns its id and a login token.
func (h *harness) newUser(t *testing.T, admin, name string, perms []string, extra ...map[string]any) (string, string) {
	t.Helper()
	post := func(path string, body any, want int) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		status, out := h.do(t, "POST", path, admin, ctJSON, b)
		if status != want {
			t.Fatalf("POST %s: %d %s", path, status, out)
		}
		return out
	}
	var u struct{ ID string }
	if err := json.Unmarshal(post("/aas/v1/users", map[string]string{"username": name, "password": name + "'s long password"}, http.StatusCreated), &u); err != nil {
		t.Fatal(err)
	}
	roles := append([]map[string]any{{"service": "AAS", "name": name + "-role", "context": "", "permissions": perms}}, extra...)
	var ids []string
	for _, r := range roles {
		var role struct{ ID string }
		if err := json.Unmarshal(post("/aas/v1/roles", r, http.StatusCreated), &role); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, role.ID)
	}
	post("/aas/v1/users/"+u.ID+"/roles", map[string]any{"role_ids": ids}, http.StatusNoContent)
	return u.ID, h.login(t, name, name+"'s long password")
}

func (h *harness) mint(t *testing.T, caller, subject string, roles, perms any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"subject": subject, "validity_seconds": 3600,
		"claims": map[string]any{"roles": roles, "permissions": perms}})
	status, out := h.do(t, "POST", "/aas/v1/custom-claims-token", caller, ctJSON, b)
	return status, string(out)
}

// csrPEM is a PEM certificate request of key for cn, dns and ips.
func csrPEM(t *testing.T, key crypto.Signer, cn string, dns []string, ips []net.IP) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestALowPrivilegedMinterCannotBuyACertificate plays issue 11 point 1 as
// filed: a user whose only permission is AAS:custom_claims:create:* asked
// for a CMS:CertApprover token for the verifier's own names (TLS and
// Signing) with subject admin, got 200, and had CMS sign with it.
func TestALowPrivilegedMinterCannotBuyACertificate(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	aliceID, alice := h.newUser(t, admin, "alice", []string{"custom_claims:create:*"})
	for _, certType := range []string{"TLS", "Signing"} {
		roles := []map[string]string{{"service": "CMS", "name": "CertApprover", "context": "CN=localhost;SAN=localhost,127.0.0.1;certType=" + certType}}
		for _, subject := range []string{"admin", aliceID} {
			status, tok := h.mint(t, alice, subject, roles, nil)
			if status != http.StatusForbidden {
				t.Errorf("certType=%s subject %s: minting a CertApprover token: %d, want 403", certType, subject, status)
			}
			if status == http.StatusOK { // show what the token buys on old code
				st, body := h.do(t, "POST", "/cms/v1/certificates?certType="+certType, tok, "application/x-pem-file",
					csrPEM(t, testca.NewKey(t), "localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}))
				t.Errorf("... and CMS answered %d with it: %.80s", st, body)
			}
		}
	}
}

// TestRevokedTokensAreRefusedWithinFiveSeconds plays issue 11 point 2: after
// DELETE /aas/v1/users/{id} (or a role removal, or a password change) the
// user's tokens and the custom-claims tokens minted from them kept working.
func TestRevokedTokensAreRefusedWithinFiveSeconds(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	tests := []struct {
		name   string
		revoke func(id, roleID string) (method, path, body string)
	}{
		{"deleting the user", func(id, _ string) (string, string, string) { return "DELETE", "/aas/v1/users/" + id, "" }},
		{"removing a role from the user", func(id, role string) (string, string, string) {
			return "DELETE", "/aas/v1/users/" + id + "/roles/" + role, ""
		}},
		{"changing the user's password", func(id, _ string) (string, string, string) {
			return "PUT", "/aas/v1/users/" + id, `{"password":"a brand new long password"}`
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name+" refuses the user's tokens", func(t *testing.T) {
			name := "mallory" + string(rune('a'+i))
			id, tok := h.newUser(t, admin, name, []string{"custom_claims:create:*", "users:search:*"})
			status, minted := h.mint(t, tok, id, nil, []map[string]any{{"service": "AAS", "rules": []string{"custom_claims:create:*", "users:search:*"}}})
			if status != http.StatusOK {
				t.Fatalf("mint: %d %s", status, minted)
			}
			var roles []struct{ ID string }
			_, b := h.do(t, "GET", "/aas/v1/users/"+id+"/roles", admin, "", nil)
			if err := json.Unmarshal(b, &roles); err != nil || len(roles) != 1 {
				t.Fatalf("roles of %s: %s (%v)", name, b, err)
			}
			for _, tk := range []string{tok, minted} {
				if status, body := h.do(t, "GET", "/aas/v1/users", tk, "", nil); status != http.StatusOK {
					t.Fatalf("before: %d %s", status, body)
				}
			}
			method, path, body := tt.revoke(id, roles[0].ID)
			ct := ""
			if body != "" {
				ct = ctJSON
			}
			if status, out := h.do(t, method, path, admin, ct, []byte(body)); status/100 != 2 {
				t.Fatalf("%s %s: %d %s", method, path, status, out)
			}
			revoked := time.Now()
			for which, tk := range map[string]string{"login token": tok, "custom claims token": minted} {
				for {
					status, out := h.do(t, "GET", "/aas/v1/users", tk, "", nil)
					if status == http.StatusUnauthorized {
						break
					}
					if time.Since(revoked) > 5*time.Second {
						t.Fatalf("the %s still works 5 s after revocation: %d %s", which, status, out)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			if status, out := h.mint(t, minted, id, nil, nil); status != http.StatusUnauthorized {
				t.Errorf("minting with the revoked custom claims token: %d %s, want 401", status, out)
			}
		})
	}
}

// TestMetricsNeedAPermissionOnTheAPIPort plays issue 11 point 5: /metrics
// answered anyone.
func TestMetricsNeedAPermissionOnTheAPIPort(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	if status, body := h.do(t, "GET", "/metrics", "", "", nil); status != http.StatusUnauthorized || strings.Contains(string(body), "tc_hvs") {
		t.Fatalf("unauthenticated GET /metrics: %d %.200s, want 401", status, body)
	}
	_, reader := h.newUser(t, admin, "reader", []string{"users:search:*"})
	if status, _ := h.do(t, "GET", "/metrics", reader, "", nil); status != http.StatusForbidden {
		t.Fatalf("GET /metrics without HVS:metrics:retrieve:*: %d, want 403", status)
	}
	if status, body := h.do(t, "GET", "/metrics", admin, "", nil); status != http.StatusOK || !strings.Contains(string(body), "tc_nats_connections") {
		t.Fatalf("GET /metrics as admin: %d %.200s", status, body)
	}
}

func TestTheMetricsListenerServesMetricsOnly(t *testing.T) {
	h := startVerifier(t, t.TempDir(), func(c *verifier.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	addr := h.v.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	get := func(path string) (int, string) {
		req, err := http.NewRequestWithContext(context.Background(), "GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/metrics"); status != http.StatusOK || !strings.Contains(body, "tc_nats_connections") {
		t.Fatalf("GET /metrics on the metrics listener: %d %.200s", status, body)
	}
	for _, path := range []string{"/aas/v1/users", "/hvs/v2/hosts", "/openapi.json"} {
		if status, _ := get(path); status != http.StatusNotFound {
			t.Errorf("GET %s on the metrics listener: %d, want 404", path, status)
		}
	}
	if status, _ := h.do(t, "GET", "/metrics", "", "", nil); status != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET /metrics on the API port: %d, want 401", status)
	}
}

// An operator sees when the verifier waits for database connections: the
// connection pools' figures are served, per pool.
func TestMetricsShowTheDatabasePools(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)
	status, body := h.do(t, "GET", "/metrics", admin, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics as admin: %d %.200s", status, body)
	}
	for _, pool := range []string{"writer", "readers"} {
		for _, metric := range []string{"go_sql_wait_duration_seconds_total", "go_sql_open_connections", "go_sql_max_open_connections"} {
			if want := metric + `{db_name="` + pool + `"}`; !strings.Contains(string(body), want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
	}
}
