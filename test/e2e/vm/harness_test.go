package vm_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/test/e2e/vm"
)

const adminPassword = "correct horse battery staple"

// harness is an in-process verifier (SQLite, embedded NATS on loopback) and
// an HTTPS client pinned to its CMS root, as an operator bootstraps one.
type harness struct {
	v       *verifier.Verifier
	base    string
	client  *http.Client
	roots   *x509.CertPool
	rootPEM []byte
	admin   string
}

func startVerifier(t *testing.T) *harness {
	t.Helper()
	ekRoots := x509.NewCertPool()
	for _, f := range []string{vm.LocalCACert, vm.LocalCARootCert} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("swtpm local CA: %v", err)
		}
		ekRoots.AppendCertsFromPEM(b)
	}
	dataDir := t.TempDir()
	if err := os.Chmod(dataDir, 0o700); err != nil { // the verifier refuses a data directory others may read
		t.Fatal(err)
	}
	cfg := aas.DefaultConfig()
	cfg.AdminPassword = adminPassword
	cfg.Argon2 = aas.Argon2Params{Memory: 1024, Time: 1, Threads: 1}
	vcfg := verifier.Config{
		Listen:     "127.0.0.1:0",
		Database:   "sqlite:" + filepath.Join(dataDir, "verifier.db"),
		DataDir:    dataDir,
		ServerName: "localhost",
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		AAS:        cfg,
		NATS:       verifier.NATSConfig{Host: "127.0.0.1"},
	}
	vcfg.Enrollment.EKRoots = ekRoots
	// SHA-256 only: the Debian cloud kernel builds sha512 as a module, so
	// IMA, which starts before any module loads, extends the SHA-384 bank
	// of PCR 10 with zero-padded SHA-1 template digests, which
	// internal/appraise does not model (it reports IMAReplay).
	vcfg.HVS.Banks = []string{"SHA256"}
	// The attestation manager's clock jumps hours ahead to make its
	// schedule due (manager_test.go); reports must outlive those jumps.
	vcfg.HVS.ReportValidity = 1000 * time.Hour
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("TC_E2E_VERBOSE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	v, err := verifier.New(ctx, vcfg, logger)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := v.Listen(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("verifier run: %v", err)
		}
	})
	select {
	case <-v.Ready():
	case err := <-done:
		t.Fatalf("verifier stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("verifier not ready in 60s")
	}
	base := "https://" + v.Addr()
	root, err := cms.FetchRootPinned(ctx, base, v.CA().RootSHA384())
	if err != nil {
		t.Fatalf("pinned bootstrap: %v", err)
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	roots := x509.NewCertPool()
	roots.AddCert(root)
	h := &harness{
		v: v, base: base, roots: roots, rootPEM: rootPEM,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}}},
	}
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": adminPassword})
	status, tok := h.do(t, "POST", "/aas/v1/token", "application/json", body)
	if status != http.StatusOK {
		t.Fatalf("login: %d %s", status, tok)
	}
	h.admin = string(tok)
	return h
}

func (h *harness) do(t *testing.T, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if h.admin != "" {
		req.Header.Set("Authorization", "Bearer "+h.admin)
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

// mustDo fails the test unless the answer has status want.
func (h *harness) mustDo(t *testing.T, want int, method, path string, body []byte) []byte {
	t.Helper()
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	status, b := h.do(t, method, path, ct, body)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	return b
}

// report asks HVS for a new report of host and checks that its JWS form
// verifies offline against the CMS root alone and says the same.
func (h *harness) report(t *testing.T, host string) *report.Report {
	t.Helper()
	body := h.mustDo(t, http.StatusCreated, "POST", "/hvs/v2/reports", []byte(`{"host_id":"`+host+`"}`))
	var rep report.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	jws := h.mustDo(t, http.StatusOK, "GET", "/hvs/v2/reports/"+rep.ID+"?format=jws", nil)
	signed, err := report.Verify(string(jws), h.roots, time.Now())
	if err != nil {
		t.Fatalf("the report does not verify offline: %v", err)
	}
	if signed.ID != rep.ID || signed.Trusted() != rep.Trusted() {
		t.Fatalf("signed report %s/%v differs from the served one %s/%v", signed.ID, signed.Trusted(), rep.ID, rep.Trusted())
	}
	return &rep
}
