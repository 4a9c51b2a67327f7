package aasstore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/store"

	"trustedcompute.io/tc/internal/clock"
)

// selfSigned issues a self-signed certificate for the signing key.
type selfSigned struct{ now func() time.Time }

func (s selfSigned) IssueSigning(pub crypto.PublicKey, cn string, ttl time.Duration) ([]*x509.Certificate, error) {
	ca, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c, err := cms.Certify(&x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: s.now(), NotAfter: s.now().Add(ttl),
	}, &x509.Certificate{Subject: pkix.Name{CommonName: "ca"}}, pub, ca)
	return []*x509.Certificate{c}, err
}

type noCreds struct{}

func (noCreds) AgentCredentials(string, bus.AgentGrammar, time.Duration) ([]byte, error) {
	return nil, errors.New("none")
}
func (noCreds) ServiceCredentials(string, time.Duration) ([]byte, error) {
	return nil, errors.New("none")
}
func (noCreds) ManagerCredentials(string, time.Duration) ([]byte, error) {
	return nil, errors.New("none")
}

func TestTheAASRunsOnTheRealStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := clock.NewFake(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	const pw = "the admin's long password"
	cfg := aas.Config{Argon2: aas.Argon2Params{Memory: 64, Time: 1, Threads: 1}, AdminPassword: pw, Now: clk.Now}
	logger := slog.New(slog.DiscardHandler)
	a, err := aas.New(ctx, cfg, New(st), selfSigned{clk.Now}, noCreds{}, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tok, err := a.Login(ctx, "admin", pw)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := a.Verifier().Verify(tok); err != nil {
		t.Fatalf("verify: %v", err)
	}
	for range 5 {
		if _, err := a.Login(ctx, "admin", "wrong password!!"); err == nil {
			t.Fatal("a wrong password logged in")
		}
	}
	if _, err := a.Login(ctx, "admin", pw); err == nil {
		t.Fatal("the right password logged in while locked")
	}
	clk.Advance(15 * time.Minute)
	if _, err := a.Login(ctx, "admin", pw); err != nil {
		t.Fatalf("login after the lock: %v", err)
	}
	a2, err := aas.New(ctx, aas.Config{Argon2: cfg.Argon2, Now: clk.Now}, New(st), selfSigned{clk.Now}, noCreds{}, logger)
	if err != nil {
		t.Fatalf("restart without an admin password: %v", err)
	}
	if a2.KeyID() != a.KeyID() {
		t.Error("the signing key changed across a restart")
	}
	if _, err := New(st).UserByName(ctx, "nobody"); !errors.Is(err, aas.ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v; want both sentinels", err)
	}
	if err := New(st).CreateUser(ctx, aas.User{ID: "x", Name: "admin", PasswordHash: []byte("h")}); !errors.Is(err, aas.ErrConflict) {
		t.Errorf("duplicate user: %v; want aas.ErrConflict", err)
	}
}
