// Package cmstest gives tests a CMS on an in-memory secret store.
package cmstest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// NewCA creates a CMS on a fresh in-memory store whose clock stands at now.
func NewCA(t testing.TB, now time.Time) *cms.CA {
	t.Helper()
	ca, err := cms.New(context.Background(),
		cms.Config{NotFound: memsecrets.ErrNotFound, Conflict: memsecrets.ErrConflict, Now: func() time.Time { return now }},
		memsecrets.New(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("cms.New: %v", err)
	}
	return ca
}
