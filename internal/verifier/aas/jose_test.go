package aas

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"trustedcompute.io/tc/internal/testca"
)

// The AAS signs and verifies through go-jose v4 (issue 10). These tests pin
// the wire format, so tokens and key ids stay what clients already know.

func TestTheKeyIDIsTheRFC7638Thumbprint(t *testing.T) {
	key := testca.NewKey(t)
	raw, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	canon := `{"crv":"P-256","kty":"EC","x":"` + b64url.EncodeToString(raw[1:33]) + `","y":"` + b64url.EncodeToString(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(canon))
	got, err := KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if want := b64url.EncodeToString(sum[:]); got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
}

func TestTheTokenHeaderIsUnchanged(t *testing.T) {
	f := newFixture(t)
	tok := f.adminToken(t)
	h, _, _ := strings.Cut(tok, ".")
	b, err := b64url.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"alg":"ES256","kid":"` + f.aas.KeyID() + `","typ":"JWT"}`; string(b) != want {
		t.Fatalf("header %s, want %s", b, want)
	}
}

// TestATokenSignedTheOldWayStillVerifies signs a compact JWS by hand, as the
// AAS did before go-jose (raw r||s, 64 bytes), and verifies it.
func TestATokenSignedTheOldWayStillVerifies(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	claims := mustJSON(t, &tokenClaims{Subject: "u", Issuer: "trusted-compute-aas", Audience: jwt.Audience{"trusted-compute"},
		ExpiresAt: now.Add(time.Hour).Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), ID: "j"})
	tok := craft(`{"alg":"ES256","kid":"`+f.aas.KeyID()+`","typ":"JWT"}`, claims, func(in string) []byte {
		d := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, f.aas.signer.key, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	})
	c, err := f.aas.Verifier().Verify(tok)
	if err != nil || c.Subject != "u" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
}
