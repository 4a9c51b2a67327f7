package report

import (
	"crypto/x509"
	"sync"
	"time"
)

// maxCachedHeaders bounds the headers a Verifier remembers; a verifier
// sees few signers (one per HVS replica and key rotation).
const maxCachedHeaders = 64

// Verifier verifies signed reports and EARs under fixed roots, remembering
// the JWS headers (the x5c chains) it has checked, so that the chain is
// verified once per signer rather than once per report: a relying party
// that reads the reports of a fleet pays for one ECDSA verification per
// report. A remembered chain is used only while now falls within the
// validity of every x5c certificate; a root is assumed to outlive the
// certificates it issued (the CMS never issues past its issuer). It is
// safe for concurrent use.
type Verifier struct {
	roots *x509.CertPool
	cache headerCache
}

// NewVerifier returns a Verifier trusting roots, the CMS root CA
// certificates.
func NewVerifier(roots *x509.CertPool) *Verifier {
	return &Verifier{roots: roots}
}

// Verify is the function Verify with the Verifier's roots.
func (v *Verifier) Verify(jws string, now time.Time) (*Report, error) {
	return verifyReport(jws, v.roots, now, &v.cache)
}

// VerifyEAR is the function VerifyEAR with the Verifier's roots.
func (v *Verifier) VerifyEAR(token string, now time.Time) (map[string]any, error) {
	return verifyEAR(token, v.roots, now, &v.cache)
}

// headerCache remembers checked JWS headers by expected type and encoding.
// A nil *headerCache remembers nothing.
type headerCache struct {
	mu      sync.Mutex
	headers map[string]signerKey
}

func (c *headerCache) get(typ, h64 string, now time.Time) (signerKey, bool) {
	if c == nil {
		return signerKey{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.headers[typ+"."+h64]
	if !ok || now.Before(k.notBefore) || now.After(k.notAfter) {
		return signerKey{}, false
	}
	return k, true
}

func (c *headerCache) put(typ, h64 string, k signerKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headers == nil || len(c.headers) >= maxCachedHeaders {
		c.headers = map[string]signerKey{}
	}
	c.headers[typ+"."+h64] = k
}
