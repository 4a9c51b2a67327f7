package cms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"net"
	"testing"

	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// The store's sentinels, as the real store would export them.
var (
	errNotFound = memsecrets.ErrNotFound
	errConflict = memsecrets.ErrConflict
)

func testConfig() Config { return Config{NotFound: errNotFound, Conflict: errConflict} }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTestCA creates a CA on a fresh in-memory store.
func newTestCA(t testing.TB) *CA { return newCAOn(t, memsecrets.New()) }

// newCAOn creates a CA on store, or loads the one store holds.
func newCAOn(t testing.TB, store Store) *CA {
	t.Helper()
	ca, err := New(context.Background(), testConfig(), store, discardLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ca
}

func newP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// csrPEM makes a PEM CSR signed by key.
func csrPEM(t testing.TB, key crypto.Signer, cn string, dns []string, ips []net.IP) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}
