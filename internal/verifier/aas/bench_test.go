package aas

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthenticate measures the middleware on a valid token, with the
// verified-token cache and without it.
func BenchmarkAuthenticate(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, func(c *Config) { c.VerifyCacheSize = bc.cache })
			tok := f.adminToken(b)
			ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
			h := f.aas.Authenticate(ok)
			r := httptest.NewRequestWithContext(b.Context(), "GET", "/hvs/v2/hosts", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusNoContent {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkVerify measures Verifier.Verify alone, without the cache.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.VerifyCacheSize = -1 })
	tok := f.adminToken(b)
	v := f.aas.Verifier()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashPassword measures one hash with the default parameters.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := hashPassword("a long enough password", DefaultArgon2Params); err != nil {
			b.Fatal(err)
		}
	}
}
