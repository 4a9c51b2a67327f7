package report

import (
	"bytes"
	"crypto/elliptic"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestATokenIsWhatGoJOSESerializes holds the tokens that sign puts
// together to go-jose's CompactSerialize: the same header and payload
// parts, and a signature that go-jose verifies over them.
func TestATokenIsWhatGoJOSESerializes(t *testing.T) {
	ca := newCA(t)
	payloads := [][]byte{{}, []byte("{}"), []byte(`{"id":"r-1","trusted":true}`), bytes.Repeat([]byte("x"), 12345)}
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		key := newKey(t, curve)
		chain, err := ca.IssueVerifierSigning(key.Public(), 0)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSigner(key, chain)
		if err != nil {
			t.Fatal(err)
		}
		alg, _ := algFor(key.Public())
		for _, typ := range []string{TypeReport, TypeEAR, TypeIMAPolicy, TypeSecretAnswer} {
			for _, payload := range payloads {
				tok, err := s.sign(typ, payload)
				if err != nil {
					t.Fatal(err)
				}
				obj, err := s.signers[typ].Sign(payload)
				if err != nil {
					t.Fatal(err)
				}
				want, err := obj.CompactSerialize()
				if err != nil {
					t.Fatal(err)
				}
				got, wantParts := strings.Split(tok, "."), strings.Split(want, ".")
				if len(got) != 3 || got[0] != wantParts[0] || got[1] != wantParts[1] {
					t.Fatalf("%s %s: token %.80q…, go-jose serializes %.80q…", curve.Params().Name, typ, tok, want)
				}
				parsed, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
				if err != nil {
					t.Fatal(err)
				}
				verified, err := parsed.Verify(key.Public())
				if err != nil || !bytes.Equal(verified, payload) {
					t.Fatalf("%s %s: go-jose verifies %d bytes, error %v", curve.Params().Name, typ, len(verified), err)
				}
			}
		}
	}
}
