package dashboard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/auth"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// fakeAuth is the AAS as the dashboard sees it: users with passwords and
// permissions, tokens that expire and can be revoked.
type fakeAuth struct {
	clock *clock.Fake
	ttl   time.Duration

	mu     sync.Mutex
	users  map[string]fakeUser
	tokens map[string]fakeToken
	n      int
	// logins counts Login calls, with the passwords they carried.
	passwords []string
}

type fakeUser struct {
	password string
	rules    []string // HVS rules
}

type fakeToken struct {
	user    string
	exp     time.Time
	revoked bool
}

var errFakeLogin = errors.New("invalid username or password")

func (a *fakeAuth) Login(_ context.Context, username, password string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.passwords = append(a.passwords, password)
	u, ok := a.users[username]
	if !ok || u.password != password {
		return "", errFakeLogin
	}
	a.n++
	tok := fmt.Sprintf("token-%s-%d-secret", username, a.n)
	a.tokens[tok] = fakeToken{user: username, exp: a.clock.Now().Add(a.ttl)}
	return tok, nil
}

func (a *fakeAuth) CheckToken(_ context.Context, token string) (*auth.Claims, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tokens[token]
	switch {
	case !ok:
		return nil, time.Time{}, errors.New("bad token signature")
	case t.revoked:
		return nil, time.Time{}, errors.New("token revoked")
	case !a.clock.Now().Before(t.exp):
		return nil, time.Time{}, errors.New("token expired")
	}
	return &auth.Claims{Subject: t.user, Permissions: []auth.Permission{{Service: "HVS", Rules: a.users[t.user].rules}}}, t.exp, nil
}

func (a *fakeAuth) revokeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.tokens {
		t.revoked = true
		a.tokens[k] = t
	}
}

const (
	operatorPassword = "operator password 1"
	tokenTTL         = time.Hour
)

type fixture struct {
	d     *Dashboard
	st    *store.Store
	ca    *cms.CA
	clock *clock.Fake
	auth  *fakeAuth
	log   *strings.Builder
	seq   int
	// reports signs the reports addReport stores, as the verifier does.
	reports *report.Signer
}

type lockedBuilder struct {
	mu sync.Mutex
	strings.Builder
}

func (b *lockedBuilder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Builder.Write(p)
}

// newFixture runs a dashboard over a real SQLite store and a real CMS (for
// the report signing chain), with a fake AAS and a fake clock.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "verifier.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	logs := &lockedBuilder{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := clock.NewFake(t0.Add(-24 * time.Hour)) // the CA is a day old
	ca, err := cms.New(ctx, cms.Config{NotFound: store.ErrNotFound, Conflict: store.ErrConflict, Now: clk.Now}, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, ca: ca, clock: clk}
	clk.Set(t0.Add(-23 * time.Hour)) // a signing certificate for every report the tests make
	f.reports = f.signerFor(t, 72*time.Hour)
	clk.Set(t0)
	fa := &fakeAuth{clock: clk, ttl: tokenTTL, users: map[string]fakeUser{
		"operator": {password: operatorPassword, rules: []string{"hosts:retrieve:*", "reports:retrieve:*", "hosts:search:*"}},
		"enroller": {password: "enroller password", rules: []string{"hosts:create:*"}},
	}, tokens: map[string]fakeToken{}}
	d, err := New(Config{Roots: ca.RootPool(), Clock: clk, Poll: 20 * time.Millisecond}, st, fa, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dashboard log:\n%s", logs.String())
		}
	})
	f.d, f.auth, f.log = d, fa, &logs.Builder
	return f
}

func (f *fixture) addHost(t testing.TB, id, name string) {
	t.Helper()
	if err := f.st.CreateHost(context.Background(), store.Host{ID: id, Name: name, Status: report.StatusConnected,
		CreatedAt: t0.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// addReport stores a report of the host made at `at`, trusted unless a
// fault is given (faults go into the IMA part, or the PLATFORM part when
// they name a PCR). It returns the report's id.
func (f *fixture) addReport(t testing.TB, hostID string, at time.Time, faults ...appraise.Fault) string {
	t.Helper()
	f.seq++
	r := testReport(hostID, fmt.Sprintf("0000%04d-report", f.seq), at, faults...)
	jws, err := f.reports.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	f.store(t, r, jws)
	return r.ID
}

func testReport(hostID, id string, at time.Time, faults ...appraise.Fault) *report.Report {
	on := true
	r := &report.Report{
		ID: id, HostID: hostID, HostName: "name-of-" + hostID, Created: at, Expiration: at.Add(time.Hour),
		HostStatus: report.StatusConnected,
		HostInfo: report.HostInfo{SecureBoot: report.SecureBoot{FromPCR7: true, Verified: true, Efivar: &on},
			DiskEncryptionStatus: appraise.DiskEncryptionMeasured},
		TrustInformation: flavor.TrustInformation{Overall: true, FlavorsTrust: map[flavor.Part]flavor.PartTrust{
			flavor.PartPlatform: {Trust: true, Rules: []flavor.RuleResult{{Rule: flavor.Rule{Name: flavor.RulePcrMatchesConstant,
				Markers: []flavor.Part{flavor.PartPlatform}}, FlavorID: "flavor-platform", Trusted: true}}},
			flavor.PartIMA: {Trust: true, Rules: []flavor.RuleResult{{Rule: flavor.Rule{Name: flavor.RuleImaEventLogEquals,
				Markers: []flavor.Part{flavor.PartIMA}}, FlavorID: "flavor-ima", Trusted: true}}},
		}},
	}
	for _, fl := range faults {
		part, rule := flavor.PartIMA, flavor.RuleImaEventLogEquals
		if fl.PCRIndex != nil {
			part, rule = flavor.PartPlatform, flavor.RulePcrMatchesConstant
			if len(fl.MissingEntries)+len(fl.UnexpectedEntries) > 0 {
				rule = flavor.RulePcrEventLogEquals
			}
		}
		pt := r.TrustInformation.FlavorsTrust[part]
		pt.Trust = false
		pt.Rules = append(pt.Rules, flavor.RuleResult{Rule: flavor.Rule{Name: rule, Markers: []flavor.Part{part}},
			FlavorID: "flavor-" + strings.ToLower(string(part)), Trusted: false, Faults: []appraise.Fault{fl}})
		r.TrustInformation.FlavorsTrust[part] = pt
		r.TrustInformation.Overall = false
	}
	return r
}

func (f *fixture) store(t testing.TB, r *report.Report, jws string) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateReport(context.Background(), store.Report{ID: r.ID, HostID: r.HostID, HostName: r.HostName,
		Trusted: r.Trusted(), CreatedAt: r.Created, ExpiresAt: r.Expiration, JSON: b, JWS: jws}); err != nil {
		t.Fatal(err)
	}
}

// signer signs reports as the verifier does: a P-256 key with a chain the
// CMS issued to the verifier's signing identity.
func (f *fixture) signer(t testing.TB) *report.Signer { return f.signerFor(t, 24*time.Hour) }

// signerFor is a signer whose certificate is valid from now for ttl.
func (f *fixture) signerFor(t testing.TB, ttl time.Duration) *report.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := f.ca.IssueVerifierSigning(&key.PublicKey, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, key, chain)
}

func newSigner(t testing.TB, key *ecdsa.PrivateKey, chain []*x509.Certificate) *report.Signer {
	t.Helper()
	s, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pcr(i int) *int { return &i }

// browser is a cookie-keeping client of the handler, as a browser on the
// dashboard's own origin would send requests.
type browser struct {
	t       testing.TB
	h       http.Handler
	cookies map[string]string
}

func (f *fixture) browser(t testing.TB) *browser {
	return &browser{t: t, h: f.d.Handler(), cookies: map[string]string{}}
}

type response struct {
	code   int
	header http.Header
	body   string
	set    []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "https://dashboard.example"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", "https://dashboard.example")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	res := rec.Result()
	defer func() { _ = res.Body.Close() }()
	out, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return response{code: res.StatusCode, header: res.Header, body: string(out), set: res.Cookies()}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf(page string) string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no csrf field in\n%s", page)
	}
	return m[1]
}

// login fills in the login form and posts it.
func (b *browser) login(user, password string) response {
	b.t.Helper()
	p := b.do(http.MethodGet, "/login", nil)
	return b.do(http.MethodPost, "/login", url.Values{"csrf": {b.csrf(p.body)}, "username": {user}, "password": {password}})
}
