package enroll

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/verifier/store"
)

// newSoftAK is an ECC P-256 AK made in software: its key and the
// TPMT_PUBLIC of the agent's AK template with that key.
func newSoftAK(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key := testca.NewKey(t)
	pub, err := tpm.AKTemplate(tpm.ECCP256)
	if err != nil {
		t.Fatal(err)
	}
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
	})
	return key, tpm2.Marshal(pub)
}

// enrollSoftAK stores an enrollment of a new software AK for host, its
// certificate issued by e's privacy CA at now for validity, as Enroll
// would after a credential activation.
func enrollSoftAK(t testing.TB, e *Enroller, st Store, host string, now time.Time, validity time.Duration) (*ecdsa.PrivateKey, store.AKEnrollment) {
	t.Helper()
	key, public := newSoftAK(t)
	cert, err := e.ca.issueAK(&key.PublicKey, host, now, validity)
	if err != nil {
		t.Fatal(err)
	}
	name, err := credential.Name(public)
	if err != nil {
		t.Fatal(err)
	}
	enr := store.AKEnrollment{
		HostID: host, AKName: name, AKPublic: public, AKCertificate: cert.Raw,
		EKPublicSHA256: "00" + host, PCRBanks: []string{"SHA256"}, CreatedAt: now,
	}
	if err := st.PutAKEnrollment(t.Context(), enr); err != nil {
		t.Fatal(err)
	}
	return key, enr
}

// BenchmarkVerifyAK is the AK check of every report (issue 13): read the
// host's enrollment from an SQLite file and accept its AK.
//
//	go test -run '^$' -bench VerifyAK -count 3 ./internal/verifier/enroll
func BenchmarkVerifyAK(b *testing.B) {
	e, _ := benchEnroller(b)
	ctx := b.Context()
	b.ResetTimer()
	cpu := benchfloor.Start()
	for b.Loop() {
		if _, _, err := e.VerifyAK(ctx, "edge-1"); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b)
	benchfloor.ReportRatio(b)
}

// rewrittenRows is a Store whose AK enrollment rows a test rewrites behind
// the Enroller's back, as an attacker with write access to the database
// could. A nil row is a deleted one.
type rewrittenRows struct {
	Store
	rows map[string]*store.AKEnrollment
}

func (s rewrittenRows) AKEnrollmentByHost(ctx context.Context, hostID string) (store.AKEnrollment, error) {
	if r, ok := s.rows[hostID]; ok {
		if r == nil {
			return store.AKEnrollment{}, fmt.Errorf("ak enrollment of host %q: %w", hostID, store.ErrNotFound)
		}
		return *r, nil
	}
	return s.Store.AKEnrollmentByHost(ctx, hostID)
}

// wantAKAccepted checks that e accepts host's AK and returns want.
func wantAKAccepted(t *testing.T, e *Enroller, host string, want []byte) {
	t.Helper()
	got, _, err := e.VerifyAK(t.Context(), host)
	if err != nil {
		t.Fatalf("VerifyAK(%s): %v", host, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("VerifyAK(%s) returns another AK than the enrolled one", host)
	}
}

// wantVerifications checks how many AK certificate chains e verified.
func wantVerifications(t *testing.T, e *Enroller, want int64) {
	t.Helper()
	if got := e.akVerifications.Load(); got != want {
		t.Fatalf("%d AK certificate chains verified, want %d", got, want)
	}
}

func TestAHostsReportsVerifyItsAKChainOnce(t *testing.T) {
	st := openStore(t)
	e := newEnroller(t, Config{}, st, failingAgent{})
	_, enr := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
	for range 5 {
		wantAKAccepted(t, e, "edge-1", enr.AKPublic)
	}
	wantVerifications(t, e, 1)
}

func TestAnExpiredAKCertificateIsRefusedEvenWhenItsChainWasVerified(t *testing.T) {
	for _, tc := range []struct {
		name string
		move time.Duration
	}{
		{"the certificate expired since", time.Hour + time.Second},
		{"the clock went back before the certificate was valid", -2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Now())
			st := openStore(t)
			e := newEnroller(t, Config{Now: clk.Now}, st, failingAgent{})
			_, enr := enrollSoftAK(t, e, st, "edge-1", clk.Now(), time.Hour)
			wantAKAccepted(t, e, "edge-1", enr.AKPublic)
			wantAKAccepted(t, e, "edge-1", enr.AKPublic)
			wantVerifications(t, e, 1)

			clk.Advance(tc.move)
			wantAKRefused(t, e, "edge-1", AKCertExpired)
			wantAKRefused(t, e, "edge-1", AKCertExpired)
			wantVerifications(t, e, 3)
		})
	}
}

func TestAReEnrolledHostIsVerifiedAnewAndItsOldAKIsRefused(t *testing.T) {
	st := openStore(t)
	e := newEnroller(t, Config{}, st, failingAgent{})
	oldKey, old := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
	wantAKAccepted(t, e, "edge-1", old.AKPublic)

	newKey, renewed := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
	wantAKAccepted(t, e, "edge-1", renewed.AKPublic)
	wantVerifications(t, e, 2)

	// HVS checks the quote's signature with the AK VerifyAK returns: the
	// old AK's signature no longer verifies, the new one's does.
	akPublic, _, err := e.VerifyAK(t.Context(), "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	ak, ok := mustPublicKey(t, akPublic).(*ecdsa.PublicKey)
	if !ok {
		t.Fatal("the enrolled AK is no ECDSA key")
	}
	digest := sha256.Sum256([]byte("a quote"))
	for _, s := range []struct {
		who  string
		key  *ecdsa.PrivateKey
		want bool
	}{{"old", oldKey, false}, {"new", newKey, true}} {
		sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := ecdsa.VerifyASN1(ak, digest[:], sig); got != s.want {
			t.Errorf("a quote signed by the %s AK verifies: %v, want %v", s.who, got, s.want)
		}
	}
	wantVerifications(t, e, 2)
}

func TestARewrittenEnrollmentRowIsRefusedAlthoughTheHostsAKWasVerified(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(mine, other store.AKEnrollment) *store.AKEnrollment
		reason  string
	}{
		{"another host's row copied under this host", func(_, other store.AKEnrollment) *store.AKEnrollment {
			other.HostID = "edge-1"
			return &other
		}, AKCertUntrusted},
		{"this host's row with another host's ak", func(mine, other store.AKEnrollment) *store.AKEnrollment {
			mine.AKPublic, mine.AKName = other.AKPublic, other.AKName
			return &mine
		}, AKCertUntrusted},
		{"this host's row with another host's ak certificate", func(mine, other store.AKEnrollment) *store.AKEnrollment {
			mine.AKCertificate = other.AKCertificate
			return &mine
		}, AKCertUntrusted},
		{"this host's row with the ak name of another ak", func(mine, other store.AKEnrollment) *store.AKEnrollment {
			mine.AKName = other.AKName
			return &mine
		}, AKCertUntrusted},
		{"the enrollment deleted", func(store.AKEnrollment, store.AKEnrollment) *store.AKEnrollment {
			return nil
		}, AKNotEnrolled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := rewrittenRows{Store: openStore(t), rows: map[string]*store.AKEnrollment{}}
			e := newEnroller(t, Config{}, st, failingAgent{})
			_, mine := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
			_, other := enrollSoftAK(t, e, st, "edge-2", time.Now(), time.Hour)
			wantAKAccepted(t, e, "edge-1", mine.AKPublic)
			wantAKAccepted(t, e, "edge-2", other.AKPublic)

			st.rows["edge-1"] = tc.rewrite(mine, other)
			wantAKRefused(t, e, "edge-1", tc.reason)
			wantAKAccepted(t, e, "edge-2", other.AKPublic)

			delete(st.rows, "edge-1")
			wantAKAccepted(t, e, "edge-1", mine.AKPublic)
		})
	}
}

func TestTheVerifiedAKChainsAreBoundedByTheirEntries(t *testing.T) {
	st := openStore(t)
	e := newEnroller(t, Config{AKCacheEntries: 2}, st, failingAgent{})
	hosts := map[string][]byte{}
	for _, h := range []string{"edge-1", "edge-2", "edge-3"} {
		_, enr := enrollSoftAK(t, e, st, h, time.Now(), time.Hour)
		hosts[h] = enr.AKPublic
	}
	for range 2 {
		for h, ak := range hosts {
			wantAKAccepted(t, e, h, ak)
		}
	}
	if n := len(e.akCache.entries); n != 2 {
		t.Errorf("the cache holds %d verified chains, want its bound of 2", n)
	}
	if n := e.akVerifications.Load(); n < 4 {
		t.Errorf("%d chains verified for 6 reports of 3 hosts in a cache of 2, want at least 4", n)
	}
}

func TestConcurrentReportsShareOneVerifiedAKChain(t *testing.T) {
	st := openStore(t)
	e := newEnroller(t, Config{}, st, failingAgent{})
	_, enr := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
	wantAKAccepted(t, e, "edge-1", enr.AKPublic)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, _, err := e.VerifyAK(t.Context(), "edge-1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantVerifications(t, e, 1)
}

func TestAChainIsValidOnlyWhileEachOfItsCertificatesIs(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(10 * time.Hour)}
	ca := &x509.Certificate{NotBefore: t0.Add(time.Hour), NotAfter: t0.Add(5 * time.Hour)}
	v := chainValidity([]*x509.Certificate{leaf, ca})
	for _, tc := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"before the ca is valid", t0.Add(30 * time.Minute), false},
		{"when both are valid", t0.Add(2 * time.Hour), true},
		{"at the ca's last second", t0.Add(5 * time.Hour), true},
		{"after the ca expired, the leaf still valid", t0.Add(5*time.Hour + time.Second), false},
	} {
		if got := v.contains(tc.at); got != tc.want {
			t.Errorf("%s: valid %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAChangedEKBindingVerifiesTheAKChainAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(*store.AKEnrollment)
	}{
		{"another ek certificate", func(r *store.AKEnrollment) { r.EKCertificate = []byte("another ek certificate") }},
		{"another ek public key digest", func(r *store.AKEnrollment) { r.EKPublicSHA256 = "ff" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := rewrittenRows{Store: openStore(t), rows: map[string]*store.AKEnrollment{}}
			e := newEnroller(t, Config{}, st, failingAgent{})
			_, enr := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
			wantAKAccepted(t, e, "edge-1", enr.AKPublic)
			tc.rewrite(&enr)
			st.rows["edge-1"] = &enr
			wantAKAccepted(t, e, "edge-1", enr.AKPublic)
			wantVerifications(t, e, 2)
		})
	}
}
