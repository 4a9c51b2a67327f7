package report

import (
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
)

// forge builds a compact JWS from parts a signer would never produce.
func forge(t testing.TB, header any, payload, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(payload) + "." + enc(sig)
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ca := newCA(t)
	for _, tt := range []struct {
		name  string
		curve elliptic.Curve
		alg   string
	}{
		{"a P-256 key signs with ES256", elliptic.P256(), "ES256"},
		{"a P-384 key signs with ES384", elliptic.P384(), "ES384"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSigner(t, ca, tt.curve)
			want := trustedReport()
			failIMA(want)
			jws, err := s.Sign(want)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			header, _ := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
			var h signerid.JWSHeader
			if err := json.Unmarshal(header, &h); err != nil || h.Alg != tt.alg || h.Typ != TypeReport || len(h.X5C) != 3 {
				t.Fatalf("header %s, want alg %s, typ %s and a chain of 3 (%v)", header, tt.alg, TypeReport, err)
			}
			got, err := Verify(jws, ca.RootPool(), t0.Add(time.Minute))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Errorf("verified report differs\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	ca, s, good := signedReport(t)
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var header signerid.JWSHeader
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(h, &header); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)

	other := newSigner(t, newCA(t), elliptic.P256())
	fromOtherCA, _ := other.Sign(trustedReport())

	expiring := newKey(t, elliptic.P256())
	shortChain, err := ca.IssueVerifierSigning(expiring.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	short, _ := NewSigner(expiring, shortChain)
	longReport := trustedReport()
	longReport.Expiration = t0.Add(48 * time.Hour)
	fromExpiredCert, _ := short.Sign(longReport)

	tlsKey := newKey(t, elliptic.P256())
	tlsChain, err := ca.IssueTLSClient(tlsKey.Public(), "hvs", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsSigner, err := NewSigner(tlsKey, tlsChain)
	if err != nil {
		t.Fatal(err)
	}
	fromTLSCert, _ := tlsSigner.Sign(trustedReport())

	tampered := append([]byte(nil), payload...)
	tampered[len(tampered)/2] ^= 0x01
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	badSig := append([]byte(nil), sig...)
	badSig[5] ^= 0x80

	mac := hmac.New(sha256.New, []byte(header.X5C[0]))
	mac.Write([]byte(parts[0] + "." + parts[1]))

	withUnknownField, _ := s.sign(TypeReport, append(payload[:len(payload)-1:len(payload)-1], []byte(`,"admin":true}`)...))
	withTrailingData, _ := s.sign(TypeReport, append(append([]byte(nil), payload...), []byte(` {}`)...))
	ear, _ := s.EAR(trustedReport(), "", now)

	tests := []struct {
		name  string
		token string
		roots bool
		now   time.Time
		want  error
	}{
		{"a payload with one byte changed", forge(t, header, tampered, sig), true, now, ErrSignatureInvalid},
		{"a signature with one bit changed", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(badSig), true, now, ErrSignatureInvalid},
		{"a truncated signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:63]), true, now, ErrSignatureInvalid},
		{"a certificate of another CA", fromOtherCA, true, now, ErrCertificateUntrusted},
		{"a signing certificate that has expired at now", fromExpiredCert, true, t0.Add(2 * time.Hour), ErrCertificateUntrusted},
		{"a TLS client certificate of the same CMS", fromTLSCert, true, now, ErrCertificateUntrusted},
		{"no roots at all", good, false, now, ErrCertificateUntrusted},
		{"no verification time", good, true, time.Time{}, ErrCertificateUntrusted},
		{"alg none without a signature", forge(t, signerid.JWSHeader{Alg: "none", Typ: TypeReport, X5C: header.X5C}, payload, nil), true, now, ErrAlgorithmNotAllowed},
		{"alg HS256 keyed with the public certificate", forge(t, signerid.JWSHeader{Alg: "HS256", Typ: TypeReport, X5C: header.X5C}, payload, mac.Sum(nil)), true, now, ErrAlgorithmNotAllowed},
		{"alg ES384 over a P-256 certificate", forge(t, signerid.JWSHeader{Alg: "ES384", Typ: TypeReport, X5C: header.X5C}, payload, sig), true, now, ErrAlgorithmNotAllowed},
		{"no x5c header", forge(t, map[string]string{"alg": "ES256", "typ": TypeReport}, payload, sig), true, now, ErrMalformed},
		{"an unknown header field", forge(t, map[string]any{"alg": "ES256", "typ": TypeReport, "x5c": header.X5C, "jku": "https://evil"}, payload, sig), true, now, ErrMalformed},
		{"an EAR token in place of a report", ear, true, now, ErrMalformed},
		{"a payload with an unknown field", withUnknownField, true, now, ErrMalformed},
		{"a payload with trailing data", withTrailingData, true, now, ErrMalformed},
		{"a report that has expired at now", good, true, t0.Add(2 * time.Hour), ErrExpired},
		{"two parts only", parts[0] + "." + parts[1], true, now, ErrMalformed},
		{"four parts", good + ".x", true, now, ErrMalformed},
		{"padding in the signature", good + "=", true, now, ErrMalformed},
		{"an empty token", "", true, now, ErrMalformed},
	}
	// Each case runs against the function and against a Verifier whose
	// cache already holds the chains of every token, checked at a time
	// when they were valid: the cache must not turn a refusal into a pass.
	verifiers := map[string]func(pool *x509.CertPool) func(string, time.Time) (*Report, error){
		"Verify": func(pool *x509.CertPool) func(string, time.Time) (*Report, error) {
			return func(tok string, now time.Time) (*Report, error) { return Verify(tok, pool, now) }
		},
		"a warm Verifier": func(pool *x509.CertPool) func(string, time.Time) (*Report, error) {
			v := NewVerifier(pool)
			for _, tok := range []string{good, fromExpiredCert, fromOtherCA, fromTLSCert} {
				_, _ = v.Verify(tok, now)
			}
			return v.Verify
		},
	}
	for vname, newVerify := range verifiers {
		for _, tt := range tests {
			t.Run(vname+"/"+tt.name, func(t *testing.T) {
				pool := ca.RootPool()
				if !tt.roots {
					pool = nil
				}
				r, err := newVerify(pool)(tt.token, tt.now)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify error = %v, want %v", err, tt.want)
				}
				if r != nil {
					t.Errorf("Verify returned a report with the error %v", err)
				}
			})
		}
	}
	// The good token passes, so every refusal above is for its own reason.
	if _, err := Verify(good, ca.RootPool(), now); err != nil {
		t.Fatalf("Verify(good): %v", err)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	ca := newCA(t)
	key := newKey(t, elliptic.P256())
	chain, err := ca.IssueSigning(key.Public(), "signer", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p521 := newKey(t, elliptic.P521())
	tests := []struct {
		name string
		run  func() (*Signer, error)
	}{
		{"a key that is not the leaf's key", func() (*Signer, error) { return NewSigner(newKey(t, elliptic.P256()), chain) }},
		{"an RSA key", func() (*Signer, error) { return NewSigner(rsaKey, chain) }},
		{"a P-521 key", func() (*Signer, error) { return NewSigner(p521, chain) }},
		{"an empty chain", func() (*Signer, error) { return NewSigner(key, nil) }},
		{"a nil leaf", func() (*Signer, error) { return NewSigner(key, []*x509.Certificate{nil}) }},
		{"no key", func() (*Signer, error) { return NewSigner(nil, chain) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := tt.run(); err == nil || s != nil {
				t.Fatalf("NewSigner = %v, %v; want an error", s, err)
			}
		})
	}
}

func TestSignRefusesAReportWithoutExpiration(t *testing.T) {
	s := newSigner(t, newCA(t), elliptic.P256())
	r := trustedReport()
	r.Expiration = time.Time{}
	if _, err := s.Sign(r); err == nil {
		t.Fatal("Sign accepted a report without expiration")
	}
	r.Expiration = r.Created.Add(-time.Second)
	if _, err := s.Sign(r); err == nil {
		t.Fatal("Sign accepted a report that expires before it was created")
	}
}

func TestVerifierReusesACheckedChainOnlyWhileItIsValid(t *testing.T) {
	ca := newCA(t)
	key := newKey(t, elliptic.P256())
	chain, err := ca.IssueVerifierSigning(key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	r := trustedReport()
	r.Expiration = t0.Add(48 * time.Hour)
	tok, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(ca.RootPool())
	for _, tt := range []struct {
		name string
		at   time.Time
		want error
	}{
		{"the first verification checks the chain", t0.Add(time.Minute), nil},
		{"a second verification within the validity passes", t0.Add(30 * time.Minute), nil},
		{"a verification after the leaf expired fails", t0.Add(2 * time.Hour), ErrCertificateUntrusted},
		{"a verification before the leaf was valid fails", t0.Add(-24 * time.Hour), ErrCertificateUntrusted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(tok, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if n := len(v.cache.headers); n != 1 {
		t.Errorf("the cache holds %d headers, want 1", n)
	}
	ear, err := s.EAR(r, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyEAR(ear, t0.Add(time.Minute)); err != nil {
		t.Fatalf("VerifyEAR: %v", err)
	}
	if _, err := v.Verify(ear, t0.Add(time.Minute)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Verify of an EAR with its header cached = %v, want %v", err, ErrMalformed)
	}
}

func TestVerifierIsSafeForConcurrentUse(t *testing.T) {
	ca, _, tok := signedReport(t)
	v := NewVerifier(ca.RootPool())
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := v.Verify(tok, t0.Add(time.Minute))
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
