package cms

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// withClaims is the test's stand-in for the AAS middleware: it attaches the
// given claims (none when nil).
func withClaims(c *auth.Claims) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c != nil {
				r = r.WithContext(auth.WithClaims(r.Context(), c))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// startServer serves h over TLS 1.3 with a certificate issued by ca for
// 127.0.0.1, and returns a client that trusts only clientRoot.
func startServer(t *testing.T, ca *CA, h http.Handler, clientRoots *x509.CertPool) (*httptest.Server, *http.Client) {
	t.Helper()
	cert, err := ca.ServerCertificate("cms", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed bootstrap handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: clientRoots},
	}}
	t.Cleanup(client.CloseIdleConnections)
	return srv, client
}

func newCMSServer(t *testing.T, ca *CA, claims *auth.Claims) (*httptest.Server, *http.Client) {
	mux := http.NewServeMux()
	ca.Routes(mux, withClaims(claims))
	return startServer(t, ca, mux, ca.RootPool())
}

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCACertificatesServesEachIssuingCA(t *testing.T) {
	ca := newTestCA(t)
	srv, client := newCMSServer(t, ca, nil)
	tests := []struct {
		name       string
		query      string
		wantStatus int
		want       string // issuing CA whose certificate is served, or text in the error
	}{
		{"no issuingCa serves the root", "", http.StatusOK, IssuingRoot},
		{"issuingCa=root serves the root", "?issuingCa=root", http.StatusOK, IssuingRoot},
		{"issuingCa=TLS serves the TLS intermediate", "?issuingCa=TLS", http.StatusOK, TypeTLS},
		{"issuingCa=TLS-Client serves the TLS client intermediate", "?issuingCa=TLS-Client", http.StatusOK, TypeTLSClient},
		{"issuingCa=Signing serves the signing intermediate", "?issuingCa=Signing", http.StatusOK, TypeSigning},
		{"an unknown issuingCa is refused, naming the allowed values", "?issuingCa=Intermediate", http.StatusBadRequest, "allowed: root, TLS, TLS-Client, Signing"},
		{"an empty issuingCa is refused, naming the allowed values", "?issuingCa=", http.StatusBadRequest, "allowed: root, TLS, TLS-Client, Signing"},
		{"a repeated issuingCa is refused", "?issuingCa=root&issuingCa=TLS", http.StatusBadRequest, "once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, srv.URL+PathCACertificates+tt.query, "", nil)
			certs, ok := pemCall(t, client, req, tt.wantStatus, http.StatusOK, tt.want, 1)
			if !ok {
				return
			}
			want, _ := ca.CACertificate(tt.want)
			if !certs[0].Equal(want) {
				t.Fatalf("served %q, want %q", certs[0].Subject, want.Subject)
			}
		})
	}
}

func TestCertificatesSignsOnlyWhatACertApproverRoleAllows(t *testing.T) {
	ca := newTestCA(t)
	key := newP384(t)
	approver := func(ctx string) auth.Role { return auth.Role{Service: "CMS", Name: "CertApprover", Context: ctx} }
	agentRole := approver("CN=agent;SAN=node1.example,10.0.0.7;certType=TLS")
	agentClaims := &auth.Claims{Subject: "installer", Roles: []auth.Role{agentRole}}
	ips := []net.IP{net.ParseIP("10.0.0.7")}
	goodCSR := csrPEM(t, key, "agent", []string{"node1.example"}, ips)
	badSig := pemTamper(t, goodCSR)

	tests := []struct {
		name        string
		claims      *auth.Claims
		query       string
		contentType string
		body        []byte
		wantStatus  int
		wantError   string
	}{
		{"a CSR that a role allows exactly is signed", agentClaims, "?certType=TLS", PEMContentType,
			goodCSR, http.StatusCreated, ""},
		{"a CSR whose DNS name differs only in case is signed", agentClaims, "?certType=TLS", PEMContentType,
			csrPEM(t, key, "agent", []string{"NODE1.example"}, ips), http.StatusCreated, ""},
		{"a CSR allowed by the second of two roles is signed",
			&auth.Claims{Roles: []auth.Role{approver("CN=x;certType=Signing"), agentRole}}, "?certType=TLS", PEMContentType,
			goodCSR, http.StatusCreated, ""},
		{"a CSR with another common name is forbidden, naming it", agentClaims, "?certType=TLS", PEMContentType,
			csrPEM(t, key, "hvs", []string{"node1.example"}, ips), http.StatusForbidden,
			`CSR common name "hvs" is not allowed by the token (allowed: "agent")`},
		{"a CSR with an extra SAN is forbidden, naming it", agentClaims, "?certType=TLS", PEMContentType,
			csrPEM(t, key, "agent", []string{"node1.example", "evil.example"}, ips), http.StatusForbidden,
			`"evil.example" are not allowed by the token`},
		{"a CSR missing a SAN is forbidden, naming it", agentClaims, "?certType=TLS", PEMContentType,
			csrPEM(t, key, "agent", []string{"node1.example"}, nil), http.StatusForbidden,
			`lacks subject alternative names "10.0.0.7"`},
		{"a CSR for another certificate type is forbidden, naming it", agentClaims, "?certType=TLS-Client", PEMContentType,
			goodCSR, http.StatusForbidden, `certificate type "TLS-Client" is not allowed by the token (allowed: "TLS")`},
		{"a caller without a CertApprover role is forbidden",
			&auth.Claims{Roles: []auth.Role{{Service: "CMS", Name: "Administrator", Context: agentRole.Context}}},
			"?certType=TLS", PEMContentType, goodCSR, http.StatusForbidden, "no CMS:CertApprover role"},
		{"a role with a malformed context grants nothing",
			&auth.Claims{Roles: []auth.Role{approver("CN=agent;SAN=node1.example,10.0.0.7;certType=TLS;O=x")}},
			"?certType=TLS", PEMContentType, goodCSR, http.StatusForbidden, "grants nothing"},
		{"a request without claims is unauthenticated", nil, "?certType=TLS", PEMContentType,
			goodCSR, http.StatusUnauthorized, "authentication required"},
		{"a CSR with a bad signature is a bad request", agentClaims, "?certType=TLS", PEMContentType,
			badSig, http.StatusBadRequest, "signature is invalid"},
		{"a body that is not PEM is a bad request", agentClaims, "?certType=TLS", PEMContentType,
			[]byte("hello"), http.StatusBadRequest, "not PEM"},
		{"a PEM block of another type is a bad request", agentClaims, "?certType=TLS", PEMContentType,
			EncodeChainPEM([]*x509.Certificate{ca.Root()}), http.StatusBadRequest, `"CERTIFICATE"`},
		{"a body of two CSRs is a bad request", agentClaims, "?certType=TLS", PEMContentType,
			append(append([]byte(nil), goodCSR...), goodCSR...), http.StatusBadRequest, "exactly one PEM block"},
		{"another content type is unsupported", agentClaims, "?certType=TLS", "application/json",
			goodCSR, http.StatusUnsupportedMediaType, PEMContentType},
		{"an oversized body is too large", agentClaims, "?certType=TLS", PEMContentType,
			bytes.Repeat([]byte("A"), MaxCSRBytes+1), http.StatusRequestEntityTooLarge, "exceeds"},
		{"a missing certType is a bad request naming the allowed values", agentClaims, "", PEMContentType,
			goodCSR, http.StatusBadRequest, "allowed: TLS, TLS-Client, Signing"},
		{"an unknown certType is a bad request naming the allowed values", agentClaims, "?certType=root", PEMContentType,
			goodCSR, http.StatusBadRequest, "allowed: TLS, TLS-Client, Signing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, client := newCMSServer(t, ca, tt.claims)
			req := newRequest(t, http.MethodPost, srv.URL+PathCertificates+tt.query, tt.contentType, tt.body)
			// The chain is the leaf, the intermediate and the root.
			chain, ok := pemCall(t, client, req, tt.wantStatus, http.StatusCreated, tt.wantError, 3)
			if !ok {
				return
			}
			if !key.PublicKey.Equal(chain[0].PublicKey) {
				t.Fatal("the leaf does not certify the CSR's key")
			}
			if err := verifyAs(ca, chain, x509.ExtKeyUsageServerAuth, "node1.example"); err != nil {
				t.Fatalf("the signed chain does not verify: %v", err)
			}
		})
	}
}

// pemTamper flips the last byte of the DER in a PEM block: for a CSR that
// is inside the signature, so the CSR parses but its signature fails.
func pemTamper(t testing.TB, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	der := append([]byte(nil), block.Bytes...)
	der[len(der)-1] ^= 0x01
	if _, err := x509.ParseCertificateRequest(der); err != nil {
		t.Fatalf("the tampered CSR no longer parses: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
}

func TestRoutesNeedsAnAuthenticationMiddleware(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Routes without a middleware did not panic")
		}
	}()
	newTestCA(t).Routes(http.NewServeMux(), nil)
}

func FuzzParseCSR(f *testing.F) {
	key := newP384(f)
	good := csrPEM(f, key, "agent", []string{"node1.example"}, []net.IP{net.ParseIP("10.0.0.7")})
	f.Add(good)
	f.Add(pemTamper(f, good))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("garbage"))
	approval := Approval{CN: "agent", SANs: []string{"node1.example", "10.0.0.7"}, CertType: TypeTLS}
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := ParseCSR(b)
		if err != nil {
			var e *api.Error
			if !errors.As(err, &e) || e.Kind != api.KindBadRequest {
				t.Fatalf("ParseCSR error %v is not a bad request", err)
			}
			return
		}
		if csr.CheckSignature() != nil || checkKey(csr.PublicKey) != nil {
			t.Fatal("ParseCSR accepted a CSR with a bad signature or key")
		}
		_ = approval.Allows(Request{CN: csr.Subject.CommonName, DNSNames: csr.DNSNames, IPs: csr.IPAddresses, CertType: TypeTLS})
	})
}

// newRequest makes a request under the test's context; contentType is
// set unless it is empty.
func newRequest(t *testing.T, method, url, contentType string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// pemCall sends req and checks that the reply has wantStatus. When that is
// not okStatus, it checks that the error body contains wantError and
// returns false; else it checks the PEM content type and that the body
// holds wantCerts certificates, and returns them.
func pemCall(t *testing.T, client *http.Client, req *http.Request, wantStatus, okStatus int, wantError string, wantCerts int) ([]*x509.Certificate, bool) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != wantStatus {
		t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, wantStatus)
	}
	if wantStatus != okStatus {
		var eb api.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || !strings.Contains(eb.Error, wantError) {
			t.Fatalf("error body %s (%v), want one containing %q", body, err, wantError)
		}
		return nil, false
	}
	if ct := resp.Header.Get("Content-Type"); ct != PEMContentType {
		t.Fatalf("content type %q, want %s", ct, PEMContentType)
	}
	certs, err := parseCertsPEM(body)
	if err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if len(certs) != wantCerts {
		t.Fatalf("body holds %d certificates, want %d", len(certs), wantCerts)
	}
	return certs, true
}
