package report

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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
		// A key that is only a crypto.Signer (an HSM's) signs as well.
		for _, signer := range []crypto.Signer{key, opaqueKey{key}} {
			s, err := NewSigner(signer, chain)
			if err != nil {
				t.Fatal(err)
			}
			alg, _ := algFor(key.Public())
			for _, typ := range []string{TypeReport, TypeEAR, TypeIMAPolicy} {
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
}

// opaqueKey is a crypto.Signer that is not an *ecdsa.PrivateKey.
type opaqueKey struct{ crypto.Signer }

func TestAnASN1ECDSASignatureIsWrittenAsRAndSOfTheCurvesSize(t *testing.T) {
	seq := func(ints ...[]byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, n := range ints {
				b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(n) })
			}
		})
		return b.BytesOrPanic()
	}
	for _, tc := range []struct {
		name string
		der  []byte
		want []byte // nil: refused
	}{
		{name: "integers of the curve's size are written as they are",
			der: seq([]byte{0x7f, 2, 3, 4}, []byte{0x11, 6, 7, 8}), want: []byte{0x7f, 2, 3, 4, 0x11, 6, 7, 8}},
		{name: "short integers are padded on the left with zeros",
			der: seq([]byte{1}, []byte{2, 3}), want: []byte{0, 0, 0, 1, 0, 0, 2, 3}},
		{name: "the zero byte before a high bit is dropped",
			der: seq([]byte{0, 0xff, 2, 3, 4}, []byte{0, 0x80, 0, 0, 0}), want: []byte{0xff, 2, 3, 4, 0x80, 0, 0, 0}},
		{name: "an integer longer than the curve's size is refused", der: seq([]byte{1, 2, 3, 4, 5}, []byte{1})},
		{name: "a negative integer is refused", der: seq([]byte{0x80, 1}, []byte{1})},
		{name: "an empty integer is refused", der: seq([]byte{}, []byte{1})},
		{name: "a third integer is refused", der: seq([]byte{1}, []byte{2}, []byte{3})},
		{name: "bytes after the sequence are refused", der: append(seq([]byte{1}, []byte{2}), 0)},
		{name: "no sequence is refused", der: []byte{2, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rawECDSASignature(tc.der, 4)
			if (err == nil) != (tc.want != nil) || !bytes.Equal(got, tc.want) {
				t.Errorf("rawECDSASignature = %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

func FuzzRawECDSASignatureKeepsRAndS(f *testing.F) {
	f.Add([]byte{1}, []byte{2})
	f.Add([]byte{0xff, 0xff}, []byte{0})
	f.Fuzz(func(t *testing.T, rb, sb []byte) {
		if len(rb) > 64 || len(sb) > 64 {
			return
		}
		r, s := new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
		der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		const size = 48
		got, err := rawECDSASignature(der, size)
		if fits := len(r.Bytes()) <= size && len(s.Bytes()) <= size; (err == nil) != fits {
			t.Fatalf("r %x, s %x: %v", r, s, err)
		} else if !fits {
			return
		}
		if new(big.Int).SetBytes(got[:size]).Cmp(r) != 0 || new(big.Int).SetBytes(got[size:]).Cmp(s) != 0 {
			t.Fatalf("r %x, s %x written as %x", r, s, got)
		}
	})
}
