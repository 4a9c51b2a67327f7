package aas

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Token revocation. Every token names the user on whose authority it was
// issued and that user's token generation (claims "uid" and "ugen"). The
// store moves the generation on when the user's password changes or a role
// or permission is taken away, and deleting the user removes it; a token
// whose user is gone or whose generation is behind is refused.
//
// Each user's generation is cached for at most Config.RevocationRecheck
// (default 2 s, at most 5 s), so a change made through another replica is
// seen within that time; a change made through this AAS is seen at once.

// MaxRevocationRecheck bounds Config.RevocationRecheck.
const MaxRevocationRecheck = 5 * time.Second

// maxGenerations bounds the cache of user generations.
const maxGenerations = 4096

// generations answers whether a token's user generation is current.
type generations struct {
	users interface {
		UserByID(ctx context.Context, id string) (User, error)
	}
	ttl time.Duration
	now func() time.Time

	mu sync.RWMutex
	m  map[string]generation
}

type generation struct {
	gen  int64
	gone bool      // the user does not exist
	at   time.Time // when read from the store
}

func newGenerations(users UserStore, ttl time.Duration, now func() time.Time) *generations {
	return &generations{users: users, ttl: ttl, now: now, m: make(map[string]generation)}
}

// check returns nil when the user exists and gen is its current generation,
// an error wrapping ErrTokenRevoked when not, and any other error when the
// store cannot tell.
func (g *generations) check(ctx context.Context, userID string, gen int64) error {
	if userID == "" {
		return fmt.Errorf("%w: the token names no user", ErrTokenRevoked)
	}
	now := g.now()
	g.mu.RLock()
	e, ok := g.m[userID]
	g.mu.RUnlock()
	if !ok || now.Sub(e.at) >= g.ttl || now.Before(e.at) {
		u, err := g.users.UserByID(ctx, userID)
		switch {
		case errors.Is(err, ErrNotFound):
			e = generation{gone: true, at: now}
		case err != nil:
			return fmt.Errorf("read the token's user: %w", err)
		default:
			e = generation{gen: u.TokenGeneration, at: now}
		}
		g.put(userID, e)
	}
	switch {
	case e.gone:
		return fmt.Errorf("%w: the user no longer exists", ErrTokenRevoked)
	case e.gen != gen:
		return fmt.Errorf("%w: the user's tokens were revoked", ErrTokenRevoked)
	}
	return nil
}

func (g *generations) put(userID string, e generation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.m) >= maxGenerations {
		for k, old := range g.m {
			if e.at.Sub(old.at) >= g.ttl {
				delete(g.m, k)
			}
		}
		for k := range g.m {
			if len(g.m) < maxGenerations {
				break
			}
			delete(g.m, k)
		}
	}
	g.m[userID] = e
}

// forget drops the cached generation of the user, or of every user when
// userID is empty, after a change made through this AAS.
func (g *generations) forget(userID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if userID == "" {
		clear(g.m)
		return
	}
	delete(g.m, userID)
}
