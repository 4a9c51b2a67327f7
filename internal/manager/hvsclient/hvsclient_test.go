package hvsclient

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"

	"trustedcompute.io/tc/internal/clock"
)

const (
	testUser     = "attestation-manager"
	testPassword = "s3cret-pw"
)

// fakeVerifier mimics the AAS token route and the HVS routes the client uses.
type fakeVerifier struct {
	t   *testing.T
	now func() time.Time

	mu         sync.Mutex
	logins     int
	refused    int
	tokenLife  time.Duration
	valid      map[string]bool
	hosts      map[string]restapi.Host // by name
	flavors    map[string]int          // host id -> automatic flavors
	reports    map[string][]report.Report
	rebaseline map[string][]string
	fail       map[string]int // "METHOD path" -> status to answer
	seq        int
	// signer, the verifier's identity from ca, signs the reports served
	// with ?format=jws, after signedAs when set (signed_test.go).
	ca       *cms.CA
	signer   *report.Signer
	signedAs func(report.Report) report.Report
	// jsonOnly answers POST /hvs/v2/reports in JSON whatever the format
	// asked, as verifiers did before they answered with the signed form.
	jsonOnly bool
	// signedGets counts the GET /hvs/v2/reports/{id}?format=jws.
	signedGets int
}

func newFakeVerifier(t *testing.T, now func() time.Time) *fakeVerifier {
	return &fakeVerifier{
		t: t, now: now, tokenLife: time.Hour,
		valid: map[string]bool{}, hosts: map[string]restapi.Host{}, flavors: map[string]int{},
		reports: map[string][]report.Report{}, rebaseline: map[string][]string{}, fail: map[string]int{},
	}
}

// decodeStrict decodes like the verifier: unknown fields are refused.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

func (f *fakeVerifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.fail[r.Method+" "+r.URL.Path]; ok {
		writeErr(w, s, "injected failure")
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == PathToken {
		var req struct{ Username, Password string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Username != testUser || req.Password != testPassword {
			f.refused++
			writeErr(w, http.StatusUnauthorized, "invalid credentials")
			return
		}
		f.logins++
		iat := f.now()
		claims, _ := json.Marshal(map[string]any{"sub": req.Username, "iat": iat.Unix(), "exp": iat.Add(f.tokenLife).Unix()})
		tok := "eyJhbGciOiJFUzM4NCJ9." + base64.RawURLEncoding.EncodeToString(claims) + fmt.Sprintf(".sig%d", f.logins)
		f.valid[tok] = true
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(tok))
		return
	}
	if !f.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
		writeErr(w, http.StatusUnauthorized, "invalid token")
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
		writeErr(w, http.StatusUnsupportedMediaType, "want application/json")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == PathHosts:
		var h struct {
			HostName         string   `json:"host_name"`
			ConnectionString string   `json:"connection_string"`
			Description      string   `json:"description"`
			FlavorGroupNames []string `json:"flavorgroup_names"`
		}
		if err := decodeStrict(r, &h); err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		id := strings.TrimPrefix(h.ConnectionString, "nats://")
		for _, old := range f.hosts {
			if old.HostName == h.HostName || old.ID == id {
				writeErr(w, http.StatusConflict, "host already registered")
				return
			}
		}
		host := restapi.Host{ID: id, HostName: h.HostName, ConnectionString: h.ConnectionString, FlavorGroupNames: h.FlavorGroupNames}
		f.hosts[h.HostName] = host
		writeJSON(w, http.StatusCreated, host)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, PathHosts+"/"):
		id := strings.TrimPrefix(r.URL.Path, PathHosts+"/")
		for _, h := range f.hosts {
			if h.ID == id {
				writeJSON(w, http.StatusOK, h)
				return
			}
		}
		writeErr(w, http.StatusNotFound, "host not found")
	case r.Method == http.MethodGet && r.URL.Path == PathHosts:
		var out []restapi.Host
		if h, ok := f.hosts[r.URL.Query().Get("nameEqualTo")]; ok {
			out = append(out, h)
		}
		writeJSON(w, http.StatusOK, map[string]any{"hosts": out})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/rebaseline"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, PathHosts+"/"), "/rebaseline")
		var req struct {
			Parts []string `json:"partial_flavor_types"`
		}
		if err := decodeStrict(r, &req); err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		f.rebaseline[id] = req.Parts
		f.flavors[id] = len(req.Parts)
		writeJSON(w, http.StatusCreated, map[string]any{"signed_flavors": []any{}})
	case r.Method == http.MethodGet && r.URL.Path == PathFlavors:
		out := []map[string]any{}
		for range f.flavors[r.URL.Query().Get("hostId")] {
			out = append(out, map[string]any{"flavor": map[string]any{}, "signature": "x"})
		}
		writeJSON(w, http.StatusOK, map[string]any{"signed_flavors": out})
	case r.Method == http.MethodPost && r.URL.Path == PathReports:
		var req struct {
			HostID string `json:"host_id"`
		}
		if err := decodeStrict(r, &req); err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		f.seq++
		rep := report.Report{ID: fmt.Sprintf("r%d", f.seq), HostID: req.HostID, Created: f.now(), Expiration: f.now().Add(time.Hour)}
		rep.TrustInformation.Overall = f.flavors[req.HostID] > 0
		f.reports[req.HostID] = append(f.reports[req.HostID], rep)
		if r.URL.Query().Get("format") == "jws" && !f.jsonOnly {
			f.writeSigned(w, http.StatusCreated, rep)
			return
		}
		writeJSON(w, http.StatusCreated, rep)
	case r.Method == http.MethodGet && r.URL.Path == PathReports:
		id := r.URL.Query().Get("hostId")
		out := []report.Report{}
		if rs := f.reports[id]; len(rs) > 0 && r.URL.Query().Get("latestPerHost") == "true" {
			out = append(out, rs[len(rs)-1])
		}
		writeJSON(w, http.StatusOK, map[string]any{"reports": out})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, PathReports+"/") && r.URL.Query().Get("format") == "jws":
		f.signedGets++
		f.serveSigned(w, strings.TrimPrefix(r.URL.Path, PathReports+"/"))
	default:
		writeErr(w, http.StatusNotFound, "no route")
	}
}

type fixture struct {
	fv     *fakeVerifier
	srv    *httptest.Server
	clock  *clock.Fake
	client *Client
}

// newFixture starts the fake verifier over TLS with HTTP/2, after the
// options have adjusted its server.
func newFixture(t *testing.T, opts ...func(*httptest.Server)) *fixture {
	t.Helper()
	clock := clock.NewFake(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	fv := newFakeVerifier(t, clock.Now)
	srv := httptest.NewUnstartedServer(fv)
	srv.EnableHTTP2 = true
	for _, o := range opts {
		o(srv)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	fv.signer, fv.ca = newVerifierSigner(t, clock.Now)
	roots.AddCert(fv.ca.Root())
	c, err := New(srv.URL, roots, Credentials{Username: testUser, PasswordFile: pwFile}, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{fv: fv, srv: srv, clock: clock, client: c}
}

func TestRegisterHostCreatesTheHostAndFindsItWhenAlreadyRegistered(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h, err := f.client.RegisterHost(ctx, "edge-1", "host-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != "host-1" || h.ConnectionString != "nats://host-1" || h.HostName != "edge-1" {
		t.Fatalf("registered %+v", h)
	}
	if got := f.fv.hosts["edge-1"].FlavorGroupNames; len(got) != 1 || got[0] != FlavorGroupAutomatic {
		t.Fatalf("flavor groups %v", got)
	}
	again, err := f.client.RegisterHost(ctx, "edge-1", "host-1")
	if err != nil {
		t.Fatalf("second registration (409) should find the host: %v", err)
	}
	if again.ID != "host-1" {
		t.Fatalf("found %+v", again)
	}
	if _, err := f.client.HostByName(ctx, "nobody"); !errors.Is(err, ErrHostNotFound) {
		t.Fatalf("unknown host: %v, want ErrHostNotFound", err)
	}
}

// TestRegisterHostNeverFallsBackToAHostBoundToAnotherNode plays a node that
// claims a healthy host's id (or moves to another id): the 409 used to be
// answered with the existing host, so the claiming node got its trust.
func TestRegisterHostNeverFallsBackToAHostBoundToAnotherNode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.client.RegisterHost(ctx, "edge-1", "host-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.RegisterHost(ctx, "edge-2", "host-2"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, node, hostID string
	}{
		{"a second node claiming a bound host id is refused", "edge-evil", "host-1"},
		{"a registered node claiming another node's host id is refused", "edge-2", "host-1"},
		{"a registered node claiming a fresh host id is refused", "edge-2", "host-9"},
		{"a renamed node is refused until the operator deletes the old host", "edge-1-renamed", "host-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := f.client.RegisterHost(ctx, tt.node, tt.hostID)
			if !errors.Is(err, ErrHostBound) {
				t.Fatalf("RegisterHost(%s, %s) = %+v, %v; want ErrHostBound", tt.node, tt.hostID, h, err)
			}
			if h.ID != "" {
				t.Fatalf("refused registration returned host %+v", h)
			}
		})
	}
}

func TestRebaselineAndReports(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.client.LatestReport(ctx, "host-1"); !errors.Is(err, ErrNoReport) {
		t.Fatalf("no report yet: %v, want ErrNoReport", err)
	}
	has, err := f.client.HasAutomaticFlavors(ctx, "host-1")
	if err != nil || has {
		t.Fatalf("flavors before baseline: %v %v", has, err)
	}
	if err := f.client.Rebaseline(ctx, "host-1", []string{"PLATFORM", "OS", "IMA"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.fv.rebaseline["host-1"], ","); got != "PLATFORM,OS,IMA" {
		t.Fatalf("rebaselined parts %q", got)
	}
	if has, err := f.client.HasAutomaticFlavors(ctx, "host-1"); err != nil || !has {
		t.Fatalf("flavors after baseline: %v %v", has, err)
	}
	r, err := f.client.CreateReport(ctx, "host-1")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Trusted() || r.HostID != "host-1" {
		t.Fatalf("report %+v", r)
	}
	latest, err := f.client.LatestReport(ctx, "host-1")
	if err != nil || latest.ID != r.ID {
		t.Fatalf("latest %+v %v, want %s", latest, err, r.ID)
	}
}

func TestEveryUnexpectedStatusIsAnError(t *testing.T) {
	tests := []struct {
		name   string
		route  string
		status int
		call   func(context.Context, *Client) error
	}{
		{"a registration the server refuses fails with its message", "POST " + PathHosts, http.StatusForbidden,
			func(ctx context.Context, c *Client) error { _, err := c.RegisterHost(ctx, "n", "h"); return err }},
		{"a failed rebaseline is not taken for done", "POST " + PathHosts + "/h/rebaseline", http.StatusInternalServerError,
			func(ctx context.Context, c *Client) error { return c.Rebaseline(ctx, "h", []string{"OS"}) }},
		{"a report the verifier could not make is an error", "POST " + PathReports, http.StatusServiceUnavailable,
			func(ctx context.Context, c *Client) error { _, err := c.CreateReport(ctx, "h"); return err }},
		{"a failing report search is an error, not an empty result", "GET " + PathReports, http.StatusBadGateway,
			func(ctx context.Context, c *Client) error { _, err := c.LatestReport(ctx, "h"); return err }},
		{"a failing flavor search is an error, not no flavors", "GET " + PathFlavors, http.StatusInternalServerError,
			func(ctx context.Context, c *Client) error { _, err := c.HasAutomaticFlavors(ctx, "h"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.fv.fail[tt.route] = tt.status
			err := tt.call(context.Background(), f.client)
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not an *HTTPError", err)
			}
			if he.StatusCode != tt.status || he.Message != "injected failure" {
				t.Fatalf("got %+v, want status %d with the server's message", he, tt.status)
			}
		})
	}
}

func TestTokenIsRenewedAtEightyPercentOfItsLifetime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	call := func() {
		t.Helper()
		if _, err := f.client.HostByName(ctx, "x"); !errors.Is(err, ErrHostNotFound) {
			t.Fatal(err)
		}
	}
	call()
	call()
	if f.fv.logins != 1 {
		t.Fatalf("logins = %d after two calls, want 1", f.fv.logins)
	}
	f.clock.Advance(47 * time.Minute) // 78% of an hour
	call()
	if f.fv.logins != 1 {
		t.Fatalf("logins = %d before 80%%, want 1", f.fv.logins)
	}
	f.clock.Advance(2 * time.Minute) // 81%
	call()
	if f.fv.logins != 2 {
		t.Fatalf("logins = %d after 80%%, want 2", f.fv.logins)
	}
}

func TestARejectedTokenIsReplacedOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.client.HasAutomaticFlavors(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	f.fv.mu.Lock()
	clear(f.fv.valid) // the verifier restarted with a new signing key
	f.fv.mu.Unlock()
	if _, err := f.client.HasAutomaticFlavors(ctx, "h"); err != nil {
		t.Fatalf("call after the token was revoked: %v", err)
	}
	if f.fv.logins != 2 {
		t.Fatalf("logins = %d, want 2", f.fv.logins)
	}
}

func TestAFailedLoginIsATokenErrorWithoutThePassword(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.client.creds.PasswordFile, []byte("wrong-password"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.CreateReport(context.Background(), "h")
	var te *TokenError
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("error %v, want a *TokenError with status 401", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error %q carries the password", err)
	}
}

func TestARefusedLoginIsNotRepeatedBeforeTheBackoffEnds(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.client.creds.PasswordFile, []byte("wrong-password"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 10 { // ten nodes due at once
		if _, err := f.client.CreateReport(ctx, "h"); err == nil {
			t.Fatal("no error with a wrong password")
		}
	}
	if f.fv.refused != 1 {
		t.Fatalf("failed logins = %d, want 1: AAS locks the account after 5", f.fv.refused)
	}
	if err := os.WriteFile(f.client.creds.PasswordFile, []byte(testPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if _, err := f.client.CreateReport(ctx, "h"); err == nil {
		t.Fatal("logged in again before the backoff ended")
	}
	f.clock.Advance(31 * time.Second)
	if _, err := f.client.CreateReport(ctx, "h"); err != nil {
		t.Fatalf("after the backoff, with the fixed password: %v", err)
	}
	if f.fv.refused != 1 || f.fv.logins != 1 {
		t.Fatalf("refused %d logins %d, want 1 and 1", f.fv.refused, f.fv.logins)
	}
}

func TestOnlyTheConfiguredRootIsTrusted(t *testing.T) {
	f := newFixture(t)
	// A pool without the server's certificate: neither it nor the system
	// roots may be trusted.
	c, err := New(f.srv.URL, x509.NewCertPool(), f.client.creds)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateReport(context.Background(), "h")
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("error %v, want x509.UnknownAuthorityError", err)
	}
}

func TestNewReportsEveryConfigurationProblem(t *testing.T) {
	_, err := New("http://verifier", nil, Credentials{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"want https", "root CAs", "username", "password file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestTokenTimes(t *testing.T) {
	enc := func(s string) string { return "h." + base64.RawURLEncoding.EncodeToString([]byte(s)) + ".s" }
	tests := []struct {
		name    string
		tok     string
		wantExp int64
		wantErr bool
	}{
		{"a token with exp and iat gives both", enc(`{"exp":2000,"iat":1000}`), 2000, false},
		{"a fractional exp is read", enc(`{"exp":2000.5}`), 2000, false},
		{"a token without exp is refused", enc(`{"iat":1000}`), 0, true},
		{"a string exp is refused", enc(`{"exp":"2000"}`), 0, true},
		{"a token that is not a JWT is refused", "opaque", 0, true},
		{"a payload that is not base64url is refused", "h.***.s", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, exp, err := tokenTimes(tt.tok)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && exp.Unix() != tt.wantExp {
				t.Fatalf("exp = %d, want %d", exp.Unix(), tt.wantExp)
			}
		})
	}
}

func FuzzTokenTimes(f *testing.F) {
	f.Add("h.eyJleHAiOjIwMDB9.s")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		issued, exp, err := tokenTimes(tok)
		if err == nil && exp.Unix() <= 0 {
			t.Fatalf("accepted exp %v", exp)
		}
		_ = issued
	})
}
