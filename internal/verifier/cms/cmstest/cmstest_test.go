package cmstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
)

func TestStoreKeepsSecretsAsTheRealStoreDoes(t *testing.T) {
	ctx := context.Background()
	s := cmstest.NewStore()
	if _, err := s.GetSecret(ctx, "k"); !errors.Is(err, cmstest.ErrNotFound) {
		t.Fatalf("get of a missing secret: %v, want ErrNotFound", err)
	}
	if err := s.CreateSecret(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSecret(ctx, "k", []byte("v2")); !errors.Is(err, cmstest.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	got, err := s.GetSecret(ctx, "k")
	if err != nil || string(got) != "v1" {
		t.Fatalf("get = %q, %v; want v1", got, err)
	}
	got[0] = 'x'
	if again, _ := s.GetSecret(ctx, "k"); string(again) != "v1" {
		t.Fatalf("a caller changed the stored secret to %q", again)
	}
}

func TestNewCAUsesTheGivenClock(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	ca := cmstest.NewCA(t, now)
	if nb := ca.Root().NotBefore; !nb.Before(now) || now.Sub(nb) > 24*time.Hour {
		t.Fatalf("root starts at %s for a clock at %s", nb, now)
	}
}
