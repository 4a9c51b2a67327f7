package busserver

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

func TestNewAuthorityKeys(t *testing.T) {
	t.Run("a second start with the same store yields the same keys", func(t *testing.T) {
		store := memsecrets.New()
		a1, err := NewAuthority(context.Background(), store, errNotFound)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := NewAuthority(context.Background(), store, errNotFound)
		if err != nil {
			t.Fatal(err)
		}
		if a1.AccountPublicKey() != a2.AccountPublicKey() || a1.OperatorJWT() == "" ||
			a1.operatorPub != a2.operatorPub || a1.SystemAccountPublicKey() != a2.SystemAccountPublicKey() {
			t.Error("keys differ between two starts on one store")
		}
		if store.Len() != 3 {
			t.Errorf("store holds %d secrets, want 3", store.Len())
		}
	})

	t.Run("two stores yield different keys", func(t *testing.T) {
		a, b := newTestAuthority(t), newTestAuthority(t)
		if a.AccountPublicKey() == b.AccountPublicKey() {
			t.Error("two fresh authorities share an account key")
		}
	})

	t.Run("a replica that loses the creation race uses the stored seed", func(t *testing.T) {
		store := memsecrets.New()
		winner, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		winnerSeed, _ := winner.Seed()
		winnerPub, _ := winner.PublicKey()
		store.BeforeCreate = func(name string) {
			if name == AccountSeedSecret {
				store.Put(name, winnerSeed) // the other replica got there first
			}
		}
		a, err := NewAuthority(context.Background(), store, errNotFound)
		if err != nil {
			t.Fatal(err)
		}
		if a.AccountPublicKey() != winnerPub {
			t.Errorf("account key %s, want the stored %s", a.AccountPublicKey(), winnerPub)
		}
	})

	boom := errors.New("disk on fire")
	userSeed := func() []byte {
		kp, _ := nkeys.CreateUser()
		s, _ := kp.Seed()
		return s
	}()
	tests := []struct {
		name    string
		setup   func(*memsecrets.Store)
		wantErr error
	}{
		{"a store read error other than not found is returned", func(s *memsecrets.Store) { s.GetErr = boom }, boom},
		{"a user seed stored as the operator seed is refused", func(s *memsecrets.Store) { s.Put(OperatorSeedSecret, userSeed) }, nil},
		{"garbage stored as the account seed is refused", func(s *memsecrets.Store) { s.Put(AccountSeedSecret, []byte("SUnot-a-seed")) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memsecrets.New()
			tt.setup(store)
			_, err := NewAuthority(context.Background(), store, errNotFound)
			if err == nil {
				t.Fatal("NewAuthority succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestCredentialClaims(t *testing.T) {
	store := memsecrets.New()
	a, err := NewAuthority(context.Background(), store, errNotFound)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	tests := []struct {
		name                        string
		issue                       func() ([]byte, error)
		pubAllow, pubDeny, subAllow []string
		resp                        bool
		connTypes                   []string
	}{
		{
			name:      "an agent may hear its own requests, raise its own events, answer and renew its own credentials",
			issue:     func() ([]byte, error) { return a.AgentCredentials("H1", bus.GrammarSplit, time.Hour) },
			pubAllow:  []string{"trust-events.H1.>", "trust-credentials.H1.renew", "trust-secrets.H1.request"},
			subAllow:  []string{"trust-agent.H1.>", "trust-credentials.H1.issued", "trust-secrets.H1.answer"},
			resp:      true,
			connTypes: []string{jwt.ConnectionTypeStandard},
		},
		{
			name:      "an agent of two prefixes may hear what is for its host and publish what is from it, nothing else",
			issue:     func() ([]byte, error) { return a.AgentCredentials("H1", bus.GrammarTwoPrefixes, time.Hour) },
			pubAllow:  []string{"trust-events.H1.>"},
			subAllow:  []string{"trust-agent.H1.>"},
			resp:      true,
			connTypes: []string{jwt.ConnectionTypeStandard},
		},
		{
			name:      "a service may request agents, publish reports, hear events and replies and answer renewals",
			issue:     func() ([]byte, error) { return a.ServiceCredentials("hvs", time.Hour) },
			pubAllow:  []string{"trust-agent.>", "trust-reports.>", "trust-credentials.*.issued", "trust-credentials-manager.*.issued", "trust-secrets.*.answer", "trust-verifier.revocations"},
			subAllow:  []string{"trust-events.>", "_INBOX.>", "trust-credentials.*.renew", "trust-credentials-manager.*.renew", "trust-secrets.*.request", "trust-verifier.revocations"},
			connTypes: []string{jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess},
		},
		{
			name:      "a manager may only hear reports and renew its own credentials",
			issue:     func() ([]byte, error) { return a.ManagerCredentials("manager", time.Hour) },
			pubAllow:  []string{"trust-credentials-manager.manager.renew"},
			subAllow:  []string{"trust-reports.>", "trust-credentials-manager.manager.issued"},
			connTypes: []string{jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := mustCreds(t)(tt.issue())
			userJWT, err := jwt.ParseDecoratedJWT(creds)
			if err != nil {
				t.Fatal(err)
			}
			uc, err := jwt.DecodeUserClaims(userJWT)
			if err != nil {
				t.Fatal(err)
			}
			if uc.Issuer != a.AccountPublicKey() {
				t.Errorf("issuer %s, want the account %s", uc.Issuer, a.AccountPublicKey())
			}
			if want := now.Add(time.Hour).Unix(); uc.Expires != want {
				t.Errorf("expires %d, want %d", uc.Expires, want)
			}
			check := func(what string, got, want []string) {
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("pub allow", uc.Pub.Allow, tt.pubAllow)
			check("pub deny", uc.Pub.Deny, tt.pubDeny)
			check("sub allow", uc.Sub.Allow, tt.subAllow)
			check("sub deny", uc.Sub.Deny, nil)
			check("connection types", uc.AllowedConnectionTypes, tt.connTypes)
			if tt.resp != (uc.Resp != nil) {
				t.Fatalf("resp = %+v, want set: %v", uc.Resp, tt.resp)
			}
			if uc.Resp != nil && (uc.Resp.MaxMsgs != 1 || uc.Resp.Expires != ResponseWindow) {
				t.Errorf("resp = %+v, want 1 message within %s", *uc.Resp, ResponseWindow)
			}
			if uc.BearerToken {
				t.Error("bearer token set: the seed would not be needed to connect")
			}
			for _, secret := range []string{OperatorSeedSecret, AccountSeedSecret, SystemAccountSeedSecret} {
				if seed := store.Secret(secret); len(seed) == 0 || bytes.Contains(creds, seed) {
					t.Errorf("credentials contain the %s (or it was not stored)", secret)
				}
			}
		})
	}
}

func TestCredentialsRefused(t *testing.T) {
	a := newTestAuthority(t)
	tests := []struct {
		name  string
		issue func() ([]byte, error)
	}{
		{"an agent host id with a dot is refused", func() ([]byte, error) { return a.AgentCredentials("H1.>", bus.GrammarSplit, time.Hour) }},
		{"an agent host id that is a wildcard is refused", func() ([]byte, error) { return a.AgentCredentials("*", bus.GrammarSplit, time.Hour) }},
		{"an empty agent host id is refused", func() ([]byte, error) { return a.AgentCredentials("", bus.GrammarSplit, time.Hour) }},
		{"a service name with a space is refused", func() ([]byte, error) { return a.ServiceCredentials("h v s", time.Hour) }},
		{"credentials without a lifetime are refused", func() ([]byte, error) { return a.AgentCredentials("H1", bus.GrammarSplit, 0) }},
		{"credentials living longer than a year are refused", func() ([]byte, error) { return a.ManagerCredentials("m", 400*24*time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if creds, err := tt.issue(); err == nil {
				t.Errorf("issued %d bytes of credentials, want an error", len(creds))
			}
		})
	}
}
