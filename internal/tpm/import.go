package tpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// ImportBlob is a sealed object duplicated to this TPM's EK (the key
// broker's release, made with go-tpm-tools' server.CreateImportBlob): the
// TPM2_Import arguments and, when the object is bound to PCRs, the
// PolicyPCR that unseals it.
type ImportBlob struct {
	// Duplicate, EncryptedSeed and PublicArea are the contents of the
	// TPM2B_PRIVATE, TPM2B_ENCRYPTED_SECRET and TPMT_PUBLIC arguments.
	Duplicate, EncryptedSeed, PublicArea []byte
	// PCRs are the SHA-256 PCRs the object's policy covers and PCRDigest
	// the digest of their expected values; empty for an object without a
	// PCR policy.
	PCRs      []int
	PCRDigest []byte
}

// Import imports the blob under the loaded EK, loads it and unseals its
// data. Only the TPM whose EK the blob was made for can import it (the seed
// is encrypted to that EK); an object bound to PCRs unseals only while the
// PCRs hold the values it was sealed to. The object is flushed before
// Import returns.
func (t *TPM) Import(b ImportBlob) ([]byte, error) {
	if t.ek == nil {
		return nil, ErrNoEK
	}
	pub := tpm2.BytesAs2B[tpm2.TPMTPublic](b.PublicArea)
	if _, err := pub.Contents(); err != nil {
		return nil, fmt.Errorf("import: public area: %w", err)
	}
	parent := tpm2.AuthHandle{Handle: tpm2.TPMHandle(t.ek.Handle), Name: tpm2.TPM2BName{Buffer: t.ek.Name}, Auth: t.ekAuth()}
	imp, err := tpm2.Import{
		ParentHandle: parent,
		ObjectPublic: pub,
		Duplicate:    tpm2.TPM2BPrivate{Buffer: b.Duplicate},
		InSymSeed:    tpm2.TPM2BEncryptedSecret{Buffer: b.EncryptedSeed},
		Symmetric:    tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	parent.Auth = t.ekAuth()
	loaded, err := tpm2.Load{ParentHandle: parent, InPrivate: imp.OutPrivate, InPublic: pub}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("import: load: %w", err)
	}
	defer func() { _ = t.flush(loaded.ObjectHandle) }()
	obj := tpm2.AuthHandle{Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: tpm2.PasswordAuth(nil)}
	if len(b.PCRs) > 0 {
		if err := checkPCRs(b.PCRs); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		obj.Auth = tpm2.Policy(tpm2.TPMAlgSHA256, 16, pcrPolicy(b.PCRs, b.PCRDigest))
	}
	rsp, err := tpm2.Unseal{ItemHandle: obj}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("import: unseal: %w", err)
	}
	return rsp.OutData.Buffer, nil
}

// ekAuth authorizes the EK's USER role: H templates allow the empty
// password (userWithAuth); L templates need PolicySecret(TPM_RH_ENDORSEMENT).
func (t *TPM) ekAuth() tpm2.Session {
	if t.ek.userWithAuth {
		return tpm2.PasswordAuth(nil)
	}
	return tpm2.Policy(t.ek.nameAlg, 16, endorsementPolicy)
}

// pcrPolicy is TPM2_PolicyPCR over the SHA-256 PCRs with the expected digest.
func pcrPolicy(pcrs []int, digest []byte) func(transport.TPM, tpm2.TPMISHPolicy, tpm2.TPM2BNonce) error {
	return func(tp transport.TPM, session tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicyPCR{
			PolicySession: session,
			PcrDigest:     tpm2.TPM2BDigest{Buffer: digest},
			Pcrs: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
				{Hash: tpm2.TPMAlgSHA256, PCRSelect: pcrSelect(pcrs)},
			}},
		}.Execute(tp)
		if errors.Is(err, tpm2.TPMRCValue) {
			return fmt.Errorf("the pcrs do not hold the values the secret is sealed to: %w", err)
		}
		return err
	}
}
