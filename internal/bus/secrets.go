package bus

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Key broker subjects and messages (docs/secrets.md). The agent of a
// host asks for its secrets on its secret request subject
// (AgentGrammar.SecretRequestSubject: trust-secrets.<host-id>.request or
// trust-events.<host-id>.secret-request), which only that agent may publish
// to; the verifier answers, and pushes revocations, on its secret answer
// subject (trust-secrets.<host-id>.answer or
// trust-agent.<host-id>.secret-answer), which only that agent may
// subscribe to. The host id of a request is the one in its subject, never
// one from the payload.
const (
	secretsPrefix = "trust-secrets"
	requestToken  = "request"
	answerToken   = "answer"
)

// Wildcards of the verifier's key broker in GrammarSplit (AgentGrammar has
// those of GrammarTwoPrefixes).
const (
	// AllSecretRequests matches every agent's secret request.
	AllSecretRequests = secretsPrefix + ".*." + requestToken
	// AllSecretAnswers matches every answer to an agent.
	AllSecretAnswers = secretsPrefix + ".*." + answerToken
)

// SecretRequest is what an agent publishes on its request subject: the
// names of the secrets it wants (or renews), and a fresh nonce that the
// signed answer echoes.
type SecretRequest struct {
	Names []string `json:"names"`
	// Nonce is SecretNonceSize fresh random bytes; an agent before signed
	// answers sends none.
	Nonce []byte `json:"nonce,omitempty"`
}

// SecretNonceSize is the size of the nonce of a request; the verifier
// refuses a request with a nonce longer than MaxSecretNonceSize.
const (
	SecretNonceSize    = 32
	MaxSecretNonceSize = 64
)

// SecretAnswer is what the verifier publishes on an agent's answer
// subject: the secrets it released, sealed to the host's TPM, and those it
// refused or revoked, which the agent drops.
//
// Signed is the answer signed by the verifier: a compact JWS (type
// SecretAnswerType, the verifier's signing identity in its x5c header) whose payload is a SignedSecretAnswer. An agent takes only the
// signed payload and refuses an answer without it; Released and Refused
// are kept for agents before signed answers.
type SecretAnswer struct {
	Released []SealedSecret  `json:"released,omitempty"`
	Refused  []SecretRefusal `json:"refused,omitempty"`
	Signed   string          `json:"signed,omitempty"`
}

// SecretAnswerType is the JWS type (typ) of SecretAnswer.Signed
// (report.TypeSecretAnswer).
const SecretAnswerType = "tc-secret-answer+jws"

// SignedSecretAnswer is the payload of SecretAnswer.Signed: the answer
// bound to its host, to the nonce of the request it answers (none for a
// revocation the verifier pushes unasked) and to when it was made.
type SignedSecretAnswer struct {
	HostID   string          `json:"host_id"`
	Nonce    []byte          `json:"nonce,omitempty"`
	IssuedAt time.Time       `json:"issued_at"`
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
	// Nonce and Ciphertext are the value under the key (AES-256-GCM,
	// EncryptValue and DecryptValue).
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// sealedSecretAAD is the associated data of a sealed value: it binds the
// ciphertext to the host, the secret and its version.
func sealedSecretAAD(hostID, secretID string, version int64) []byte {
	return []byte("tc key broker v1\x00" + hostID + "\x00" + secretID + "\x00" + strconv.FormatInt(version, 10))
}

// valueAEAD is AES-256-GCM under a 32-byte key.
func valueAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key of %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return cipher.NewGCM(block)
}

// SecretKeySize is the size of the key a released value is encrypted under.
const SecretKeySize = 32

// EncryptValue sets s.Nonce and s.Ciphertext: value under key, bound to the
// host, s.SecretID and s.Version.
func EncryptValue(s *SealedSecret, key []byte, hostID string, value []byte) error {
	aead, err := valueAEAD(key)
	if err != nil {
		return err
	}
	s.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(s.Nonce); err != nil {
		return fmt.Errorf("secret nonce: %w", err)
	}
	s.Ciphertext = aead.Seal(nil, s.Nonce, value, sealedSecretAAD(hostID, s.SecretID, s.Version))
	return nil
}

// DecryptValue opens s's value with the key the TPM unsealed; it fails for
// a value released to another host, secret or version.
func DecryptValue(s SealedSecret, key []byte, hostID string) ([]byte, error) {
	aead, err := valueAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, errors.New("secret nonce has the wrong size")
	}
	value, err := aead.Open(nil, s.Nonce, s.Ciphertext, sealedSecretAAD(hostID, s.SecretID, s.Version))
	if err != nil {
		return nil, fmt.Errorf("open secret: %w", err)
	}
	return value, nil
}
