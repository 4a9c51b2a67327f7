package report

import (
	"crypto/x509"
	"time"
)

// TypeIMAPolicy is the JWS type of HVS's signature of an IMA runtime
// policy version: neither a report nor an EAR verifier accepts it, and its
// verifier accepts nothing else.
const TypeIMAPolicy = "tc-ima-policy+jwt"

// SignIMAPolicy signs a statement about an IMA runtime policy version
// (HVS's JSON, which names the version and the digest of its document) as
// a compact JWS of type TypeIMAPolicy, with the x5c chain in its header.
func (s *Signer) SignIMAPolicy(statement []byte) (string, error) {
	return s.sign(TypeIMAPolicy, statement)
}

// VerifyIMAPolicy checks a signature made by SignIMAPolicy at now, as
// Verify checks a report (the verifier's signing identity under roots),
// and returns the signed statement.
func VerifyIMAPolicy(token string, roots *x509.CertPool, now time.Time) ([]byte, error) {
	return verifyJWS(token, TypeIMAPolicy, roots, now, nil)
}
