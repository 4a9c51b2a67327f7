package signerid_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
	"trustedcompute.io/tc/internal/verifier/report"
)

var jwsNow = time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)

func TestVerifyJWSAcceptsOnlyTheVerifiersSignatureOfItsType(t *testing.T) {
	ca := cmstest.NewCA(t, jwsNow)
	own, err := report.NewSigner(cmstest.VerifierSigning(t, ca, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain384, err := ca.IssueVerifierSigning(key384.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := report.NewSigner(key384, chain384)
	if err != nil {
		t.Fatal(err)
	}
	other, err := report.NewSigner(cmstest.OtherSigning(t, ca, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := report.NewSigner(cmstest.VerifierSigning(t, cmstest.NewCA(t, jwsNow), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"host_id":"edge-1"}`)
	sign := func(s *report.Signer) string {
		tok, err := s.SignSecretAnswer(payload)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(own)
	h, p, _ := strings.Cut(good, ".")
	p, sig, _ := strings.Cut(p, ".")
	policy, err := own.SignIMAPolicy(payload)
	if err != nil {
		t.Fatal(err)
	}
	// Each token verifies (with the payload) exactly when ok is true.
	ok := map[string]bool{}
	named := map[string]string{}
	add := func(name, token string, verifies bool) { named[name], ok[name] = token, verifies }
	add("a token the verifier's P-256 key signed verifies", good, true)
	add("a token the verifier's P-384 key signed verifies", sign(p384), true)
	add("a token of another type is refused", policy, false)
	add("a token of a signing certificate that is not the verifier's is refused", sign(other), false)
	add("a token of the verifier of another CMS is refused", sign(foreign), false)
	add("a token whose payload was changed is refused", h+"."+strings.ToUpper(p)+"."+sig, false)
	add("a token whose signature is cut is refused", h+"."+p+"."+sig[:len(sig)-4], false)
	add("a token of four parts is refused", good+".", false)
	add("an unsigned token is refused", h+"."+p+".", false)
	for name, token := range named {
		t.Run(name, func(t *testing.T) {
			got, err := signerid.VerifyJWS(token, bus.SecretAnswerType, ca.RootPool(), jwsNow)
			if ok[name] && (err != nil || !bytes.Equal(got, payload)) {
				t.Fatalf("VerifyJWS = %q, %v; want the payload", got, err)
			}
			if !ok[name] && err == nil {
				t.Fatalf("VerifyJWS accepted it: %q", got)
			}
			// The verifier's go-jose check agrees.
			if _, err := report.VerifySecretAnswer(token, ca.RootPool(), jwsNow); (err == nil) != ok[name] {
				t.Errorf("report.VerifySecretAnswer: %v, want ok=%v", err, ok[name])
			}
		})
	}
	if _, err := signerid.VerifyJWS(good, bus.SecretAnswerType, ca.RootPool(), jwsNow.Add(2*time.Hour)); err == nil {
		t.Error("a token whose certificate expired verifies")
	}
	if _, err := signerid.VerifyJWS(good, bus.SecretAnswerType, nil, jwsNow); err == nil {
		t.Error("a token verifies without roots")
	}
}

// FuzzVerifyJWS: what the standard-library check accepts, the verifier's
// go-jose check accepts too, with the same payload.
func FuzzVerifyJWS(f *testing.F) {
	ca := cmstest.NewCA(f, jwsNow)
	own, err := report.NewSigner(cmstest.VerifierSigning(f, ca, time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	tok, err := own.SignSecretAnswer([]byte(`{"host_id":"edge-1","nonce":"AAAA"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(tok + ".")
	f.Add("e30.e30.")
	f.Add(`eyJhbGciOiJFUzI1NiIsInR5cCI6InRjLXNlY3JldC1hbnN3ZXIrandzIiwieDVjIjpbXX0.e30.AAAA`)
	roots := ca.RootPool()
	f.Fuzz(func(t *testing.T, token string) {
		got, err := signerid.VerifyJWS(token, bus.SecretAnswerType, roots, jwsNow)
		if err != nil {
			return
		}
		want, err := report.VerifySecretAnswer(token, roots, jwsNow)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("VerifyJWS accepted %q (payload %q); go-jose: %q, %v", token, got, want, err)
		}
	})
}
