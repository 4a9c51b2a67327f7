// Package cmstest gives tests a CMS on an in-memory secret store.
package cmstest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/cms"
)

// The Store's sentinels, as the real store exports them.
var (
	ErrNotFound = errors.New("secret not found")
	ErrConflict = errors.New("secret exists")
)

// Store is an in-memory cms.Store.
type Store struct {
	mu      sync.Mutex
	secrets map[string][]byte
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{secrets: map[string][]byte{}} }

// GetSecret returns a copy of the secret, or an error wrapping ErrNotFound.
func (s *Store) GetSecret(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[name]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", name, ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// CreateSecret keeps a copy of value, or returns an error wrapping
// ErrConflict when name is taken.
func (s *Store) CreateSecret(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		return fmt.Errorf("create %q: %w", name, ErrConflict)
	}
	s.secrets[name] = append([]byte(nil), value...)
	return nil
}

// NewCA creates a CMS on a fresh Store whose clock stands at now.
func NewCA(t testing.TB, now time.Time) *cms.CA {
	t.Helper()
	ca, err := cms.New(context.Background(),
		cms.Config{NotFound: ErrNotFound, Conflict: ErrConflict, Now: func() time.Time { return now }},
		NewStore(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("cms.New: %v", err)
	}
	return ca
}
