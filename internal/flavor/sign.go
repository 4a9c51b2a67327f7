package flavor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"trustedcompute.io/tc/internal/signerid"
)

// Errors of Verify; each is wrapped with the detail.
var (
	// ErrSignatureMalformed: the signature is not a JWS this package makes.
	ErrSignatureMalformed = errors.New("flavor signature is malformed")
	// ErrCertificateUntrusted: the signing certificate does not chain to the
	// roots, has expired, or is not the verifier's own signing certificate
	// (signerid.Verify).
	ErrCertificateUntrusted = errors.New("flavor signing certificate is not trusted")
	// ErrSignatureInvalid: the signature does not verify over the flavor.
	ErrSignatureInvalid = errors.New("flavor signature does not verify")
)

// JWS header values of a flavor signature.
const (
	jwsType          = "tc-flavor+jws"
	maxSignatureSize = 64 << 10
	maxChainLength   = 8
)

// algFor returns the one algorithm a public key signs flavors with, so that
// the header's alg can never choose a weaker verification.
func algFor(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("an RSA key of %d bits is too small", k.N.BitLen())
		}
		return jose.PS384, nil
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// CanonicalEncoding returns the bytes a flavor signature covers: the
// encoding/json encoding of the Flavor struct. It is deterministic: fields
// come in declaration order, the model has no maps and no floats, times are
// RFC 3339 with nanoseconds, and decoding then re-encoding any flavor gives
// the same bytes again. The signature therefore covers what a verifier
// decoded, not how the sender spelled it.
func CanonicalEncoding(f Flavor) ([]byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode flavor: %w", err)
	}
	return b, nil
}

// Sign signs a flavor with the key of the verifier's signing certificate
// (go-jose). chain is the certificate chain, leaf (the signer's
// certificate) first; only the verifier's signing identity makes flavors
// that Verify accepts.
//
// The signature is a compact JWS with a detached payload (RFC 7515
// appendix F): BASE64URL(header) ".." BASE64URL(signature), where the
// header holds alg (ES256, ES384, ES512, PS384 or EdDSA, fixed by the key),
// typ "tc-flavor+jws" and the x5c chain, and the payload is
// CanonicalEncoding(f). Any JOSE library can check it offline, given
// the signing identity check of signerid.Verify besides the chain. The
// returned flavor is a deep copy of f.
func Sign(f Flavor, signer crypto.Signer, chain []*x509.Certificate) (SignedFlavor, error) {
	if err := f.Validate(); err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	if len(chain) == 0 || len(chain) > maxChainLength {
		return SignedFlavor{}, fmt.Errorf("sign flavor: the chain has %d certificates, want 1 to %d", len(chain), maxChainLength)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return SignedFlavor{}, errors.New("sign flavor: the signer's key is not the key of the leaf certificate")
	}
	alg, err := algFor(chain[0].PublicKey)
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: joseKey(signer)},
		(&jose.SignerOptions{}).WithType(jwsType).WithHeader(headerX5C, signerid.EncodeX5C(chain)))
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	payload, err := CanonicalEncoding(f)
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	sig, err := obj.DetachedCompactSerialize()
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	// The returned flavor is decoded from the signed bytes: exactly what a
	// verifier will see, and sharing no memory with f.
	var signed Flavor
	if err := json.Unmarshal(payload, &signed); err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	return SignedFlavor{Flavor: signed, Signature: sig}, nil
}

// headerX5C is the JWS header that carries the certificate chain.
const headerX5C jose.HeaderKey = "x5c"

// joseKey passes the private keys go-jose knows as they are (RSA-PSS then
// uses a salt as long as the hash, as RFC 7518 asks) and wraps any other
// signer (an HSM, a TPM).
func joseKey(signer crypto.Signer) any {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return k
	}
	return cryptosigner.Opaque(signer)
}

// Verify checks a signed flavor at time now: the x5c chain must be the
// verifier's own signing identity under roots, the CMS root (signerid.Verify:
// the verifier's signing certificate under the verifier signing CA; a
// signing certificate the CMS issued to anyone else, from a CSR included,
// does not qualify), the header's alg must be the one of the leaf's key,
// and the signature must verify over CanonicalEncoding(sf.Flavor). The
// errors wrap ErrSignatureMalformed, ErrCertificateUntrusted or
// ErrSignatureInvalid.
func Verify(sf SignedFlavor, roots *x509.CertPool, now time.Time) error {
	_, err := verifyHeader(sf, roots, now, nil)
	return err
}

// headerCheck is the outcome of checking a JWS header: the leaf certificate and
// its algorithm, or why the header is not trusted.
type headerCheck struct {
	leaf *x509.Certificate
	alg  jose.SignatureAlgorithm
	err  error
	// from and until bound the time in which every certificate of the x5c
	// chain is valid.
	from, until time.Time
}

// verifyHeader is Verify with a cache of checked headers (by their encoding,
// which holds the whole chain), so that one evaluation checks a chain only
// once; it returns the header it checked.
func verifyHeader(sf SignedFlavor, roots *x509.CertPool, now time.Time, headers map[string]headerCheck) (headerCheck, error) {
	h64, err := splitJWS(sf.Signature)
	if err != nil {
		return headerCheck{}, fmt.Errorf("verify flavor %q: %w", sf.Flavor.Meta.ID, err)
	}
	s, cached := headers[h64]
	if !cached {
		s = checkHeader(h64, roots, now)
		if headers != nil {
			headers[h64] = s
		}
	}
	if s.err != nil {
		return s, fmt.Errorf("verify flavor %q: %w", sf.Flavor.Meta.ID, s.err)
	}
	payload, err := CanonicalEncoding(sf.Flavor)
	if err != nil {
		return s, fmt.Errorf("verify flavor %q: %w: %w", sf.Flavor.Meta.ID, ErrSignatureInvalid, err)
	}
	obj, err := jose.ParseDetached(sf.Signature, payload, []jose.SignatureAlgorithm{s.alg})
	if err != nil {
		return s, fmt.Errorf("verify flavor %q: %w", sf.Flavor.Meta.ID, malformed("%v", err))
	}
	if _, err := obj.Verify(s.leaf.PublicKey); err != nil {
		return s, fmt.Errorf("verify flavor %q: %w: %w", sf.Flavor.Meta.ID, ErrSignatureInvalid, err)
	}
	return s, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSignatureMalformed, fmt.Sprintf(format, args...))
}

// splitJWS checks the shape of a compact JWS with a detached payload and
// returns its encoded header.
func splitJWS(s string) (string, error) {
	if len(s) > maxSignatureSize {
		return "", malformed("%d bytes exceed the %d byte limit", len(s), maxSignatureSize)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[1] != "" {
		return "", malformed("want a compact JWS with a detached payload")
	}
	// Strict: no second spelling of the same signature bytes (go-jose
	// decodes leniently).
	if _, err := base64.RawURLEncoding.Strict().DecodeString(parts[2]); err != nil {
		return "", malformed("signature: %v", err)
	}
	return parts[0], nil
}

// checkHeader decodes a JWS header, checks its chain and that its alg is
// the one of the leaf's key.
func checkHeader(h64 string, roots *x509.CertPool, now time.Time) headerCheck {
	header, err := base64.RawURLEncoding.Strict().DecodeString(h64)
	if err != nil {
		return headerCheck{err: malformed("header: %v", err)}
	}
	var h signerid.JWSHeader
	if err := decodeStrict(header, maxSignatureSize, &h); err != nil {
		return headerCheck{err: malformed("header: %v", err)}
	}
	if h.Typ != jwsType {
		return headerCheck{err: malformed("typ %q, want %q", h.Typ, jwsType)}
	}
	chain, err := signerid.ParseX5C(h.X5C, maxChainLength)
	if err != nil {
		return headerCheck{err: malformed("%v", err)}
	}
	if err := signerid.Verify(chain, roots, now); err != nil {
		return headerCheck{err: fmt.Errorf("%w: %w", ErrCertificateUntrusted, err)}
	}
	alg, err := algFor(chain[0].PublicKey)
	if err != nil || string(alg) != h.Alg {
		return headerCheck{err: malformed("alg %q does not fit the certificate's key", h.Alg)}
	}
	hc := headerCheck{leaf: chain[0], alg: alg}
	hc.from, hc.until = signerid.Validity(chain)
	return hc
}
