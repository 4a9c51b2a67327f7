package report

import (
	"crypto/elliptic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
)

// The benchmark report has PLATFORM, OS and IMA parts with 20 rules.

// BenchmarkSign signs a report, with its CPU time against the crypto
// floor (internal/benchfloor), whose sign is part of it.
func BenchmarkSign(b *testing.B) {
	s := newSigner(b, newCA(b), elliptic.P256())
	r := trustedReport()
	b.ReportAllocs()
	cpu := benchfloor.Start()
	for b.Loop() {
		if _, err := s.Sign(r); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b)
}

func BenchmarkVerify(b *testing.B) {
	ca, _, tok := signedReport(b)
	roots, now := ca.RootPool(), t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok, roots, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierCached verifies with a Verifier that has seen the
// signer's chain: one ECDSA P-256 verification and the JSON decoding.
func BenchmarkVerifierCached(b *testing.B) {
	ca, _, tok := signedReport(b)
	v, now := NewVerifier(ca.RootPool()), t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEAR(b *testing.B) {
	s := newSigner(b, newCA(b), elliptic.P256())
	r := trustedReport()
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.EAR(r, ProfileVeraison, now); err != nil {
			b.Fatal(err)
		}
	}
}
