package report

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// typedErrors are the errors every refusal of untrusted input wraps.
var typedErrors = []error{ErrMalformed, ErrAlgorithmNotAllowed, ErrCertificateUntrusted, ErrSignatureInvalid, ErrExpired, ErrClaimsInvalid}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	for _, want := range typedErrors {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("untyped error: %v", err)
}

// fuzzTokens feeds the fuzzer's tokens to verify, named name, which says
// whether it returned a result: it must refuse with a typed error and no
// result anything but good, the token the signer made.
func fuzzTokens(f *testing.F, name, good string, verify func(tok string) (result bool, err error)) {
	f.Fuzz(func(t *testing.T, tok string) {
		result, err := verify(tok)
		if err != nil {
			checkTyped(t, err)
			if result {
				t.Fatalf("%s returned a result with an error", name)
			}
			return
		}
		if tok != good {
			t.Fatalf("%s accepted a token the signer did not make: %q", name, tok)
		}
	})
}

// FuzzVerify feeds arbitrary tokens to Verify: it must not panic, and it
// must refuse with a typed error anything but a token the signer made.
func FuzzVerify(f *testing.F) {
	ca, _, good := signedReport(f)
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	roots := ca.RootPool()
	now := t0.Add(time.Minute)
	fuzzTokens(f, "Verify", good, func(tok string) (bool, error) {
		r, err := Verify(tok, roots, now)
		return r != nil, err
	})
}

// FuzzVerifyEAR feeds arbitrary tokens to VerifyEAR.
func FuzzVerifyEAR(f *testing.F) {
	ca, s := newP256Signer(f)
	now := t0.Add(time.Minute)
	good, err := s.EAR(trustedReport(), ProfileEAR04, now)
	if err != nil {
		f.Fatal(err)
	}
	report, _ := s.Sign(trustedReport())
	f.Add(good)
	f.Add(report)
	f.Add(strings.Replace(good, ".", "..", 1))
	roots := ca.RootPool()
	fuzzTokens(f, "VerifyEAR", good, func(tok string) (bool, error) {
		c, err := VerifyEAR(tok, roots, now)
		return c != nil, err
	})
}

// FuzzSignedPayload signs arbitrary payloads with a trusted key, so that
// the payload decoders behind the signature check are fuzzed too. A
// report that verifies must survive a second round trip unchanged.
func FuzzSignedPayload(f *testing.F) {
	ca, s := newP256Signer(f)
	now := t0.Add(time.Minute)
	f.Add([]byte(`{"id":"a","expiration":"2026-11-27T10:00:00Z","trust_information":{"OVERALL":true,"flavors_trust":{"PLATFORM":{"trust":true,"rules":[]}}}}`))
	f.Add([]byte(`{"trust_information":{"flavors_trust":{"NOPE":{}}}}`))
	f.Add([]byte(`{"eat_profile":"tag:github.com,2023:veraison/ear","iat":1,"ear.verifier-id":{"developer":"d","build":"b"},"submods":{"OS":{"ear.status":"none"}}}`))
	f.Add([]byte(`{"eat_profile":"tag:ietf.org,2026:rats/ear#04","iat":1e3,"exp":9e99}`))
	roots := ca.RootPool()
	f.Fuzz(func(t *testing.T, payload []byte) {
		rtok, err := s.sign(TypeReport, payload)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Verify(rtok, roots, now)
		if err != nil {
			checkTyped(t, err)
		} else {
			again, err := s.Sign(r)
			if err != nil {
				t.Fatalf("Sign of a verified report: %v", err)
			}
			r2, err := Verify(again, roots, now)
			if err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("a verified report does not round-trip: %v", err)
			}
		}
		etok, err := s.sign(TypeEAR, payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyEAR(etok, roots, now); err != nil {
			checkTyped(t, err)
		}
	})
}
