package enroll

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/api"
)

// permissionHeader is set by passThrough to the permission a route required.
const permissionHeader = "X-Test-Permission"

// passThrough is a require that lets every request through and records the
// permission in a response header.
func passThrough(service, rule string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(permissionHeader, service+" "+rule)
			next.ServeHTTP(w, r)
		})
	}
}

func newMux(e *Enroller) *http.ServeMux {
	mux := http.NewServeMux()
	e.Register(mux, passThrough)
	return mux
}

// do sends a request to mux and returns the response.
func do(t *testing.T, mux http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func pemPublicKey(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func endorsementBody(t *testing.T, uuid, keyPEM string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"hardware_uuid": uuid, "description": "lab node", "ek_public_key": keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutesDeclareTheirPermissions(t *testing.T) {
	e := newEnroller(t, Config{}, openStore(t), failingAgent{err: errors.New("unused")})
	mux := newMux(e)
	want := map[string]string{
		"POST /hvs/v2/tpm-endorsements":     "tpm_endorsements:create:*",
		"GET /hvs/v2/tpm-endorsements":      "tpm_endorsements:search:*",
		"GET /hvs/v2/tpm-endorsements/x":    "tpm_endorsements:retrieve:*",
		"DELETE /hvs/v2/tpm-endorsements/x": "tpm_endorsements:delete:*",
		"POST /hvs/v2/aik-enrollments":      "aik_enrollments:create:*",
		"GET /hvs/v2/aik-enrollments/H1":    "aik_enrollments:retrieve:*",
	}
	if got := len(Routes()); got != len(want) {
		t.Fatalf("Routes() has %d routes, want %d", got, len(want))
	}
	for _, r := range Routes() {
		if r.Service != Service {
			t.Errorf("route %s %s is in service %q, want %q", r.Method, r.Pattern, r.Service, Service)
		}
	}
	for req, perm := range want {
		method, path, _ := strings.Cut(req, " ")
		rec := do(t, mux, method, path, "application/json", "{}")
		if got := rec.Header().Get(permissionHeader); got != Service+" "+perm {
			t.Errorf("%s required %q, want %q", req, got, Service+" "+perm)
		}
	}
}

func TestEndorsementRoutes(t *testing.T) {
	e := newEnroller(t, Config{}, openStore(t), failingAgent{err: errors.New("unused")})
	mux := newMux(e)
	keyPEM := pemPublicKey(t, &testca.NewKey(t).PublicKey)
	const uuid = "4C4C4544-0042-3510-8052-B3C04F4E3332"

	rec := do(t, mux, http.MethodPost, "/hvs/v2/tpm-endorsements", "application/json", endorsementBody(t, uuid, keyPEM))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: status %d, body %s", rec.Code, rec.Body)
	}
	var created Endorsement
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	_, digest, err := ParseEKPublicKeyPEM([]byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.HardwareUUID != strings.ToLower(uuid) || created.EKPublicKeySHA256 != digest ||
		created.Description != "lab node" || created.Created.IsZero() {
		t.Fatalf("created = %+v", created)
	}
	if loc := rec.Header().Get("Location"); loc != "/hvs/v2/tpm-endorsements/"+created.ID {
		t.Errorf("Location = %q", loc)
	}

	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		ctype      string
		body       string
		wantStatus int
		wantInBody string
	}{
		{"malformed json is a bad request", "POST", "/hvs/v2/tpm-endorsements", "application/json", `{"hardware_uuid":`, 400, "malformed"},
		{"an unknown field is a bad request", "POST", "/hvs/v2/tpm-endorsements", "application/json",
			`{"hardware_uuid":"` + uuid + `","description":"","ek_public_key":"","revoked":false}`, 400, "unknown field"},
		{"a body that is not json is an unsupported media type", "POST", "/hvs/v2/tpm-endorsements", "text/plain", endorsementBody(t, uuid, keyPEM), 415, "content type"},
		{"a key that is not pem is a bad request", "POST", "/hvs/v2/tpm-endorsements", "application/json", endorsementBody(t, uuid, "MFkwEwYHKoZIzj0CAQ"), 400, "PUBLIC KEY"},
		{"a certificate instead of a key is a bad request", "POST", "/hvs/v2/tpm-endorsements", "application/json",
			endorsementBody(t, uuid, strings.ReplaceAll(keyPEM, "PUBLIC KEY", "CERTIFICATE")), 400, "PUBLIC KEY"},
		{"a small rsa key is a bad request", "POST", "/hvs/v2/tpm-endorsements", "application/json", endorsementBody(t, uuid, pemPublicKey(t, &smallRSA.PublicKey)), 400, "too small"},
		{"a hardware uuid that is no uuid is a bad request", "POST", "/hvs/v2/tpm-endorsements", "application/json", endorsementBody(t, "node-7", keyPEM), 400, "hardware_uuid"},
		{"a key registered twice is a conflict", "POST", "/hvs/v2/tpm-endorsements", "application/json", endorsementBody(t, uuid, keyPEM), 409, "registered already"},
		{"the list holds the registration", "GET", "/hvs/v2/tpm-endorsements", "", "", 200, created.ID},
		{"a registration is found by id", "GET", "/hvs/v2/tpm-endorsements/" + created.ID, "", "", 200, digest},
		{"an unknown id is not found", "GET", "/hvs/v2/tpm-endorsements/nope", "", "", 404, "nope"},
		{"an unknown id cannot be deleted", "DELETE", "/hvs/v2/tpm-endorsements/nope", "", "", 404, "nope"},
		{"a registration is deleted", "DELETE", "/hvs/v2/tpm-endorsements/" + created.ID, "", "", 204, ""},
		{"a deleted registration is gone", "GET", "/hvs/v2/tpm-endorsements/" + created.ID, "", "", 404, "no tpm endorsement"},
		{"an empty list is an empty array", "GET", "/hvs/v2/tpm-endorsements", "", "", 200, `"tpm_endorsements": []`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, mux, tt.method, tt.path, tt.ctype, tt.body)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantInBody) {
				t.Fatalf("status %d, body %s; want %d with %q", rec.Code, rec.Body, tt.wantStatus, tt.wantInBody)
			}
		})
	}
}

func TestEnrollmentRoutesOnAgentFailures(t *testing.T) {
	tests := []struct {
		name       string
		agentErr   error
		body       string
		wantStatus int
		wantInBody string
	}{
		{"an unknown field is a bad request", nil, `{"host_id":"H1","force":true}`, 400, "unknown field"},
		{"a host id that is no subject token is a bad request", nil, `{"host_id":"a.b"}`, 400, "host_id"},
		{"an offline host is unavailable", &agentclient.RequestError{HostID: "H1", Kind: agentclient.ErrNoResponders}, `{"host_id":"H1"}`, 503, "no trust agent"},
		{"a silent agent is a gateway timeout", &agentclient.RequestError{HostID: "H1", Kind: agentclient.ErrTimeout}, `{"host_id":"H1"}`, 504, "did not answer"},
		{"a garbled reply is unavailable", &agentclient.RequestError{HostID: "H1", Kind: agentclient.ErrBadReply}, `{"host_id":"H1"}`, 503, "malformed reply"},
		{"an agent without an ak is unavailable with its code", &agentclient.AgentError{HostID: "H1", Code: "AIK_NOT_PROVISIONED", Message: "no ak"}, `{"host_id":"H1"}`, 503, "AIK_NOT_PROVISIONED"},
		{"an unexpected failure is an internal error", errors.New("boom"), `{"host_id":"H1"}`, 500, "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnroller(t, Config{}, openStore(t), failingAgent{err: tt.agentErr})
			rec := do(t, newMux(e), http.MethodPost, "/hvs/v2/aik-enrollments", "application/json", tt.body)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantInBody) {
				t.Fatalf("status %d, body %s; want %d with %q", rec.Code, rec.Body, tt.wantStatus, tt.wantInBody)
			}
		})
	}
	t.Run("a host without enrollment is not found", func(t *testing.T) {
		e := newEnroller(t, Config{}, openStore(t), failingAgent{})
		rec := do(t, newMux(e), http.MethodGet, "/hvs/v2/aik-enrollments/H1", "", "")
		if rec.Code != http.StatusNotFound {
			t.Fatalf("status %d, body %s; want 404", rec.Code, rec.Body)
		}
	})
	t.Run("an ak enrolled for another host is a conflict", func(t *testing.T) {
		if got := api.Status(enrollError("H1", fmt.Errorf("host %q: %w", "H1", ErrAKInUse))); got != http.StatusConflict {
			t.Fatalf("status %d, want 409", got)
		}
	})
}

// TestHTTPEnrollmentOfARegisteredEK drives a whole enrollment through the
// API: a real agent on a swtpm without EK certificate is refused, its EK is
// registered from its PEM public key, and then it is enrolled.
func TestHTTPEnrollmentOfARegisteredEK(t *testing.T) {
	b := agentclienttest.NewBus(t)
	n := startNode(t, b, "H3", tpmtest.New(t))
	e := newEnroller(t, Config{AllowRegisteredEKs: true}, openStore(t), n.client)
	mux := newMux(e)

	rec := do(t, mux, http.MethodPost, "/hvs/v2/aik-enrollments", "application/json", `{"host_id":"H3"}`)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), EKNotRegistered) {
		t.Fatalf("enroll before registration: status %d, body %s; want 403 %s", rec.Code, rec.Body, EKNotRegistered)
	}

	info, err := n.client.AKInfo(context.Background(), "H3")
	if err != nil {
		t.Fatal(err)
	}
	ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](info.EKPublic)
	if err != nil {
		t.Fatal(err)
	}
	ekKey, err := tpm2.Pub(*ekPub)
	if err != nil {
		t.Fatal(err)
	}
	rec = do(t, mux, http.MethodPost, "/hvs/v2/tpm-endorsements", "application/json",
		endorsementBody(t, "00000000-0000-4000-8000-000000000003", pemPublicKey(t, ekKey)))
	if rec.Code != http.StatusCreated {
		t.Fatalf("register ek: status %d, body %s", rec.Code, rec.Body)
	}

	rec = do(t, mux, http.MethodPost, "/hvs/v2/aik-enrollments", "application/json", `{"host_id":"H3"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("enroll: status %d, body %s", rec.Code, rec.Body)
	}
	var enr restapi.AKEnrollment
	if err := json.Unmarshal(rec.Body.Bytes(), &enr); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(enr.AKCertificate))
	if block == nil {
		t.Fatalf("ak_certificate is no PEM: %q", enr.AKCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(e.PrivacyCARoot()); err != nil || cert.Subject.CommonName != "H3" {
		t.Fatalf("ak certificate CN %q, signature by the privacy CA: %v", cert.Subject.CommonName, err)
	}
	if enr.HostID != "H3" || enr.AKName == "" || time.Since(enr.Created) > time.Minute {
		t.Fatalf("enrollment = %+v", enr)
	}

	rec = do(t, mux, http.MethodGet, "/hvs/v2/aik-enrollments/H3", "", "")
	var got restapi.AKEnrollment
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.AKCertificate != enr.AKCertificate || got.AKName != enr.AKName {
		t.Fatalf("get enrollment: status %d, body %s", rec.Code, rec.Body)
	}
}
