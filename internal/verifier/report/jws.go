package report

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime/debug"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/verifier/cms"

	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384
)

// Errors of Verify and VerifyEAR; each is wrapped with the detail, so
// callers tell the cases apart with errors.Is.
var (
	// ErrMalformed: the token is not a compact JWS of the expected type,
	// or its payload does not decode.
	ErrMalformed = errors.New("signed report is malformed")
	// ErrAlgorithmNotAllowed: the header names an algorithm other than
	// ES256 or ES384, or one that does not fit the certificate's key.
	ErrAlgorithmNotAllowed = errors.New("signature algorithm is not allowed")
	// ErrCertificateUntrusted: the x5c chain does not lead to the roots at
	// the given time, or its leaf is not a CMS signing certificate.
	ErrCertificateUntrusted = errors.New("signing certificate is not trusted")
	// ErrSignatureInvalid: the signature does not verify.
	ErrSignatureInvalid = errors.New("signature does not verify")
	// ErrExpired: the report or the attestation result has expired.
	ErrExpired = errors.New("signed report has expired")
	// ErrClaimsInvalid: the EAR claims set lacks or misspells a claim.
	ErrClaimsInvalid = errors.New("attestation result claims are invalid")
)

// JWS header types. A report and an EAR are not interchangeable: each
// verifier accepts only its own type.
const (
	TypeReport = "tc-report+jwt"
	TypeEAR    = "JWT"
)

// Limits on untrusted input.
const (
	// MaxTokenSize bounds a signed report or EAR; reports with long IMA
	// fault lists are large, but not this large.
	MaxTokenSize   = 8 << 20
	maxChainLength = 8
	maxHeaderSize  = 64 << 10
)

// jwsAlg is an algorithm this package signs and verifies with. The key
// fixes it, so a header can never choose a weaker verification.
type jwsAlg struct {
	name  string
	hash  crypto.Hash
	curve elliptic.Curve
	size  int // bytes of r and of s
}

var (
	es256 = jwsAlg{"ES256", crypto.SHA256, elliptic.P256(), 32}
	es384 = jwsAlg{"ES384", crypto.SHA384, elliptic.P384(), 48}
)

func algFor(pub crypto.PublicKey) (jwsAlg, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return jwsAlg{}, fmt.Errorf("%w: key type %T, want ECDSA P-256 or P-384", ErrAlgorithmNotAllowed, pub)
	}
	switch k.Curve {
	case elliptic.P256():
		return es256, nil
	case elliptic.P384():
		return es384, nil
	}
	return jwsAlg{}, fmt.Errorf("%w: curve %s, want P-256 or P-384", ErrAlgorithmNotAllowed, k.Curve.Params().Name)
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	// X5C is the certificate chain, leaf first, standard base64 DER
	// (RFC 7515 section 4.1.6).
	X5C []string `json:"x5c"`
}

// Signer signs reports and EARs with the key of a CMS signing
// certificate. It is immutable and safe for concurrent use.
type Signer struct {
	key crypto.Signer
	alg jwsAlg
	x5c []string
	// headers holds the encoded JWS header by typ.
	headers map[string]string
	build   string
}

// NewSigner returns a Signer for key, whose certificate chain (leaf
// first, then intermediates; the root may follow) is chain. The key must
// be ECDSA P-256 (ES256) or P-384 (ES384) and be the key of chain[0].
func NewSigner(key crypto.Signer, chain []*x509.Certificate) (*Signer, error) {
	if key == nil {
		return nil, errors.New("new report signer: no key")
	}
	if len(chain) == 0 || len(chain) > maxChainLength {
		return nil, fmt.Errorf("new report signer: the chain has %d certificates, want 1 to %d", len(chain), maxChainLength)
	}
	alg, err := algFor(key.Public())
	if err != nil {
		return nil, fmt.Errorf("new report signer: %w", err)
	}
	s := &Signer{key: key, alg: alg, headers: map[string]string{}, build: buildID()}
	for _, c := range chain {
		if c == nil {
			return nil, errors.New("new report signer: nil certificate in the chain")
		}
		s.x5c = append(s.x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, errors.New("new report signer: the key is not the key of the leaf certificate")
	}
	for _, typ := range []string{TypeReport, TypeEAR} {
		h, err := json.Marshal(jwsHeader{Alg: alg.name, Typ: typ, X5C: s.x5c})
		if err != nil {
			return nil, fmt.Errorf("new report signer: %w", err)
		}
		s.headers[typ] = base64.RawURLEncoding.EncodeToString(h)
	}
	return s, nil
}

// buildID names the running build for ear.verifier-id.
func buildID() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "tc unknown"
	}
	id := "tc " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			id += " " + s.Value
		}
	}
	return id
}

// sign returns the compact JWS of payload with the header of typ.
func (s *Signer) sign(typ string, payload []byte) (string, error) {
	var b strings.Builder
	h64 := s.headers[typ]
	b.Grow(len(h64) + 1 + base64.RawURLEncoding.EncodedLen(len(payload)) + 1 + base64.RawURLEncoding.EncodedLen(2*s.alg.size))
	b.WriteString(h64)
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(payload))
	der, err := s.key.Sign(rand.Reader, digest(s.alg.hash, b.String()), s.alg.hash)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 ||
		rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*s.alg.size || rs.S.BitLen() > 8*s.alg.size {
		return "", errors.New("sign: the key returned no ECDSA signature of its curve")
	}
	sig := make([]byte, 2*s.alg.size)
	rs.R.FillBytes(sig[:s.alg.size])
	rs.S.FillBytes(sig[s.alg.size:])
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(sig))
	return b.String(), nil
}

// digest hashes the concatenation of parts; writes to a hash never fail.
func digest(h crypto.Hash, parts ...string) []byte {
	d := h.New()
	for _, p := range parts {
		_, _ = io.WriteString(d, p)
	}
	return d.Sum(nil)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// signerKey is what a checked JWS header yields: the leaf's key and
// algorithm, and the time window in which every x5c certificate is valid.
type signerKey struct {
	pub                 *ecdsa.PublicKey
	alg                 jwsAlg
	notBefore, notAfter time.Time
}

// verifyJWS checks a compact JWS of type typ and returns its payload:
// the header must name ES256 or ES384 fitting the leaf's key, the x5c
// chain must be a CMS signing chain under roots at now (cms.VerifySigning),
// and the signature must verify. cache, when not nil, remembers checked
// headers.
func verifyJWS(token, typ string, roots *x509.CertPool, now time.Time, cache *headerCache) ([]byte, error) {
	if len(token) > MaxTokenSize {
		return nil, malformed("%d bytes exceed the %d byte limit", len(token), MaxTokenSize)
	}
	h64, rest, ok := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(s64, ".") {
		return nil, malformed("want a compact JWS of three parts")
	}
	// A nil pool would make x509 use the system roots, a zero time the clock.
	if roots == nil {
		return nil, fmt.Errorf("%w: no CMS roots are configured", ErrCertificateUntrusted)
	}
	if now.IsZero() {
		return nil, fmt.Errorf("%w: no verification time", ErrCertificateUntrusted)
	}
	key, ok := cache.get(typ, h64, now)
	if !ok {
		var err error
		if key, err = checkHeader(h64, typ, roots, now); err != nil {
			return nil, err
		}
		cache.put(typ, h64, key)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil {
		return nil, malformed("signature: %v", err)
	}
	if len(sig) != 2*key.alg.size {
		return nil, fmt.Errorf("%w: %d signature bytes, want %d", ErrSignatureInvalid, len(sig), 2*key.alg.size)
	}
	r := new(big.Int).SetBytes(sig[:key.alg.size])
	s := new(big.Int).SetBytes(sig[key.alg.size:])
	if !ecdsa.Verify(key.pub, digest(key.alg.hash, h64, ".", p64), r, s) {
		return nil, ErrSignatureInvalid
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(p64)
	if err != nil {
		return nil, malformed("payload: %v", err)
	}
	return payload, nil
}

// checkHeader decodes a JWS header and checks its alg, its typ and its
// x5c chain at now.
func checkHeader(h64, typ string, roots *x509.CertPool, now time.Time) (signerKey, error) {
	if len(h64) > base64.RawURLEncoding.EncodedLen(maxHeaderSize) {
		return signerKey{}, malformed("header exceeds %d bytes", maxHeaderSize)
	}
	// Strict decoding: no second spelling of the same bytes.
	header, err := base64.RawURLEncoding.Strict().DecodeString(h64)
	if err != nil {
		return signerKey{}, malformed("header: %v", err)
	}
	var h jwsHeader
	if err := decodeStrict(header, &h); err != nil {
		return signerKey{}, malformed("header: %v", err)
	}
	if h.Alg != es256.name && h.Alg != es384.name {
		return signerKey{}, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, h.Alg)
	}
	if h.Typ != typ {
		return signerKey{}, malformed("typ %q, want %q", h.Typ, typ)
	}
	if len(h.X5C) == 0 || len(h.X5C) > maxChainLength {
		return signerKey{}, malformed("x5c has %d certificates, want 1 to %d", len(h.X5C), maxChainLength)
	}
	chain := make([]*x509.Certificate, 0, len(h.X5C))
	for i, c := range h.X5C {
		der, err := base64.StdEncoding.Strict().DecodeString(c)
		if err != nil {
			return signerKey{}, malformed("x5c[%d]: %v", i, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return signerKey{}, malformed("x5c[%d]: %v", i, err)
		}
		chain = append(chain, cert)
	}
	if err := cms.VerifySigning(chain, roots, now); err != nil {
		return signerKey{}, fmt.Errorf("%w: %w", ErrCertificateUntrusted, err)
	}
	alg, err := algFor(chain[0].PublicKey)
	if err != nil {
		return signerKey{}, err
	}
	if alg.name != h.Alg {
		return signerKey{}, fmt.Errorf("%w: %q does not fit the certificate's key", ErrAlgorithmNotAllowed, h.Alg)
	}
	k := signerKey{pub: chain[0].PublicKey.(*ecdsa.PublicKey), alg: alg, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, c := range chain[1:] {
		if c.NotBefore.After(k.notBefore) {
			k.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(k.notAfter) {
			k.notAfter = c.NotAfter
		}
	}
	return k, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
