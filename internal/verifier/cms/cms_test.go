package cms

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

func TestFirstStartCreatesTheHierarchyAndASecondStartLoadsIt(t *testing.T) {
	store := memsecrets.New()
	first := newCAOn(t, store)
	if got := store.Len(); got != 5 {
		t.Fatalf("store holds %d secrets after the first start, want 5 (root, 3 CSR intermediates, verifier signing)", got)
	}
	root := first.Root()
	if root.Subject.CommonName != RootCommonName || !root.IsCA {
		t.Fatalf("root is %q (CA %v), want the CA %q", root.Subject.CommonName, root.IsCA, RootCommonName)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Fatalf("root is not self-signed: %v", err)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
		t.Fatalf("root key is %T, want ECDSA P-384", root.PublicKey)
	}
	if years := root.NotAfter.Sub(root.NotBefore).Hours() / 24 / 365; years < 9.9 {
		t.Fatalf("root is valid for %.1f years, want about 10", years)
	}
	for _, kind := range certTypes {
		c, err := first.CACertificate(kind)
		if err != nil {
			t.Fatalf("CACertificate(%s): %v", kind, err)
		}
		if !c.IsCA || !c.MaxPathLenZero {
			t.Errorf("%s intermediate: IsCA %v, MaxPathLenZero %v, want both", kind, c.IsCA, c.MaxPathLenZero)
		}
		if err := c.CheckSignatureFrom(root); err != nil {
			t.Errorf("%s intermediate is not signed by the root: %v", kind, err)
		}
	}

	second := newCAOn(t, store)
	if !bytes.Equal(second.Root().Raw, root.Raw) || second.RootSHA384() != first.RootSHA384() {
		t.Fatal("the second start made a different root")
	}
	for _, kind := range certTypes {
		a, _ := first.CACertificate(kind)
		b, _ := second.CACertificate(kind)
		if !bytes.Equal(a.Raw, b.Raw) {
			t.Errorf("the second start made a different %s intermediate", kind)
		}
	}
	if got := store.Len(); got != 5 {
		t.Fatalf("store holds %d secrets after the second start, want 5", got)
	}
}

func TestAReplicaThatLosesTheCreationRaceUsesTheWinnersHierarchy(t *testing.T) {
	store := memsecrets.New()
	winner := newCAOn(t, store)
	// The loser looked before the winner wrote: every first read misses.
	store.StaleFirstRead = true
	loser := newCAOn(t, store)
	if store.Conflicts() != 5 {
		t.Fatalf("the loser hit %d conflicts, want 5 (one per CA)", store.Conflicts())
	}
	if !bytes.Equal(loser.Root().Raw, winner.Root().Raw) {
		t.Fatal("the loser uses a different root")
	}
	chain, err := loser.IssueTLSClient(newP384(t).Public(), "node-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: winner.RootPool(), Intermediates: pool(chain[1]),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a certificate of the loser does not verify under the winner's root: %v", err)
	}
}

func TestNewRefusesBadConfigurationsAndBadStores(t *testing.T) {
	ctx := context.Background()
	other := memsecrets.New()
	newCAOn(t, other)
	tests := []struct {
		name    string
		cfg     Config
		store   func() *memsecrets.Store
		wantErr string
	}{
		{"a config without the store's sentinels is refused, naming both", Config{}, memsecrets.New, "NotFound sentinel"},
		{"a negative validity is refused", Config{NotFound: errNotFound, Conflict: errConflict, LeafValidity: -time.Hour}, memsecrets.New, "LeafValidity must not be negative"},
		{"a store that fails to read is reported", testConfig(), func() *memsecrets.Store {
			s := memsecrets.New()
			s.GetErr = errors.New("disk on fire")
			return s
		}, "disk on fire"},
		{"a corrupt root secret is refused", testConfig(), func() *memsecrets.Store {
			s := memsecrets.New()
			s.Put(secretName[IssuingRoot], []byte("garbage"))
			return s
		}, "decode stored root CA"},
		{"an intermediate of another root is refused", testConfig(), func() *memsecrets.Store {
			s := memsecrets.New()
			newCAOn(t, s)
			s.Put(secretName[TypeTLS], other.Secret(secretName[TypeTLS]))
			return s
		}, "not signed by the root"},
		{"a key that does not match its certificate is refused", testConfig(), func() *memsecrets.Store {
			s := memsecrets.New()
			newCAOn(t, s)
			mine, theirs := s.Secret(secretName[IssuingRoot]), other.Secret(secretName[IssuingRoot])
			keyOfTheirs := theirs[:bytes.Index(theirs, []byte("-----BEGIN CERTIFICATE"))]
			certOfMine := mine[bytes.Index(mine, []byte("-----BEGIN CERTIFICATE")):]
			s.Put(secretName[IssuingRoot], append(append([]byte(nil), keyOfTheirs...), certOfMine...))
			return s
		}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(ctx, tt.cfg, tt.store(), discardLogger())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestExportWritesEveryCAWithKeysOfMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	cfg := testConfig()
	cfg.ExportDir = dir
	ca, err := New(context.Background(), cfg, memsecrets.New(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"root-ca", "tls-ca", "tls-client-ca", "signing-ca", "verifier-signing-ca"} {
		fi, err := os.Stat(filepath.Join(dir, base+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s.key has mode %o, want 600", base, mode)
		}
	}
	root, err := LoadRootFile(filepath.Join(dir, "root-ca.crt"), ca.RootSHA384())
	if err != nil {
		t.Fatalf("the exported root does not load with its pin: %v", err)
	}
	if !root.Equal(ca.Root()) {
		t.Fatal("the exported root differs from the CA's root")
	}
}

func TestCACertificateRefusesAnUnknownIssuingCA(t *testing.T) {
	ca := newTestCA(t)
	_, err := ca.CACertificate("Intermediate")
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != api.KindBadRequest || !errors.Is(err, ErrUnknownCA) {
		t.Fatalf("CACertificate error = %v, want a bad request wrapping ErrUnknownCA", err)
	}
}

func TestRootPoolIsACopy(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	ca.RootPool().AddCert(other.Root()) // must not change the CA's pool
	chain, err := other.IssueTLSClient(newP384(t).Public(), "x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: ca.RootPool(), Intermediates: pool(chain[1]),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("a certificate of another CA verified under RootPool")
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
