package report

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Sign returns r as a compact JWS: the header holds alg (ES256 or ES384,
// fixed by the key), typ TypeReport and the x5c chain; the payload is the
// JSON of r. Anyone holding the CMS root checks it offline with Verify, or
// with any JOSE library that also checks the signing identity of
// signerid.Verify (x5c[0] is CN=HVS Signing issued by the Trusted Compute
// Verifier Signing CA, issued by the root); a chain check alone would
// accept any certificate of the CMS. A report without an expiration, or
// expiring before it was created, is refused.
func (s *Signer) Sign(r *Report) (string, error) {
	jws, _, err := s.SignedJSON(r)
	return jws, err
}

// SignedJSON is Sign, and it also returns the JSON of r that it signed
// (the JWS's payload), for a caller that keeps both.
func (s *Signer) SignedJSON(r *Report) (jws string, payload []byte, err error) {
	if r == nil {
		return "", nil, errors.New("sign report: no report")
	}
	if r.Expiration.IsZero() || r.Expiration.Before(r.Created) {
		return "", nil, fmt.Errorf("sign report %q: expiration %s is not after creation %s", r.ID, r.Expiration, r.Created)
	}
	jws, payload, err = s.signJSON(TypeReport, r)
	if err != nil {
		return "", nil, fmt.Errorf("sign report %q: %w", r.ID, err)
	}
	return jws, payload, nil
}

// Verify checks a signed report at now and returns it: the header must be
// of TypeReport with alg ES256 or ES384 fitting the leaf's key, the x5c
// chain must be the verifier's own signing identity under roots, valid at
// now (signerid.Verify: leaf HVS Signing under the verifier signing CA, not
// any other certificate of the CMS), the signature must verify, the payload must
// decode strictly (no unknown fields, nothing after it) and the report must
// not have expired at now. To read an old report, pass its creation time
// as now. The errors wrap ErrMalformed, ErrAlgorithmNotAllowed,
// ErrCertificateUntrusted, ErrSignatureInvalid or ErrExpired.
func Verify(jws string, roots *x509.CertPool, now time.Time) (*Report, error) {
	return verifyReport(jws, roots, now, nil)
}

func verifyReport(jws string, roots *x509.CertPool, now time.Time, cache *headerCache) (*Report, error) {
	payload, err := verifyJWS(jws, TypeReport, roots, now, cache)
	if err != nil {
		return nil, fmt.Errorf("verify report: %w", err)
	}
	var r Report
	if err := decodeStrict(payload, &r); err != nil {
		return nil, fmt.Errorf("verify report: %w", malformed("payload: %v", err))
	}
	if r.Expiration.IsZero() {
		return nil, fmt.Errorf("verify report %q: %w", r.ID, malformed("no expiration"))
	}
	if now.After(r.Expiration) {
		return nil, fmt.Errorf("verify report %q: %w at %s", r.ID, ErrExpired, r.Expiration.Format(time.RFC3339))
	}
	return &r, nil
}
