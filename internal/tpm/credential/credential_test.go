package credential

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

var akName = append([]byte{0x00, 0x0b}, bytes.Repeat([]byte{1}, 32)...)

func TestMakeCredentialRefusesBadInput(t *testing.T) {
	rsaEK := ekWithKey(t, tpm2.RSAEKTemplate)
	if _, _, err := MakeCredential(rsaEK, akName, []byte("s")); err != nil {
		t.Fatalf("the valid input the cases start from is refused: %v", err)
	}
	signing := tpm2.RSAEKTemplate
	signing.ObjectAttributes.Decrypt = false
	signing.ObjectAttributes.SignEncrypt = true
	tests := []struct {
		name    string
		ek      []byte
		akName  []byte
		secret  []byte
		wantErr error
	}{
		{name: "garbage instead of an ek is refused", ek: []byte{1, 2, 3}, akName: akName, secret: []byte("s"), wantErr: ErrBadEK},
		{name: "a signing key as ek is refused", ek: tpm2.Marshal(&signing), akName: akName, secret: []byte("s"), wantErr: ErrBadEK},
		{name: "an empty secret is refused", ek: rsaEK, akName: akName},
		{name: "a secret longer than the name digest is refused", ek: rsaEK, akName: akName, secret: make([]byte, 33)},
		{name: "an empty ak name is refused", ek: rsaEK, secret: []byte("s")},
		{name: "an ak name of the wrong digest size is refused", ek: rsaEK, akName: akName[:20], secret: []byte("s")},
		{name: "an ak name with an unknown algorithm is refused", ek: rsaEK, akName: append([]byte{0x12, 0x34}, akName[2:]...), secret: []byte("s")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := MakeCredential(tc.ek, tc.akName, tc.secret)
			if err == nil {
				t.Fatal("MakeCredential succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("MakeCredential = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// ekWithKey returns an EK public area of the template holding a fresh
// software key, as a TPM would report it.
func ekWithKey(t testing.TB, tmpl tpm2.TPMTPublic) []byte {
	t.Helper()
	switch tmpl.Type {
	case tpm2.TPMAlgRSA:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()})
	case tpm2.TPMAlgECC:
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw := k.PublicKey().Bytes() // 0x04 || X || Y
		tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]},
			Y: tpm2.TPM2BECCParameter{Buffer: raw[33:]},
		})
	}
	return tpm2.Marshal(&tmpl)
}

func TestMakeCredentialOutput(t *testing.T) {
	tests := []struct {
		name          string
		tmpl          tpm2.TPMTPublic
		wantSecretLen int
	}{
		{name: "a credential for an rsa ek carries a 256-byte oaep seed", tmpl: tpm2.RSAEKTemplate, wantSecretLen: 256},
		{name: "a credential for an ecc p-256 ek carries an ephemeral point", tmpl: tpm2.ECCEKTemplate, wantSecretLen: 2 + 32 + 2 + 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blob, secret, err := MakeCredential(ekWithKey(t, tc.tmpl), akName, []byte("secret"))
			if err != nil {
				t.Fatal(err)
			}
			// TPMS_ID_OBJECT: TPM2B integrityHMAC (sha256), then encIdentity
			// (the encrypted 2-byte size and 6-byte secret).
			if len(blob) != 2+32+2+6 || int(blob[0])<<8|int(blob[1]) != 32 {
				t.Errorf("credential blob %x is not a 32-byte hmac and an 8-byte encIdentity", blob)
			}
			if len(secret) != tc.wantSecretLen {
				t.Errorf("encrypted secret is %d bytes, want %d", len(secret), tc.wantSecretLen)
			}
		})
	}
}

func TestName(t *testing.T) {
	pub := tpm2.Marshal(&tpm2.ECCEKTemplate)
	name, err := Name(pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(name) != 34 || name[0] != 0x00 || name[1] != 0x0b {
		t.Fatalf("Name = %x, want sha256 alg id and 32-byte digest", name)
	}
	if _, err := Name([]byte{0}); err == nil {
		t.Fatal("Name of garbage succeeded")
	}
}

func FuzzMakeCredential(f *testing.F) {
	f.Add(ekWithKey(f, tpm2.RSAEKTemplate), akName, []byte("secret"))
	f.Add(ekWithKey(f, tpm2.ECCEKTemplate), akName, []byte("secret"))
	f.Add([]byte{0, 1, 0, 0xb}, []byte{0, 0xb}, []byte{})
	f.Fuzz(func(t *testing.T, ek, name, secret []byte) {
		blob, encSecret, err := MakeCredential(ek, name, secret)
		if err == nil && (len(blob) == 0 || len(encSecret) == 0) {
			t.Fatal("MakeCredential succeeded with empty output")
		}
	})
}
