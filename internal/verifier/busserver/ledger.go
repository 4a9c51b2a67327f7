package busserver

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kinds of Owner.
const (
	OwnerAgent   = "agent"   // Owner.Name is the host id
	OwnerManager = "manager" // Owner.Name is the manager's name
	OwnerService = "service" // Owner.Name is the service's name (HVS)
)

// Owner is whom a user key was issued to: the trust agent of a host, an
// attestation manager or a verifier service.
type Owner struct {
	Kind, Name string
}

func (o Owner) String() string { return o.Kind + ":" + o.Name }

// UserKey is one user key the authority issued (or found on a connection).
type UserKey struct {
	Owner     Owner
	PublicKey string
	// Expires is when the key's JWT expires.
	Expires time.Time
	// Revoked is when the key was revoked; zero if it is not.
	Revoked time.Time
}

// Ledger keeps the user keys an Authority issued and those it revoked, so
// that a revocation outlives the process: the verifier's store is one (see
// internal/verifier/buscreds.go). Without one an Authority keeps them in
// memory, and a restart forgets them.
type Ledger interface {
	// RecordKeys stores keys. A key stored before stays revoked once it
	// is, at its first revocation time.
	RecordKeys(ctx context.Context, keys ...UserKey) error
	// RevokeOwner revokes, at at, every key of owner not expired at at.
	RevokeOwner(ctx context.Context, owner Owner, at time.Time) error
	// RevokedKeys lists the revoked keys that have not expired at now.
	RevokedKeys(ctx context.Context, now time.Time) ([]UserKey, error)
	// PruneKeys forgets the keys that expired before now.
	PruneKeys(ctx context.Context, now time.Time) error
}

// memLedger is the Ledger of an Authority given none.
type memLedger struct {
	mu   sync.Mutex
	keys map[string]UserKey // by public key
}

func newMemLedger() *memLedger { return &memLedger{keys: map[string]UserKey{}} }

func (l *memLedger) RecordKeys(_ context.Context, keys ...UserKey) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if old, ok := l.keys[k.PublicKey]; ok {
			if old.Revoked.IsZero() {
				old.Revoked = k.Revoked
			}
			k = old
		}
		l.keys[k.PublicKey] = k
	}
	return nil
}

func (l *memLedger) RevokeOwner(_ context.Context, owner Owner, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for pub, k := range l.keys {
		if k.Owner == owner && k.Revoked.IsZero() && !k.Expires.Before(at) {
			k.Revoked = at
			l.keys[pub] = k
		}
	}
	return nil
}

func (l *memLedger) RevokedKeys(_ context.Context, now time.Time) ([]UserKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []UserKey
	for _, k := range l.keys {
		if !k.Revoked.IsZero() && !k.Expires.Before(now) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b UserKey) int { return strings.Compare(a.PublicKey, b.PublicKey) })
	return out, nil
}

func (l *memLedger) PruneKeys(_ context.Context, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for pub, k := range l.keys {
		if k.Expires.Before(now) {
			delete(l.keys, pub)
		}
	}
	return nil
}
