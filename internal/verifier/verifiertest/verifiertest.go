// Package verifiertest runs a whole verifier in process for tests: SQLite in
// a temp dir, embedded NATS and HTTPS on loopback, an admin user, and a
// client that trusts the CMS root only, bootstrapped by its pinned digest as
// an operator would.
package verifiertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/cms"
)

// AdminPassword is the first administrator's password.
const AdminPassword = "correct horse battery staple"

// Verifier is a running verifier.
type Verifier struct {
	*verifier.Verifier
	// Base is the HTTPS base URL.
	Base string
	// Roots holds the CMS root only.
	Roots *x509.CertPool
	// Client speaks TLS 1.3 to the verifier, trusting Roots only.
	Client  *http.Client
	DataDir string

	cancel  context.CancelFunc
	done    chan error
	stopped bool
	t       testing.TB
}

// Start runs a verifier until the test ends (or Stop). opts adjust the
// configuration before it starts (EK roots, HVS settings, ...).
func Start(t testing.TB, dataDir string, opts ...func(*verifier.Config)) *Verifier {
	t.Helper()
	// t.TempDir is 0755; the verifier refuses a data directory others may read.
	if err := os.Chmod(dataDir, 0o700); err != nil { //nolint:gosec // G302: a directory needs its x bit; 0700 is owner-only
		t.Fatal(err)
	}
	cfg := verifier.LoopbackConfig(dataDir)
	cfg.AAS.AdminPassword = AdminPassword
	cfg.AAS.Argon2 = aas.Argon2Params{Memory: 1024, Time: 1, Threads: 1} // fast logins in tests
	for _, o := range opts {
		o(&cfg)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("TC_E2E_VERBOSE") != "" { // the verifier's log on stderr, for debugging end-to-end tests
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	v, err := verifier.New(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := v.Listen(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	h := &Verifier{Verifier: v, DataDir: dataDir, cancel: cancel, done: make(chan error, 1), t: t}
	go func() { h.done <- v.Run(ctx) }()
	select {
	case <-v.Ready():
	case err := <-h.done:
		cancel()
		t.Fatalf("verifier stopped: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("verifier not ready in 60s")
	}
	t.Cleanup(h.Stop)
	h.Base = "https://" + v.Addr()
	root, err := cms.FetchRootPinned(ctx, h.Base, v.CA().RootSHA384())
	if err != nil {
		t.Fatalf("pinned bootstrap: %v", err)
	}
	h.Roots = x509.NewCertPool()
	h.Roots.AddCert(root)
	h.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: h.Roots}}}
	return h
}

// Do sends a request to the verifier, with token as the bearer token and
// contentType as the body's type when they are not empty, and returns the
// answer's status and body.
func (h *Verifier) Do(t testing.TB, method, path, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.Base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// DoJSON is Do with in, when not nil, sent as a JSON body.
func (h *Verifier) DoJSON(t testing.TB, method, path, token string, in any) (int, []byte) {
	t.Helper()
	if in == nil {
		return h.Do(t, method, path, token, "", nil)
	}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return h.Do(t, method, path, token, "application/json", body)
}

// Login returns a token of user, or fails the test.
func (h *Verifier) Login(t testing.TB, user, password string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"username": user, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	status, tok := h.Do(t, http.MethodPost, "/aas/v1/token", "", "application/json", body)
	if status != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, status, tok)
	}
	return string(tok)
}

// Stop stops the verifier and reports its run error; calling it twice is fine.
func (h *Verifier) Stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("verifier run: %v", err)
	}
}
