package bus

import (
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// userCreds makes a .creds file for a user of a fresh account, issued at iat
// and living ttl, with the seed of another user when mismatched.
func userCreds(t testing.TB, iat time.Time, ttl time.Duration, mismatched bool) []byte {
	return userCredsAllowing(t, "agent:H1", iat, ttl, mismatched, nil, nil)
}

// userCredsAllowing is userCreds for the user called name, allowed to
// subscribe to sub and publish on pub.
func userCredsAllowing(t testing.TB, name string, iat time.Time, ttl time.Duration, mismatched bool, sub, pub []string) []byte {
	t.Helper()
	acc, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
	pub0, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub0)
	uc.Name = name
	uc.Sub.Allow = sub
	uc.Pub.Allow = pub
	uc.IssuedAt = iat.Unix()
	uc.Expires = iat.Add(ttl).Unix()
	encoded, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	if mismatched {
		user, _ = nkeys.CreateUser()
	}
	seed, _ := user.Seed()
	// FormatUserConfig would refuse the mismatch; write the file by hand.
	j, err := jwt.DecorateJWT(encoded)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.DecorateSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(j, '\n'), s...)
}

func TestParseCredentials(t *testing.T) {
	t.Run("credentials are renewed two thirds into their lifetime", func(t *testing.T) {
		c, err := ParseCredentials(userCreds(t, time.Now(), 30*time.Hour, false))
		if err != nil {
			t.Fatal(err)
		}
		// Encode stamps its own issue time: allow a second's drift.
		if got, want := c.RenewAt().Sub(c.IssuedAt()), 20*time.Hour; got < want-time.Second || got > want+time.Second {
			t.Fatalf("renew %s after issue, want %s", got, want)
		}
		if c.Name() != "agent:H1" || c.UserPublicKey() == "" || c.Issuer() == "" {
			t.Fatalf("name %q key %q issuer %q", c.Name(), c.UserPublicKey(), c.Issuer())
		}
	})
	t.Run("a seed that does not belong to the jwt is refused", func(t *testing.T) {
		if _, err := ParseCredentials(userCreds(t, time.Now(), time.Hour, true)); err == nil {
			t.Fatal("mismatched credentials parsed")
		}
	})
	t.Run("garbage is refused", func(t *testing.T) {
		if _, err := ParseCredentials([]byte("not a creds file")); err == nil {
			t.Fatal("garbage parsed")
		}
	})
}

func TestTheGrammarOfCredentialsIsThatOfTheirPermissions(t *testing.T) {
	splitSub, splitPub, _ := AgentSubjects("H1", GrammarSplit)
	twoSub, twoPub, _ := AgentSubjects("H1", GrammarTwoPrefixes)
	otherSub, otherPub, _ := AgentSubjects("H2", GrammarTwoPrefixes)
	for _, tt := range []struct {
		name     string
		user     string
		sub, pub []string
		want     AgentGrammar
	}{
		{"permissions of the split grammar", "agent:H1", splitSub, splitPub, GrammarSplit},
		{"permissions of two prefixes", "agent:H1", twoSub, twoPub, GrammarTwoPrefixes},
		{"two prefixes of another host", "agent:H1", otherSub, otherPub, GrammarSplit},
		{"no permissions", "agent:H1", nil, nil, GrammarSplit},
		{"one prefix only", "agent:H1", twoSub, nil, GrammarSplit},
		{"more than two prefixes", "agent:H1", append(twoSub, "trust-reports.>"), twoPub, GrammarSplit},
		{"not an agent", "manager:am", twoSub, twoPub, GrammarSplit},
		{"an agent name that is no host id", "agent:H1.>", twoSub, twoPub, GrammarSplit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCredentials(userCredsAllowing(t, tt.user, time.Now(), time.Hour, false, tt.sub, tt.pub))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AgentGrammar(); got != tt.want {
				t.Fatalf("AgentGrammar() = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseCredentials parses arbitrary .creds files (read from disk, or a
// renewal answer): no panic, and anything accepted has a signed user JWT
// whose subject the seed's key is.
func FuzzParseCredentials(f *testing.F) {
	f.Add(userCreds(f, time.Now(), time.Hour, false))
	f.Add([]byte("-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n-----BEGIN USER NKEY SEED-----\nSUA\n------END USER NKEY SEED------\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCredentials(in)
		if err != nil {
			return
		}
		if c.UserPublicKey() == "" || c.Issuer() == "" {
			t.Fatalf("accepted credentials without keys: %+v", c.claims)
		}
		if _, err := c.Sign([]byte("nonce")); err != nil {
			t.Fatalf("accepted credentials do not sign: %v", err)
		}
	})
}
