package tcctl_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
)

// startResigningProxy stands between tcctl and the verifier with a TLS
// certificate of the CMS and re-signs every signed report it relays with
// signer, keeping its content.
func startResigningProxy(t *testing.T, h *harness, signer *report.Signer) string {
	t.Helper()
	target, err := url.Parse(h.base)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(h.v.CA().Root())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}}
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Query().Get("format") != "jws" || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		parts := strings.Split(strings.TrimSpace(string(b)), ".")
		if len(parts) != 3 {
			t.Errorf("the verifier served a JWS of %d parts", len(parts))
			return nil
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return err
		}
		var r report.Report
		if err := json.Unmarshal(payload, &r); err != nil {
			return err
		}
		forged, err := signer.Sign(&r)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(strings.NewReader(forged))
		resp.ContentLength = int64(len(forged))
		resp.Header.Set("Content-Length", strconv.Itoa(len(forged)))
		return nil
	}
	cert, err := h.v.CA().ServerCertificate("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rp)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the pinned bootstrap's first handshake fails on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// The attack of issue 11 on tcctl: a report re-signed with a Signing
// certificate that the verifier's own CMS signed from a CSR (what an
// administrator or a CMS:CertApprover can obtain) fails --verify.
func TestReportGetVerifyRefusesAReportSignedByACMSIssuedSigningCert(t *testing.T) {
	h := startVerifier(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: signerid.LeafCommonName}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := h.v.CA().SignCSR(csr, cms.TypeSigning)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL := startResigningProxy(t, h, signer)

	direct := newCLI(t)
	direct.must(t, "login", "--url", h.base, "--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword))
	direct.must(t, "host", "register", "--host-id", "edge-3", "--name", "edge-three")
	var created struct {
		ID string `json:"id"`
	}
	out := direct.must(t, "report", "create", "--host-id", "edge-3", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("report create: %v:\n%s", err, out)
	}
	// The verifier's own signature passes, so the refusal below is for the
	// certificate alone.
	if out := direct.must(t, "report", "get", created.ID, "--verify"); !strings.Contains(out, "signed by CN="+signerid.LeafCommonName) {
		t.Fatalf("the verifier's report:\n%s", out)
	}

	c := newCLI(t)
	c.must(t, "login", "--url", proxyURL, "--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword))
	for _, format := range []string{"table", "jws"} {
		out, errOut, err := c.run("report", "get", created.ID, "--verify", "-o", format)
		if err == nil || !strings.Contains(err.Error(), "signing certificate is not trusted") {
			t.Errorf("-o %s: a re-signed report: error %v, want the signing certificate refused", format, err)
		}
		if strings.Contains(out+errOut, "signature: valid") {
			t.Errorf("-o %s: a re-signed report was called valid:\n%s%s", format, out, errOut)
		}
	}
}
