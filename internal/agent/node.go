package agent

import (
	"fmt"

	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/tpm"
)

// NodeTPM binds the agent to the node's TPM with its EK and AK loaded.
type NodeTPM struct {
	*tpm.TPM
	ek *tpm.EK
	ak *tpm.AK
}

// NewNodeTPM ensures the endorsement key and the attestation key (created on
// first use, then kept at its persistent handle across restarts).
func NewNodeTPM(t *tpm.TPM, opts tpm.AKOptions) (*NodeTPM, error) {
	ek, err := t.PreferredEK()
	if err != nil {
		return nil, fmt.Errorf("endorsement key: %w", err)
	}
	ak, err := t.LoadOrCreateAK(opts)
	if err != nil {
		return nil, fmt.Errorf("attestation key: %w", err)
	}
	return &NodeTPM{TPM: t, ek: ek, ak: ak}, nil
}

// KeyInfo returns the key material the verifier needs for enrollment.
// It names the TPM's allocated PCR banks, which enrollment records.
func (n *NodeTPM) KeyInfo() (evidence.AKInfo, error) {
	banks, err := n.ActiveBanks()
	if err != nil {
		return evidence.AKInfo{}, fmt.Errorf("pcr banks: %w", err)
	}
	return evidence.AKInfo{
		Version:       evidence.Version,
		AKPublic:      n.ak.Public,
		AKName:        n.ak.Name,
		EKPublic:      n.ek.Public,
		EKCertificate: n.ek.Certificate,
		PCRBanks:      banks,
	}, nil
}

// AK returns the attestation key.
func (n *NodeTPM) AK() *tpm.AK { return n.ak }
