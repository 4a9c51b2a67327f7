package memsecrets_test

import (
	"context"
	"errors"
	"testing"

	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

func TestStoreKeepsSecretsAsTheRealStoreDoes(t *testing.T) {
	ctx := context.Background()
	s := memsecrets.New()
	if _, err := s.GetSecret(ctx, "k"); !errors.Is(err, memsecrets.ErrNotFound) {
		t.Fatalf("get of a missing secret: %v, want ErrNotFound", err)
	}
	if err := s.CreateSecret(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSecret(ctx, "k", []byte("v2")); !errors.Is(err, memsecrets.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	if n := s.Conflicts(); n != 1 {
		t.Fatalf("conflicts = %d, want 1", n)
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

func TestTheKnobsPlayOtherReplicasAndFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("a stale first read misses a secret that is there, once", func(t *testing.T) {
		s := memsecrets.New()
		s.Put("k", []byte("v"))
		s.StaleFirstRead = true
		if _, err := s.GetSecret(ctx, "k"); !errors.Is(err, memsecrets.ErrNotFound) {
			t.Fatalf("first get: %v, want ErrNotFound", err)
		}
		if v, err := s.GetSecret(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("second get = %q, %v; want v", v, err)
		}
	})
	t.Run("a read error is returned", func(t *testing.T) {
		s := memsecrets.New()
		boom := errors.New("disk on fire")
		s.GetErr = boom
		if _, err := s.GetSecret(ctx, "k"); !errors.Is(err, boom) {
			t.Fatalf("get: %v, want %v", err, boom)
		}
	})
	t.Run("another replica that creates first wins", func(t *testing.T) {
		s := memsecrets.New()
		s.BeforeCreate = func(name string) { s.Put(name, []byte("theirs")) }
		if err := s.CreateSecret(ctx, "k", []byte("mine")); !errors.Is(err, memsecrets.ErrConflict) {
			t.Fatalf("create: %v, want ErrConflict", err)
		}
		if v := s.Secret("k"); string(v) != "theirs" {
			t.Fatalf("store holds %q, want theirs", v)
		}
	})
}
