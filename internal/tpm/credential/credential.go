// Package credential is the verifier's side of TPM credential activation:
// MakeCredential seals a secret to an EK public area and an AK name, so
// that only the TPM holding both can recover it (TPM2_ActivateCredential).
// It does no TPM I/O, so the verifier imports it without a TPM.
package credential

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// ErrBadEK reports an EK public area unfit for credential activation.
var ErrBadEK = errors.New("ek public area unfit for credential activation")

// MakeCredential seals secret to the EK whose TPMT_PUBLIC is ekPublic and
// to the AK whose TPM name is akName. It returns the credential blob (the
// contents of TPM2B_ID_OBJECT) and the encrypted seed (the contents of
// TPM2B_ENCRYPTED_SECRET), the two inputs of TPM2_ActivateCredential. The
// secret may be at most as long as a digest of the EK's name algorithm.
func MakeCredential(ekPublic, akName, secret []byte) (credentialBlob, encryptedSecret []byte, err error) {
	ek, err := tpm2.Unmarshal[tpm2.TPMTPublic](ekPublic)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: decode: %w", ErrBadEK, err)
	}
	if a := ek.ObjectAttributes; !a.Restricted || !a.Decrypt || a.SignEncrypt {
		return nil, nil, fmt.Errorf("%w: not a restricted decryption key", ErrBadEK)
	}
	nameHash, err := ek.NameAlg.Hash()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: name algorithm: %w", ErrBadEK, err)
	}
	if len(secret) == 0 || len(secret) > nameHash.Size() {
		return nil, nil, fmt.Errorf("secret must be 1 to %d bytes, got %d", nameHash.Size(), len(secret))
	}
	if err := checkName(akName); err != nil {
		return nil, nil, err
	}
	key, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadEK, err)
	}
	blob, encSecret, err := tpm2.CreateCredential(rand.Reader, key, akName, secret)
	if err != nil {
		return nil, nil, fmt.Errorf("make credential: %w", err)
	}
	return blob, encSecret, nil
}

// Name computes the TPM name (nameAlg || digest) of a TPMT_PUBLIC, so the
// verifier can check the AK name an agent reports against its public area.
func Name(public []byte) ([]byte, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, fmt.Errorf("decode public area: %w", err)
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("compute name: %w", err)
	}
	return name.Buffer, nil
}

// checkName accepts an object name: a 2-byte hash algorithm and a digest of
// that algorithm's size.
func checkName(name []byte) error {
	if len(name) < 2 {
		return fmt.Errorf("ak name of %d bytes is too short", len(name))
	}
	alg := tpm2.TPMAlgID(uint16(name[0])<<8 | uint16(name[1]))
	h, err := alg.Hash()
	if err != nil {
		return fmt.Errorf("ak name algorithm %#04x: %w", uint16(alg), err)
	}
	if len(name)-2 != h.Size() {
		return fmt.Errorf("ak name digest is %d bytes, want %d", len(name)-2, h.Size())
	}
	return nil
}
