package aas

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/auth"
)

func TestLoginTokenCarriesTheUsersRolesAndPermissions(t *testing.T) {
	f := newFixture(t)
	rec := f.login(t, "admin", adminPassword)
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/jwt" {
		t.Errorf("content type %q, want application/jwt", ct)
	}
	tok := rec.Body.String()
	c, err := f.aas.Verifier().Verify(tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	admin, err := f.store.UserByName(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != admin.ID {
		t.Errorf("sub %q, want the admin's id %q", c.Subject, admin.ID)
	}
	for _, svc := range []string{"AAS", "CMS", "HVS"} {
		if len(c.HasRole(svc, "Administrator")) != 1 {
			t.Errorf("no %s:Administrator role in %+v", svc, c.Roles)
		}
		if !c.Allows(svc, auth.Rule{Resource: "users", Action: "create", Selector: "*"}) {
			t.Errorf("claims do not allow %s users:create:*", svc)
		}
	}
	h, cl := decodeParts(t, tok)
	if h["alg"] != "ES256" || h["kid"] != f.aas.KeyID() {
		t.Errorf("header %v, want ES256 with kid %s", h, f.aas.KeyID())
	}
	now := f.clock.Now().Unix()
	for k, want := range map[string]any{
		"iss": "trusted-compute-aas", "aud": "trusted-compute", "name": "admin",
		"iat": float64(now), "nbf": float64(now), "exp": float64(now + 3600),
	} {
		if cl[k] != want {
			t.Errorf("claim %s = %v, want %v", k, cl[k], want)
		}
	}
	if jti, _ := cl["jti"].(string); jti == "" {
		t.Error("no jti")
	}
}

func decodeParts(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var h, c map[string]any
	for i, v := range []*map[string]any{&h, &c} {
		b, err := b64url.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return h, c
}

// craft builds a token from a raw header and claims, signed by sign.
func craft(header, claims string, sign func(input string) []byte) string {
	in := b64url.EncodeToString([]byte(header)) + "." + b64url.EncodeToString([]byte(claims))
	return in + "." + b64url.EncodeToString(sign(in))
}

func TestVerifierRefusesEveryBadToken(t *testing.T) {
	f := newFixture(t)
	good := f.adminToken(t)
	kid := f.aas.KeyID()
	now := f.clock.Now()
	claims := func(edit func(*tokenClaims)) *tokenClaims {
		c := &tokenClaims{Subject: "u", Issuer: "trusted-compute-aas", Audience: jwt.Audience{"trusted-compute"},
			ExpiresAt: now.Add(time.Hour).Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), ID: "j"}
		if edit != nil {
			edit(c)
		}
		return c
	}
	signed := func(kid string, c *tokenClaims) string {
		tok, err := signToken(f.aas.signer.key, kid, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherKey := testca.NewKey(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&f.aas.signer.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	payload := mustJSON(t, claims(nil))
	hs256 := func(secret []byte) func(string) []byte {
		return func(in string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return m.Sum(nil)
		}
	}
	parts := strings.Split(good, ".")
	sig, _ := b64url.DecodeString(parts[2])
	sig[10] ^= 1
	flipped := parts[0] + "." + parts[1] + "." + b64url.EncodeToString(sig)
	tampered := parts[0] + "." + b64url.EncodeToString([]byte(strings.Replace(mustJSON(t, claims(nil)), `"sub":"u"`, `"sub":"admin"`, 1))) + "." + parts[2]

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"an empty token is missing", "", ErrTokenMissing},
		{"garbage is malformed", "not a token", ErrTokenMalformed},
		{"four parts are malformed", good + ".x", ErrTokenMalformed},
		{"a flipped signature bit is a bad signature", flipped, ErrTokenSignature},
		{"claims changed under a valid signature are a bad signature", tampered, ErrTokenSignature},
		{"alg none is refused", craft(`{"alg":"none","kid":"`+kid+`"}`, payload, func(string) []byte { return nil }), ErrTokenAlgorithm},
		{"alg None is refused", craft(`{"alg":"None","kid":"`+kid+`"}`, payload, func(string) []byte { return nil }), ErrTokenAlgorithm},
		{"HS256 keyed with the public key PEM is refused", craft(`{"alg":"HS256","kid":"`+kid+`"}`, payload, hs256(pubPEM)), ErrTokenAlgorithm},
		{"HS256 keyed with the public key DER is refused", craft(`{"alg":"HS256","kid":"`+kid+`"}`, payload, hs256(pubDER)), ErrTokenAlgorithm},
		{"RS256 is refused", craft(`{"alg":"RS256","kid":"`+kid+`"}`, payload, func(string) []byte { return make([]byte, 256) }), ErrTokenAlgorithm},
		{"a token without kid is refused", signed("", claims(nil)), ErrTokenUnknownKey},
		{"a token with an unknown kid is refused", signed("someone-else", claims(nil)), ErrTokenUnknownKey},
		{"another key under our kid is a bad signature", func() string {
			tok, err := signToken(otherKey, kid, claims(nil))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(), ErrTokenSignature},
		{"a crit header is refused", craft(`{"alg":"ES256","kid":"`+kid+`","crit":["exp"]}`, payload, func(string) []byte { return make([]byte, 64) }), ErrTokenMalformed},
		{"a wrong issuer is refused", signed(kid, claims(func(c *tokenClaims) { c.Issuer = "evil" })), ErrTokenIssuer},
		{"a wrong audience is refused", signed(kid, claims(func(c *tokenClaims) { c.Audience = jwt.Audience{"other", "more"} })), ErrTokenAudience},
		{"an expired token is refused", signed(kid, claims(func(c *tokenClaims) { c.ExpiresAt = now.Add(-31 * time.Second).Unix() })), ErrTokenExpired},
		{"a token without exp is refused", signed(kid, claims(func(c *tokenClaims) { c.ExpiresAt = 0 })), ErrTokenMalformed},
		{"a token from the future is refused", signed(kid, claims(func(c *tokenClaims) { c.NotBefore = now.Add(time.Minute).Unix() })), ErrTokenNotYetValid},
		{"a huge token is refused unread", strings.Repeat("a", MaxTokenBytes+1), ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.aas.Verifier().Verify(tt.token)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Verify = %v, %v; want error %v", c, err, tt.want)
			}
		})
	}
	t.Run("the good token itself is accepted", func(t *testing.T) {
		if _, err := f.aas.Verifier().Verify(good); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an expired token within the leeway is accepted", func(t *testing.T) {
		tok := signed(kid, claims(func(c *tokenClaims) { c.ExpiresAt = now.Add(-4 * time.Second).Unix() }))
		if _, err := f.aas.Verifier().Verify(tok); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a token more than 5 s past exp is refused by default", func(t *testing.T) {
		tok := signed(kid, claims(func(c *tokenClaims) { c.ExpiresAt = now.Add(-6 * time.Second).Unix() }))
		if _, err := f.aas.Verifier().Verify(tok); !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("Verify = %v, want %v", err, ErrTokenExpired)
		}
	})
}

func TestACachedTokenStillExpires(t *testing.T) {
	for _, size := range []int{-1, 16} {
		f := newFixture(t, func(c *Config) { c.VerifyCacheSize = size })
		tok := f.adminToken(t)
		if _, err := f.aas.Verifier().Verify(tok); err != nil {
			t.Fatalf("cache %d: fresh token: %v", size, err)
		}
		f.clock.Advance(time.Hour + 31*time.Second)
		if _, err := f.aas.Verifier().Verify(tok); !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("cache %d: after an hour: %v, want %v", size, err, ErrTokenExpired)
		}
	}
}

func TestTheTokenCacheStaysBounded(t *testing.T) {
	c := newTokenCache(3)
	now := time.Unix(1000, 0)
	for i := range 10 {
		c.put(string(rune('a'+i)), &verified{claims: &auth.Claims{}, exp: now.Add(time.Hour)}, now)
	}
	if n := len(c.entries); n > 3 {
		t.Fatalf("cache holds %d entries, bound is 3", n)
	}
	if _, ok := c.get("j"); !ok {
		t.Error("the last token put is not cached")
	}
}

// TestOtherProcessesVerifyTokensFromThePublishedKeys checks that the
// published keys verify a token with a standard JOSE library alone: the PEM
// of jwt-certificates, whose signing certificate chains to the CMS root,
// and the JWKS, whose key has the token's kid as its thumbprint.
func TestOtherProcessesVerifyTokensFromThePublishedKeys(t *testing.T) {
	f := newFixture(t)
	tok := f.adminToken(t)
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.root)
	verifyWith := func(t *testing.T, key any) {
		t.Helper()
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var claims jwt.Claims
		if err := parsed.Claims(key, &claims); err != nil {
			t.Fatalf("the token does not verify with the published key: %v", err)
		}
		if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "trusted-compute-aas", AnyAudience: jwt.Audience{"trusted-compute"},
			Time: f.clock.Now()}, 0); err != nil {
			t.Errorf("claims: %v", err)
		}
	}

	t.Run("jwt-certificates", func(t *testing.T) {
		rec := f.do(t, request{method: "GET", path: "/aas/v1/jwt-certificates"})
		var leaves []*x509.Certificate
		inter := x509.NewCertPool()
		for _, c := range testca.ParseCerts(t, rec.Body.Bytes()) {
			if c.IsCA {
				inter.AddCert(c)
			} else {
				leaves = append(leaves, c)
			}
		}
		if len(leaves) != 1 {
			t.Fatalf("jwt-certificates has %d signing certificates, want 1", len(leaves))
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: f.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := leaves[0].Verify(opts); err != nil {
			t.Fatalf("the signing certificate does not chain to the CMS root: %v", err)
		}
		opts.Roots = x509.NewCertPool()
		opts.Roots.AddCert(newFakeCA(t, f.clock.Now).root)
		if _, err := leaves[0].Verify(opts); err == nil {
			t.Error("the signing certificate chains to another root")
		}
		verifyWith(t, leaves[0].PublicKey)
	})

	t.Run("jwks", func(t *testing.T) {
		set := decode[jose.JSONWebKeySet](t, f.do(t, request{method: "GET", path: "/aas/v1/jwks"}))
		keys := set.Key(f.aas.KeyID())
		if len(set.Keys) != 1 || len(keys) != 1 || len(keys[0].Certificates) != 3 {
			t.Fatalf("jwks %+v: want one key with kid %s and a chain of 3", set, f.aas.KeyID())
		}
		if sum, err := keys[0].Thumbprint(crypto.SHA256); err != nil || base64.RawURLEncoding.EncodeToString(sum) != keys[0].KeyID {
			t.Errorf("kid %s is not the key's thumbprint (%v)", keys[0].KeyID, err)
		}
		verifyWith(t, keys[0].Key)
	})
}

func TestTheSigningCertificateIsReissuedBeforeItExpires(t *testing.T) {
	f := newFixture(t)
	old := f.adminToken(t)
	if n := f.ca.Issued(); n != 1 {
		t.Fatalf("issued %d certificates at start, want 1", n)
	}
	f.clock.Advance(19 * 24 * time.Hour) // more than a third of 30 days left
	f.adminToken(t)
	if n := f.ca.Issued(); n != 1 {
		t.Fatalf("re-issued too early: %d certificates", n)
	}
	f.clock.Advance(2 * 24 * time.Hour) // 9 days left
	f.adminToken(t)
	if n := f.ca.Issued(); n != 2 {
		t.Fatalf("issued %d certificates, want a re-issue", n)
	}
	rec := f.do(t, request{method: "GET", path: "/aas/v1/jwt-certificates"})
	leaves := slices.DeleteFunc(testca.ParseCerts(t, rec.Body.Bytes()), func(c *x509.Certificate) bool { return c.IsCA })
	if len(leaves) != 2 {
		t.Fatalf("jwt-certificates has %d signing certificates, want current and previous", len(leaves))
	}
	f.clock.Advance(-21*24*time.Hour + 30*time.Minute)
	if _, err := f.aas.Verifier().Verify(old); err != nil {
		t.Errorf("a token signed before the re-issue no longer verifies: %v", err)
	}
}

func TestAFailedReissueKeepsTheCurrentCertificate(t *testing.T) {
	f := newFixture(t)
	f.ca.fail = errors.New("cms down")
	f.clock.Advance(25 * 24 * time.Hour)
	if rec := f.login(t, "admin", adminPassword); rec.Code != http.StatusOK {
		t.Fatalf("login while the CMS is down: %d %s", rec.Code, rec.Body)
	}
}
