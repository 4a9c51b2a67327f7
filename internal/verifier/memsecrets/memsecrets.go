// Package memsecrets is an in-memory secret store (GetSecret, CreateSecret)
// for the tests of the parts that keep their keys in the verifier's store:
// CMS and the bus authority. It keeps the real store's contract: copies in
// and out, a missing name is ErrNotFound, a taken one ErrConflict.
package memsecrets

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// The store's sentinels, as the real store exports them.
var (
	ErrNotFound = errors.New("secret not found")
	ErrConflict = errors.New("secret exists")
)

// Store is an in-memory secret store. Set its knobs before first use.
type Store struct {
	// GetErr, when set, is what every GetSecret returns.
	GetErr error
	// StaleFirstRead makes the first GetSecret of every name once it is set
	// miss, as if a concurrent replica created the secret right after it was
	// looked up.
	StaleFirstRead bool
	// BeforeCreate, when set, runs at the start of CreateSecret (to play
	// another replica).
	BeforeCreate func(name string)

	mu        sync.Mutex
	secrets   map[string][]byte
	read      map[string]bool
	conflicts int
}

// New returns an empty Store.
func New() *Store { return &Store{secrets: map[string][]byte{}, read: map[string]bool{}} }

// GetSecret returns a copy of the secret, or an error wrapping ErrNotFound.
func (s *Store) GetSecret(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.GetErr != nil {
		return nil, s.GetErr
	}
	stale := s.StaleFirstRead && !s.read[name]
	if s.StaleFirstRead {
		s.read[name] = true
	}
	v, ok := s.secrets[name]
	if !ok || stale {
		return nil, fmt.Errorf("get %q: %w", name, ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// CreateSecret keeps a copy of value, or returns an error wrapping
// ErrConflict when name is taken.
func (s *Store) CreateSecret(_ context.Context, name string, value []byte) error {
	if s.BeforeCreate != nil {
		s.BeforeCreate(name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		s.conflicts++
		return fmt.Errorf("create %q: %w", name, ErrConflict)
	}
	s.secrets[name] = append([]byte(nil), value...)
	return nil
}

// Put sets a secret as another writer would, taken or not.
func (s *Store) Put(name string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = value
}

// Secret returns what the store holds under name, without counting as a read.
func (s *Store) Secret(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secrets[name]
}

// Conflicts counts the CreateSecret calls refused because the name was taken.
func (s *Store) Conflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

// Delete removes a secret, as an operator or an older version would.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, name)
}

// Len counts the secrets the store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.secrets)
}
