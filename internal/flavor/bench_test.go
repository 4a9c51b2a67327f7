package flavor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
)

// BenchmarkEvaluate appraises a host against the automatic group with
// PLATFORM, OS and IMA flavors, signature and chain checks included (they
// dominate: one chain check per evaluation, one signature per flavor).
func BenchmarkEvaluate(b *testing.B) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  crypto.Signer
	}{{"signing key P-384", nil}, {"signing key P-256", p256}} {
		b.Run(bc.name, func(b *testing.B) {
			ca := newPKI(b, "bench")
			ca.leaf, ca.leafKey = ca.issue(b, func(*x509.Certificate) {}, bc.key)
			sfs := ca.signAll(b, goldenFlavors(b, defaultHost(), "b"))
			facts := defaultHost().facts()
			g := automatic()
			b.ReportAllocs()
			for b.Loop() {
				ti, err := Evaluate(g, sfs, facts, ca.roots, now)
				if err != nil || !ti.Overall {
					b.Fatalf("Evaluate() = %+v, %v", ti, err)
				}
			}
		})
	}
}
