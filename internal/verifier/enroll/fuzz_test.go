package enroll

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"testing"

	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/tpm/credential"
)

// FuzzCheckAK plays the agent's AK public area and name, which root on the
// node writes: checkAK never panics, and what it accepts is a restricted
// signing key bound to its TPM whose name is the name of its public area,
// decoded from exactly the bytes given.
func FuzzCheckAK(f *testing.F) {
	_, public := newSoftAK(f)
	name, err := credential.Name(public)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(public, name)
	f.Add(public, []byte{0, 0x0b})
	f.Add(public[:len(public)-1], name)
	f.Add(append(bytes.Clone(public), 0), name)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, public, name []byte) {
		key, err := checkAK("H1", public, name)
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) || (re.Reason != AKAttributes && re.Reason != AKNameMismatch) {
				t.Fatalf("checkAK err = %v, want a refusal AKAttributes or AKNameMismatch", err)
			}
			return
		}
		pub, err := decodePublic(public)
		if err != nil || key == nil {
			t.Fatalf("accepted an ak whose public area does not decode: %v", err)
		}
		a := pub.ObjectAttributes
		if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
			t.Fatalf("accepted an ak with attributes %+v", a)
		}
		if want, err := credential.Name(public); err != nil || !bytes.Equal(want, name) {
			t.Fatalf("accepted the name %x of another public area (%x, %v)", name, want, err)
		}
		if _, err := ekPublicDigest(public); err != nil {
			t.Fatalf("an accepted public area has no key digest: %v", err)
		}
	})
}

// FuzzParseEKPublicKeyPEM plays the EK public key of an endorsement an API
// user registers: what is accepted is one RSA (2048 bits or more) or ECDSA
// key whose digest is the SHA-256 of the canonical DER returned.
func FuzzParseEKPublicKeyPEM(f *testing.F) {
	der, err := x509.MarshalPKIXPublicKey(&testca.NewKey(f).PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	f.Add(good)
	f.Add(append(bytes.Clone(good), good...))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		der, digest, err := ParseEKPublicKeyPEM(in)
		if err != nil {
			return
		}
		sum := sha256.Sum256(der)
		if digest != hex.EncodeToString(sum[:]) {
			t.Fatalf("digest %s is not the SHA-256 of the DER returned", digest)
		}
		key, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatalf("the DER returned does not parse: %v", err)
		}
		if again, err := spkiDigest(key); err != nil || again != digest {
			t.Fatalf("the DER returned is not canonical: %s, %v", again, err)
		}
	})
}
