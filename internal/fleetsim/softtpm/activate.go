package softtpm

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Labels of TPM 2.0 Part 1, "Credential Protection".
const (
	labelIdentity  = "IDENTITY"
	labelIntegrity = "INTEGRITY"
	labelStorage   = "STORAGE"
)

// ErrActivation reports a credential this TPM cannot activate: sealed to
// another EK or another key name, or altered on the way.
var ErrActivation = errors.New("credential activation failed")

// ActivateCredential is TPM2_ActivateCredential with the AK as the
// activated object and the EK as the decryption key: it recovers the seed
// from the EK's ECDH encapsulation (encryptedSecret holds the sender's
// ephemeral point), checks the integrity HMAC over the encrypted
// credential and the AK's name, and decrypts the credential.
func (t *TPM) ActivateCredential(credentialBlob, encryptedSecret []byte) ([]byte, error) {
	nameHash := crypto.SHA256 // the EK's nameAlg
	eph, err := tpm2.Unmarshal[tpm2.TPMSECCPoint](encryptedSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted secret: %w", ErrActivation, err)
	}
	point := append([]byte{4}, pad32(eph.X.Buffer)...)
	point = append(point, pad32(eph.Y.Buffer)...)
	ephPub, err := ecdh.P256().NewPublicKey(point)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral point: %w", ErrActivation, err)
	}
	z, err := t.ekECDH.ECDH(ephPub)
	if err != nil {
		return nil, fmt.Errorf("%w: ecdh: %w", ErrActivation, err)
	}
	ekPoint, err := t.ekPublic.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("%w: ek point: %w", ErrActivation, err)
	}
	seed := tpm2.KDFe(nameHash, z, labelIdentity, pad32(eph.X.Buffer), ekPoint.X.Buffer, nameHash.Size()*8)

	// TPMS_ID_OBJECT: integrityHMAC (a TPM2B_DIGEST), then encIdentity.
	hmac2B, err := tpm2.Unmarshal[tpm2.TPM2BDigest](credentialBlob)
	if err != nil {
		return nil, fmt.Errorf("%w: credential blob: %w", ErrActivation, err)
	}
	encIdentity := credentialBlob[2+len(hmac2B.Buffer):]
	if len(hmac2B.Buffer) != nameHash.Size() || len(encIdentity) == 0 {
		return nil, fmt.Errorf("%w: credential blob of %d bytes is malformed", ErrActivation, len(credentialBlob))
	}
	mac := hmac.New(nameHash.New, tpm2.KDFa(nameHash, seed, labelIntegrity, nil, nil, nameHash.Size()*8))
	mac.Write(encIdentity)
	mac.Write(t.akName)
	if !hmac.Equal(mac.Sum(nil), hmac2B.Buffer) {
		return nil, fmt.Errorf("%w: integrity check of the credential failed", ErrActivation)
	}
	block, err := aes.NewCipher(tpm2.KDFa(nameHash, seed, labelStorage, t.akName, nil, 128))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrActivation, err)
	}
	plain := make([]byte, len(encIdentity))
	cipher.NewCFBDecrypter(block, make([]byte, block.BlockSize())).XORKeyStream(plain, encIdentity) //nolint:staticcheck // SA1019: TPM credential protection is AES-CFB by definition
	cred, err := tpm2.Unmarshal[tpm2.TPM2BDigest](plain)
	if err != nil || 2+len(cred.Buffer) != len(plain) {
		return nil, fmt.Errorf("%w: decrypted credential is malformed", ErrActivation)
	}
	return bytes.Clone(cred.Buffer), nil
}

// pad32 left-pads a P-256 coordinate to 32 bytes.
func pad32(b []byte) []byte {
	if len(b) >= 32 {
		return b
	}
	return append(make([]byte, 32-len(b)), b...)
}
