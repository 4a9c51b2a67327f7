package hvsclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
)

var (
	errNoSecret     = errors.New("no such secret")
	errSecretExists = errors.New("secret exists")
)

// secrets is an in-memory cms.Store.
type secrets map[string][]byte

func (s secrets) GetSecret(_ context.Context, name string) ([]byte, error) {
	v, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, errNoSecret)
	}
	return v, nil
}

func (s secrets) CreateSecret(_ context.Context, name string, value []byte) error {
	if _, ok := s[name]; ok {
		return fmt.Errorf("%q: %w", name, errSecretExists)
	}
	s[name] = value
	return nil
}

func newTestCMS(t *testing.T, now func() time.Time) *cms.CA {
	t.Helper()
	ca, err := cms.New(context.Background(), cms.Config{NotFound: errNoSecret, Conflict: errSecretExists, Now: now},
		secrets{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// newVerifierSigner returns a report signer with the verifier's own signing
// identity from a real CMS on the clock now, and that CMS.
func newVerifierSigner(t *testing.T, now func() time.Time) (*report.Signer, *cms.CA) {
	t.Helper()
	ca := newTestCMS(t, now)
	key := testca.NewKey(t)
	chain, err := ca.IssueVerifierSigning(key.Public(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s, ca
}

// setSigner makes the fake sign with key and chain, after signedAs.
func (f *fakeVerifier) setSigner(t *testing.T, key *ecdsa.PrivateKey, chain []*x509.Certificate, signedAs func(report.Report) report.Report) {
	t.Helper()
	s, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signer, f.signedAs = s, signedAs
}

// serveSigned answers GET /hvs/v2/reports/{id}?format=jws.
func (f *fakeVerifier) serveSigned(w http.ResponseWriter, id string) {
	for _, rs := range f.reports {
		for i := range rs {
			if rs[i].ID != id {
				continue
			}
			f.writeSigned(w, http.StatusOK, rs[i])
			return
		}
	}
	writeErr(w, http.StatusNotFound, "report not found")
}

// writeSigned answers with the report signed, after signedAs.
func (f *fakeVerifier) writeSigned(w http.ResponseWriter, status int, r report.Report) {
	if f.signedAs != nil {
		r = f.signedAs(r)
	}
	jws, err := f.signer.Sign(&r)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(jws))
}

// The attack of issue 11 on the manager: whoever sits between the manager
// and the verifier (or serves the manager in its place) with a Signing
// certificate from the CMS, or alters the JSON copy, must not get a verdict
// acted on. The manager acts only on reports signed by the verifier's own
// signing identity, and on their signed content.
func TestReportsNotSignedByTheVerifierAreRefused(t *testing.T) {
	for name, jsonOnly := range map[string]bool{
		"a verifier that answers a new report signed":  false,
		"a verifier that answers a new report in json": true,
	} {
		t.Run(name, func(t *testing.T) { testReportsNotSignedByTheVerifierAreRefused(t, jsonOnly) })
	}
}

func testReportsNotSignedByTheVerifierAreRefused(t *testing.T, jsonOnly bool) {
	f := newFixture(t)
	f.fv.jsonOnly = jsonOnly
	ctx := context.Background()
	f.fv.flavors["host-1"] = 3

	r, err := f.client.CreateReport(ctx, "host-1")
	if err != nil {
		t.Fatalf("CreateReport of a report the verifier signed: %v", err)
	}
	if !r.Trusted() {
		t.Fatal("the verifier's trusted report reads untrusted")
	}
	f.fv.mu.Lock()
	gets := f.fv.signedGets
	f.fv.mu.Unlock()
	if want := map[bool]int{false: 0, true: 1}[jsonOnly]; gets != want {
		t.Errorf("CreateReport asked %d times for the signed form, want %d", gets, want)
	}

	// A Signing certificate that an administrator got from the verifier's
	// own CMS, whose root the manager trusts.
	ca := f.fv.ca
	key := testca.NewKey(t)
	chain, err := ca.SignCSR(testca.CSR(t, key, signerid.LeafCommonName), cms.TypeSigning)
	if err != nil {
		t.Fatal(err)
	}
	f.fv.setSigner(t, key, chain, nil)
	if _, err := f.client.CreateReport(ctx, "host-1"); !errors.Is(err, ErrReportUntrusted) || !errors.Is(err, report.ErrCertificateUntrusted) {
		t.Errorf("CreateReport of a report signed with a CMS-issued Signing certificate = %v, want %v", err, ErrReportUntrusted)
	}
	if _, err := f.client.LatestReport(ctx, "host-1"); !errors.Is(err, ErrReportUntrusted) {
		t.Errorf("LatestReport of a report signed with a CMS-issued Signing certificate = %v, want %v", err, ErrReportUntrusted)
	}

	// The same CMS's own verifier identity passes, so the refusal is for
	// the certificate.
	own, err := ca.IssueVerifierSigning(key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.fv.setSigner(t, key, own, nil)
	if _, err := f.client.LatestReport(ctx, "host-1"); err != nil {
		t.Fatalf("LatestReport of a report the verifier signed: %v", err)
	}

	// A signed report that says otherwise than the JSON copy is refused:
	// the verifier's signature on another report proves nothing about this
	// one.
	f.fv.setSigner(t, key, own, func(r report.Report) report.Report {
		r.HostID = "host-2"
		return r
	})
	if _, err := f.client.LatestReport(ctx, "host-1"); !errors.Is(err, ErrReportUntrusted) {
		t.Errorf("LatestReport whose signed form names another host = %v, want %v", err, ErrReportUntrusted)
	}
	// A new report signed for another host (the verifier's answer for
	// host-2 replayed to a request for host-1) is refused too.
	if _, err := f.client.CreateReport(ctx, "host-1"); !errors.Is(err, ErrReportUntrusted) {
		t.Errorf("CreateReport whose signed form names another host = %v, want %v", err, ErrReportUntrusted)
	}
}
