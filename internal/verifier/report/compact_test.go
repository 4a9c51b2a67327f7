package report

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"trustedcompute.io/tc/internal/signerid"
)

// opaqueKey hides the *ecdsa.PrivateKey behind crypto.Signer, as a key in
// a hardware module would be.
type opaqueKey struct{ crypto.Signer }

// TestATokenIsWhatGoJOSESerializes holds the tokens that sign puts
// together to go-jose's CompactSerialize: the same header and payload
// parts, and a signature that go-jose verifies over them, for keys of both
// curves, held in memory or behind crypto.Signer only.
func TestATokenIsWhatGoJOSESerializes(t *testing.T) {
	ca := newCA(t)
	payloads := [][]byte{{}, []byte("{}"), []byte(`{"id":"r-1","trusted":true}`), bytes.Repeat([]byte("x"), 12345),
		bytes.Repeat([]byte("y"), 3*256), bytes.Repeat([]byte("z"), 3*256+1)}
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		key := newKey(t, curve)
		chain, err := ca.IssueVerifierSigning(key.Public(), 0)
		if err != nil {
			t.Fatal(err)
		}
		x5c, err := json.Marshal(signerid.EncodeX5C(chain))
		if err != nil {
			t.Fatal(err)
		}
		alg, _ := algFor(key.Public())
		for _, k := range []crypto.Signer{key, opaqueKey{key}} {
			s, err := NewSigner(k, chain)
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range []string{TypeReport, TypeEAR, TypeIMAPolicy, TypeSecretAnswer} {
				js, err := headerSigner(typ, alg, key, x5c)
				if err != nil {
					t.Fatal(err)
				}
				for _, payload := range payloads {
					tok, err := s.sign(typ, payload)
					if err != nil {
						t.Fatal(err)
					}
					obj, err := js.Sign(payload)
					if err != nil {
						t.Fatal(err)
					}
					want, err := obj.CompactSerialize()
					if err != nil {
						t.Fatal(err)
					}
					got, wantParts := strings.Split(tok, "."), strings.Split(want, ".")
					if len(got) != 3 || got[0] != wantParts[0] || got[1] != wantParts[1] || len(got[2]) != len(wantParts[2]) {
						t.Fatalf("%s %s %T: token %.80q…, go-jose serializes %.80q…", curve.Params().Name, typ, k, tok, want)
					}
					parsed, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
					if err != nil {
						t.Fatal(err)
					}
					verified, err := parsed.Verify(key.Public())
					if err != nil || !bytes.Equal(verified, payload) {
						t.Fatalf("%s %s %T: go-jose verifies %d bytes, error %v", curve.Params().Name, typ, k, len(verified), err)
					}
				}
			}
		}
	}
}
