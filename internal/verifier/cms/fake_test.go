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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
)

// The store's sentinels, as the real store would export them.
var (
	errNotFound = errors.New("secret not found")
	errConflict = errors.New("secret exists")
)

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	secrets map[string][]byte
	// staleFirstRead makes the first GetSecret of every name miss, as if a
	// concurrent replica created the secret right after we looked.
	staleFirstRead bool
	read           map[string]bool
	conflicts      int
	failGet        error
}

func newMemStore() *memStore {
	return &memStore{secrets: map[string][]byte{}, read: map[string]bool{}}
}

func (s *memStore) GetSecret(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failGet != nil {
		return nil, s.failGet
	}
	first := !s.read[name]
	s.read[name] = true
	v, ok := s.secrets[name]
	if !ok || (s.staleFirstRead && first) {
		return nil, fmt.Errorf("get %q: %w", name, errNotFound)
	}
	return append([]byte(nil), v...), nil
}

func (s *memStore) CreateSecret(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		s.conflicts++
		return fmt.Errorf("create %q: %w", name, errConflict)
	}
	s.secrets[name] = append([]byte(nil), value...)
	return nil
}

func testConfig() Config { return Config{NotFound: errNotFound, Conflict: errConflict} }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTestCA creates a CA on a fresh in-memory store.
func newTestCA(t testing.TB) *CA { return newCAOn(t, newMemStore()) }

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
