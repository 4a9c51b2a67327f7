package bus

import (
	"strconv"
	"time"
)

// Key broker subjects and messages (docs/key-broker.md). The agent of a
// host asks for its secrets on trust-secrets.<host-id>.request, which only
// that agent may publish to; the verifier answers, and pushes revocations,
// on trust-secrets.<host-id>.answer, which only that agent may subscribe
// to. The host id of a request is the one in its subject, never one from
// the payload.
const (
	secretsPrefix = "trust-secrets"
	requestToken  = "request"
	answerToken   = "answer"
)

// Wildcards of the verifier's key broker.
const (
	// AllSecretRequests matches every agent's secret request.
	AllSecretRequests = secretsPrefix + ".*." + requestToken
	// AllSecretAnswers matches every answer to an agent.
	AllSecretAnswers = secretsPrefix + ".*." + answerToken
)

// SecretRequestSubject is where the agent of hostID asks for its secrets:
// trust-secrets.<host-id>.request.
func SecretRequestSubject(hostID string) (string, error) {
	return hostSubject(secretsPrefix, hostID, requestToken)
}

// SecretAnswerSubject is where the verifier answers the agent of hostID:
// trust-secrets.<host-id>.answer.
func SecretAnswerSubject(hostID string) (string, error) {
	return hostSubject(secretsPrefix, hostID, answerToken)
}

// ParseSecretRequestSubject returns the host id of
// trust-secrets.<host-id>.request.
func ParseSecretRequestSubject(subject string) (hostID string, err error) {
	host, last, err := splitSubject(subject, secretsPrefix, 3)
	if err != nil {
		return "", err
	}
	if last != requestToken {
		return "", ErrInvalidSubject
	}
	return host, nil
}

// SecretRequest is what an agent publishes on its request subject: the
// names of the secrets it wants (or renews).
type SecretRequest struct {
	Names []string `json:"names"`
}

// SecretAnswer is what the verifier publishes on an agent's answer
// subject: the secrets it released, sealed to the host's TPM, and those it
// refused or revoked, which the agent drops.
type SecretAnswer struct {
	Released []SealedSecret  `json:"released,omitempty"`
	Refused  []SecretRefusal `json:"refused,omitempty"`
}

// SecretRefusal names a secret the host may not have (now) and why.
type SecretRefusal struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// ReasonRevoked is the reason of a refusal the verifier pushes unasked,
// when the host's report turns untrusted.
const ReasonRevoked = "revoked"

// SealedSecret is one released secret. The value is encrypted (AES-256-GCM)
// under a 32-byte key that only the host's TPM can recover: the key is a
// TPM2_Import blob to the host's endorsement key (go-tpm-tools'
// server.CreateImportBlob), and, when PCRs is set, the imported object
// unseals only under a PolicyPCR session on those SHA-256 PCRs with the
// values whose digest is PCRDigest.
type SealedSecret struct {
	Name     string `json:"name"`
	SecretID string `json:"secret_id"`
	Version  int64  `json:"version"`
	// ExpiresAt ends the lease: the agent drops the value then unless a
	// renewal released it again.
	ExpiresAt time.Time `json:"expires_at"`
	// Duplicate, EncryptedSeed and PublicArea are the TPM2_Import
	// arguments (contents of TPM2B_PRIVATE, TPM2B_ENCRYPTED_SECRET and
	// TPMT_PUBLIC) of the key object, a sealed keyed-hash object.
	Duplicate     []byte `json:"duplicate"`
	EncryptedSeed []byte `json:"encrypted_seed"`
	PublicArea    []byte `json:"public_area"`
	// PCRs and PCRDigest are the PolicyPCR the key object needs (SHA-256
	// bank); empty when the secret is not bound to PCRs.
	PCRs      []int  `json:"pcrs,omitempty"`
	PCRDigest []byte `json:"pcr_digest,omitempty"`
	// Nonce and Ciphertext are the value under the key (AES-256-GCM);
	// the associated data is SealedSecretAAD.
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// SealedSecretAAD is the associated data of a sealed value: it binds the
// ciphertext to the host, the secret and its version.
func SealedSecretAAD(hostID, secretID string, version int64) []byte {
	return []byte("tc key broker v1\x00" + hostID + "\x00" + secretID + "\x00" + strconv.FormatInt(version, 10))
}
