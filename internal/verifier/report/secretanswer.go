package report

import (
	"crypto/x509"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// TypeSecretAnswer is the JWS type of the key broker's answers to agents
// (bus.SecretAnswer.Signed): no other verifier of this package accepts it,
// and its verifier accepts nothing else. Agents check these answers with
// signerid.VerifyJWS, which links no JOSE library.
const TypeSecretAnswer = bus.SecretAnswerType

// SignSecretAnswer signs the payload of a key broker answer (the JSON of a
// bus.SignedSecretAnswer) as a compact JWS of type TypeSecretAnswer, with
// the x5c chain in its header.
func (s *Signer) SignSecretAnswer(payload []byte) (string, error) {
	return s.sign(TypeSecretAnswer, payload)
}

// VerifySecretAnswer checks a signature made by SignSecretAnswer at now, as
// Verify checks a report (the verifier's signing identity under roots),
// and returns the signed payload.
func VerifySecretAnswer(token string, roots *x509.CertPool, now time.Time) ([]byte, error) {
	return verifyJWS(token, TypeSecretAnswer, roots, now, nil)
}
