package flavor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512
)

// Errors of Verify; each is wrapped with the detail.
var (
	// ErrSignatureMalformed: the signature is not a JWS this package makes.
	ErrSignatureMalformed = errors.New("flavor signature is malformed")
	// ErrCertificateUntrusted: the signing certificate does not chain to the
	// roots, has expired, or is not a signing certificate.
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

type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	// X5C is the certificate chain, leaf first, standard base64 DER (RFC 7515 4.1.6).
	X5C []string `json:"x5c"`
}

// jwsAlg is a JWS algorithm this package signs and verifies with.
type jwsAlg struct {
	name string
	hash crypto.Hash // 0 for EdDSA, which signs the message itself
}

// algFor returns the one algorithm a public key signs flavors with, so that
// the header's alg can never choose a weaker verification.
func algFor(pub crypto.PublicKey) (jwsAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jwsAlg{"ES256", crypto.SHA256}, nil
		case elliptic.P384():
			return jwsAlg{"ES384", crypto.SHA384}, nil
		case elliptic.P521():
			return jwsAlg{"ES512", crypto.SHA512}, nil
		}
		return jwsAlg{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return jwsAlg{}, fmt.Errorf("an RSA key of %d bits is too small", k.N.BitLen())
		}
		return jwsAlg{"PS384", crypto.SHA384}, nil
	case ed25519.PublicKey:
		return jwsAlg{"EdDSA", 0}, nil
	}
	return jwsAlg{}, fmt.Errorf("unsupported key type %T", pub)
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

// Sign signs a flavor with the key of a CMS-issued signing certificate.
// chain is the certificate chain, leaf (the signer's certificate) first.
//
// The signature is a compact JWS with a detached payload (RFC 7515
// appendix F): BASE64URL(header) ".." BASE64URL(signature), where the
// header holds alg (ES256, ES384, ES512, PS384 or EdDSA, fixed by the key),
// typ "tc-flavor+jws" and the x5c chain, and the payload is
// CanonicalEncoding(f). Any JOSE library can check it offline. The
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
	h := jwsHeader{Alg: alg.name, Typ: jwsType}
	for _, c := range chain {
		h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(c.Raw))
	}
	header, err := json.Marshal(h)
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	payload, err := CanonicalEncoding(f)
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	h64 := base64.RawURLEncoding.EncodeToString(header)
	sig, err := signJWS(signer, alg, signingInput(h64, payload))
	if err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	// The returned flavor is decoded from the signed bytes: exactly what a
	// verifier will see, and sharing no memory with f.
	var signed Flavor
	if err := json.Unmarshal(payload, &signed); err != nil {
		return SignedFlavor{}, fmt.Errorf("sign flavor: %w", err)
	}
	return SignedFlavor{Flavor: signed, Signature: h64 + ".." + base64.RawURLEncoding.EncodeToString(sig)}, nil
}

func signingInput(header64 string, payload []byte) []byte {
	return []byte(header64 + "." + base64.RawURLEncoding.EncodeToString(payload))
}

func digest(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// signJWS signs with crypto/rand as the randomness source (ECDSA and PSS
// need one); this is the only place the package reads randomness.
func signJWS(signer crypto.Signer, alg jwsAlg, msg []byte) ([]byte, error) {
	switch alg.name {
	case "EdDSA":
		return signer.Sign(rand.Reader, msg, crypto.Hash(0))
	case "PS384":
		return signer.Sign(rand.Reader, digest(alg.hash, msg), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: alg.hash})
	}
	der, err := signer.Sign(rand.Reader, digest(alg.hash, msg), alg.hash)
	if err != nil {
		return nil, err
	}
	var s struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &s); err != nil {
		return nil, fmt.Errorf("decode the ECDSA signature: %w", err)
	}
	size := (signer.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	s.R.FillBytes(out[:size])
	s.S.FillBytes(out[size:])
	return out, nil
}

// Verify checks a signed flavor at time now: the x5c chain must lead to one
// of roots (the CMS signing CA), the leaf must be a signing certificate
// (digitalSignature key usage, not a CA, and no extended key usage, any, or
// code signing: a TLS certificate of the same CMS does not qualify), and
// the signature must verify over CanonicalEncoding(sf.Flavor). The errors
// wrap ErrSignatureMalformed, ErrCertificateUntrusted or ErrSignatureInvalid.
func Verify(sf SignedFlavor, roots *x509.CertPool, now time.Time) error {
	return verify(sf, roots, now, nil)
}

// headerCheck is the outcome of checking a JWS header: the leaf certificate and
// its algorithm, or why the header is not trusted.
type headerCheck struct {
	leaf *x509.Certificate
	alg  jwsAlg
	err  error
}

// verify is Verify with a cache of checked headers (by their encoding, which
// holds the whole chain), so that one evaluation checks a chain only once.
func verify(sf SignedFlavor, roots *x509.CertPool, now time.Time, headers map[string]headerCheck) error {
	h64, sig, err := splitJWS(sf.Signature)
	if err != nil {
		return fmt.Errorf("verify flavor %q: %w", sf.Flavor.Meta.ID, err)
	}
	s, cached := headers[h64]
	if !cached {
		s = checkHeader(h64, roots, now)
		if headers != nil {
			headers[h64] = s
		}
	}
	if s.err != nil {
		return fmt.Errorf("verify flavor %q: %w", sf.Flavor.Meta.ID, s.err)
	}
	payload, err := CanonicalEncoding(sf.Flavor)
	if err != nil {
		return fmt.Errorf("verify flavor %q: %w: %w", sf.Flavor.Meta.ID, ErrSignatureInvalid, err)
	}
	if !verifyJWS(s.leaf.PublicKey, s.alg, signingInput(h64, payload), sig) {
		return fmt.Errorf("verify flavor %q: %w", sf.Flavor.Meta.ID, ErrSignatureInvalid)
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSignatureMalformed, fmt.Sprintf(format, args...))
}

// splitJWS splits a compact JWS with a detached payload into its encoded
// header and its signature bytes.
func splitJWS(s string) (string, []byte, error) {
	if len(s) > maxSignatureSize {
		return "", nil, malformed("%d bytes exceed the %d byte limit", len(s), maxSignatureSize)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[1] != "" {
		return "", nil, malformed("want a compact JWS with a detached payload")
	}
	// Strict: no second spelling of the same signature bytes.
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return "", nil, malformed("signature: %v", err)
	}
	return parts[0], sig, nil
}

// checkHeader decodes a JWS header, checks its chain and that its alg is
// the one of the leaf's key.
func checkHeader(h64 string, roots *x509.CertPool, now time.Time) headerCheck {
	header, err := base64.RawURLEncoding.Strict().DecodeString(h64)
	if err != nil {
		return headerCheck{err: malformed("header: %v", err)}
	}
	var h jwsHeader
	if err := decodeStrict(header, maxSignatureSize, &h); err != nil {
		return headerCheck{err: malformed("header: %v", err)}
	}
	if h.Typ != jwsType {
		return headerCheck{err: malformed("typ %q, want %q", h.Typ, jwsType)}
	}
	if len(h.X5C) == 0 || len(h.X5C) > maxChainLength {
		return headerCheck{err: malformed("x5c has %d certificates, want 1 to %d", len(h.X5C), maxChainLength)}
	}
	var chain []*x509.Certificate
	for i, c := range h.X5C {
		der, err := base64.StdEncoding.Strict().DecodeString(c)
		if err != nil {
			return headerCheck{err: malformed("x5c[%d]: %v", i, err)}
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return headerCheck{err: malformed("x5c[%d]: %v", i, err)}
		}
		chain = append(chain, cert)
	}
	if err := verifyChain(chain, roots, now); err != nil {
		return headerCheck{err: err}
	}
	alg, err := algFor(chain[0].PublicKey)
	if err != nil || alg.name != h.Alg {
		return headerCheck{err: malformed("alg %q does not fit the certificate's key", h.Alg)}
	}
	return headerCheck{leaf: chain[0], alg: alg}
}

func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	// A nil pool would make x509 use the system roots, a zero time the clock.
	if roots == nil {
		return fmt.Errorf("%w: no signing CA roots are configured", ErrCertificateUntrusted)
	}
	if now.IsZero() {
		return fmt.Errorf("%w: no verification time", ErrCertificateUntrusted)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("%w: %w", ErrCertificateUntrusted, err)
	}
	if leaf.IsCA {
		return fmt.Errorf("%w: %q is a CA certificate", ErrCertificateUntrusted, leaf.Subject)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: %q lacks the digitalSignature key usage", ErrCertificateUntrusted, leaf.Subject)
	}
	if len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0 {
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) && !hasDocumentSigning(leaf) {
			return fmt.Errorf("%w: %q is not a signing certificate (extended key usage)", ErrCertificateUntrusted, leaf.Subject)
		}
	}
	return nil
}

// oidDocumentSigning is id-kp-documentSigning (RFC 9336), the extended key
// usage of the CMS "Signing" certificates that sign flavors and reports.
var oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

func hasDocumentSigning(c *x509.Certificate) bool {
	for _, oid := range c.UnknownExtKeyUsage {
		if oid.Equal(oidDocumentSigning) {
			return true
		}
	}
	return false
}

func verifyJWS(pub crypto.PublicKey, alg jwsAlg, msg, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPSS(k, alg.hash, digest(alg.hash, msg), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: alg.hash}) == nil
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest(alg.hash, msg), r, s)
	}
	return false
}
