package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/store"
)

// racingStore is the real store with another replica that creates its
// privacy CA between this replica's read and create.
type racingStore struct {
	*store.Store
	other func()
}

func (s *racingStore) CreateSecret(ctx context.Context, name string, value []byte) error {
	if s.other != nil {
		s.other()
		s.other = nil
	}
	return s.Store.CreateSecret(ctx, name, value)
}

func TestPrivacyCA(t *testing.T) {
	ctx := context.Background()
	agent := failingAgent{err: errors.New("unused")}

	t.Run("a new privacy ca is a p-384 self-signed ca", func(t *testing.T) {
		e := newEnroller(t, Config{}, openStore(t), agent)
		root := e.PrivacyCARoot()
		key, ok := root.PublicKey.(*ecdsa.PublicKey)
		if !ok || key.Curve != elliptic.P384() {
			t.Fatalf("privacy CA key %T, want ECDSA P-384", root.PublicKey)
		}
		if !root.IsCA || root.Subject.CommonName != PrivacyCACommonName || root.CheckSignatureFrom(root) != nil {
			t.Fatalf("privacy CA: CA %v, CN %q", root.IsCA, root.Subject.CommonName)
		}
		if got := time.Until(root.NotAfter); got < 9*365*24*time.Hour {
			t.Errorf("privacy CA valid for %s, want about 10 years", got)
		}
	})
	t.Run("a replica that loses the race to create the ca uses the winner's", func(t *testing.T) {
		st := openStore(t)
		var winner *Enroller
		rs := &racingStore{Store: st, other: func() { winner = newEnroller(t, Config{}, st, agent) }}
		loser := newEnroller(t, Config{}, rs, agent)
		if winner == nil || !loser.PrivacyCARoot().Equal(winner.PrivacyCARoot()) {
			t.Fatal("the two replicas have different privacy CAs")
		}
	})
	t.Run("an ak certificate never outlives the privacy ca", func(t *testing.T) {
		e := newEnroller(t, Config{PrivacyCAValidity: time.Hour}, openStore(t), agent)
		key := ecdsaKey(t)
		cert, err := e.ca.issueAK(key, "H1", time.Now(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if cert.NotAfter.After(e.PrivacyCARoot().NotAfter) {
			t.Fatalf("ak certificate ends %s, after the CA's %s", cert.NotAfter, e.PrivacyCARoot().NotAfter)
		}
	})

	broken := []struct {
		name    string
		secret  func(t *testing.T) []byte
		now     time.Time
		wantErr string
	}{
		{"a stored ca that is no pem is refused", func(*testing.T) []byte { return []byte("garbage") }, time.Time{}, "PRIVATE KEY"},
		{"a stored ca whose key is another's is refused", func(t *testing.T) []byte {
			a := newEnroller(t, Config{}, openStore(t), agent).ca
			b := newEnroller(t, Config{}, openStore(t), agent).ca
			enc, err := (&privacyCA{cert: a.cert, key: b.key}).encode()
			if err != nil {
				t.Fatal(err)
			}
			return enc
		}, time.Time{}, "does not match"},
		{"an expired stored ca is refused", func(t *testing.T) []byte {
			enc, err := newEnroller(t, Config{PrivacyCAValidity: time.Hour}, openStore(t), agent).ca.encode()
			if err != nil {
				t.Fatal(err)
			}
			return enc
		}, time.Now().Add(2 * time.Hour), "expired"},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			if err := st.CreateSecret(ctx, PrivacyCASecret, tt.secret(t)); err != nil {
				t.Fatal(err)
			}
			cfg := Config{}
			if !tt.now.IsZero() {
				cfg.Now = func() time.Time { return tt.now }
			}
			_, err := New(ctx, cfg, st, agent, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("a negative validity is a config error", func(t *testing.T) {
		_, err := New(ctx, Config{ChallengeTTL: -time.Second}, openStore(t), agent, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "ChallengeTTL") {
			t.Fatalf("New err = %v, want a ChallengeTTL error", err)
		}
	})
}

func ecdsaKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	return &testca.NewKey(t).PublicKey
}
