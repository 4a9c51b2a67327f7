package aas

import (
	"crypto"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds the verifier arbitrary tokens: it must never panic and
// never accept anything but the one genuine token of the corpus.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := fx.adminToken(f)
	kid := fx.aas.KeyID()
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(craft(`{"alg":"none","kid":"`+kid+`"}`, `{"sub":"x","exp":99999999999}`, func(string) []byte { return nil }))
	f.Add(craft(`{"alg":"ES256","kid":"`+kid+`"}`, `{"sub":"x","exp":99999999999,"aud":["a"]}`, func(string) []byte { return make([]byte, 64) }))
	f.Add(craft(`{"alg":"ES256","kid":"`+kid+`","crit":[]}`, `[]`, func(string) []byte { return make([]byte, 64) }))
	f.Add("..")
	f.Add("e30.e30.")
	keys := map[string]crypto.PublicKey{kid: &fx.aas.signer.key.PublicKey}
	v, err := NewVerifierFromKeys(keys, VerifierConfig{
		Issuer: "trusted-compute-aas", Audience: "trusted-compute", Leeway: time.Second, Now: fx.clock.Now, CacheSize: 4,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err == nil && tok != good {
			t.Fatalf("accepted a token that is not the genuine one: %q → %+v", tok, c)
		}
		if err != nil && c != nil {
			t.Fatalf("claims returned with error %v", err)
		}
		r := httptest.NewRequestWithContext(t.Context(), "GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		(&Guard{verifier: v, logger: discardLogger()}).Authenticate(http.NotFoundHandler()).ServeHTTP(rec, r)
		if tok != good && strings.TrimSpace(tok) != good && rec.Code != http.StatusUnauthorized {
			t.Fatalf("middleware let %q through: %d", tok, rec.Code)
		}
	})
}

// FuzzParsePHC checks the stored-hash parser: no panic, and whatever it
// accepts has bounded cost parameters.
func FuzzParsePHC(f *testing.F) {
	h, err := hashPassword("seed password", Argon2Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(h))
	f.Add("$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$AAAA")
	f.Add("$argon2id$v=19$m=+64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.validate() != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
			t.Fatalf("accepted %q with params %+v", s, p)
		}
	})
}
