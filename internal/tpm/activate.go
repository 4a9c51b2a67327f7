package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// ActivateCredential recovers the secret a verifier sealed to the loaded EK
// and AK name with MakeCredential (package credential). The TPM releases it
// only when the AK is loaded in the same TPM as the EK and its name is the
// one the verifier used. The EK comes from the last EK or PreferredEK call,
// the AK from LoadOrCreateAK.
func (t *TPM) ActivateCredential(credentialBlob, encryptedSecret []byte) ([]byte, error) {
	if t.ek == nil {
		return nil, ErrNoEK
	}
	if t.ak == nil {
		return nil, ErrNoAK
	}
	ekAuth := t.ekAuth()
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(t.ak.Handle), Name: tpm2.TPM2BName{Buffer: t.ak.Name}, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: tpm2.TPMHandle(t.ek.Handle), Name: tpm2.TPM2BName{Buffer: t.ek.Name}, Auth: ekAuth},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: credentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: encryptedSecret},
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("activate credential: %w", err)
	}
	return rsp.CertInfo.Buffer, nil
}

func endorsementPolicy(t transport.TPM, session tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
	_, err := tpm2.PolicySecret{
		AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		PolicySession: session,
		NonceTPM:      nonceTPM,
	}.Execute(t)
	return err
}
