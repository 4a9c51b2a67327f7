package signerid

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"
)

// JWSHeader is the protected header of a JWS the verifier signs with its
// signing identity: the algorithm, the type and the x5c chain.
type JWSHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	// X5C is the certificate chain, leaf first, standard base64 DER (RFC
	// 7515 section 4.1.6).
	X5C []string `json:"x5c"`
}

// EncodeX5C returns chain as the value of a JWS x5c header (RFC 7515
// section 4.1.6): the standard base64 of each certificate's DER, in order.
func EncodeX5C(chain []*x509.Certificate) []string {
	x5c := make([]string, 0, len(chain))
	for _, c := range chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return x5c
}

// ParseX5C decodes the value of a JWS x5c header of 1 to maxLength
// certificates, strictly (no second spelling of the same bytes). It checks
// the encoding only: Verify says whether the chain is trusted.
func ParseX5C(x5c []string, maxLength int) ([]*x509.Certificate, error) {
	if len(x5c) == 0 || len(x5c) > maxLength {
		return nil, fmt.Errorf("x5c has %d certificates, want 1 to %d", len(x5c), maxLength)
	}
	chain := make([]*x509.Certificate, 0, len(x5c))
	for i, c := range x5c {
		der, err := base64.StdEncoding.Strict().DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
		chain = append(chain, cert)
	}
	return chain, nil
}

// Validity returns the time in which every certificate of chain is valid.
func Validity(chain []*x509.Certificate) (notBefore, notAfter time.Time) {
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return notBefore, notAfter
}
