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
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"trustedcompute.io/tc/internal/signerid"
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
	// the given time, or it is not the verifier's signing identity
	// (signerid.Verify): a signing certificate that the CMS issued to
	// anyone else, from a CSR included, is untrusted.
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

// algFor returns the one algorithm this package signs and verifies with
// for a key (ES256 or ES384), so a header can never choose a weaker
// verification.
func algFor(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("%w: key type %T, want ECDSA P-256 or P-384", ErrAlgorithmNotAllowed, pub)
	}
	switch k.Curve {
	case elliptic.P256():
		return jose.ES256, nil
	case elliptic.P384():
		return jose.ES384, nil
	}
	return "", fmt.Errorf("%w: curve %s, want P-256 or P-384", ErrAlgorithmNotAllowed, k.Curve.Params().Name)
}

// Signer signs reports and EARs with the key of the verifier's signing
// certificate (compact serialization, the x5c chain in the protected
// header). It is immutable and safe for concurrent use.
//
// go-jose makes each type's protected header once, in NewSigner; sign then
// puts every token together from that header, the payload and the key's
// signature of the two (RFC 7515 5.1, RFC 7518 3.4), in one buffer of the
// token's size. go-jose's own Sign encoded the header (the whole x5c chain)
// and the payload again at every signature, in several growing buffers:
// about 43 kB a report, a quarter of what a report allocated at 10,000
// nodes (docs/performance.md). TestATokenIsWhatGoJOSESerializes holds the
// tokens to go-jose's: the same header and payload, a signature go-jose
// verifies.
type Signer struct {
	key  crypto.Signer
	hash crypto.Hash
	// size is the byte length of R and of S in a signature: the curve's.
	size int
	// prefixes holds, by typ, what begins the signer's compact tokens and
	// their signing input: the base64url of the protected header and a
	// dot. It is the same for every signature of a signer (alg, typ, x5c:
	// no nonce, no key ID).
	prefixes map[string][]byte
	build    string
}

// NewSigner returns a Signer for key, whose certificate chain (leaf
// first, then intermediates; the root may follow) is chain. The key must
// be ECDSA P-256 (ES256) or P-384 (ES384) and be the key of chain[0].
// Only a chain of the verifier's signing identity (signerid) makes tokens
// that Verify accepts.
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
	if slices.Contains(chain, nil) {
		return nil, errors.New("new report signer: nil certificate in the chain")
	}
	// go-jose encodes every header value by reflection, twice at every
	// signature; the chain is given to it as its JSON, encoded once.
	x5c, err := json.Marshal(signerid.EncodeX5C(chain))
	if err != nil {
		return nil, fmt.Errorf("new report signer: %w", err)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, errors.New("new report signer: the key is not the key of the leaf certificate")
	}
	var signingKey any = cryptosigner.Opaque(key)
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		signingKey = k
	}
	s := &Signer{key: key, hash: crypto.SHA256, size: 32, prefixes: map[string][]byte{}, build: buildID()}
	if alg == jose.ES384 {
		s.hash, s.size = crypto.SHA384, 48
	}
	for _, typ := range []string{TypeReport, TypeEAR, TypeIMAPolicy, TypeSecretAnswer} {
		js, err := headerSigner(typ, alg, signingKey, x5c)
		if err != nil {
			return nil, fmt.Errorf("new report signer: %w", err)
		}
		// The header go-jose signs with, from a token it serialized.
		probe, err := js.Sign([]byte("{}"))
		if err != nil {
			return nil, fmt.Errorf("new report signer: %w", err)
		}
		tok, err := probe.CompactSerialize()
		if err != nil {
			return nil, fmt.Errorf("new report signer: %w", err)
		}
		header, _, _ := strings.Cut(tok, ".")
		s.prefixes[typ] = []byte(header + ".")
	}
	return s, nil
}

// headerSigner is the go-jose signer whose protected header a Signer's
// tokens of type typ carry: alg, typ and the x5c chain (its JSON, x5c).
func headerSigner(typ string, alg jose.SignatureAlgorithm, key any, x5c []byte) (jose.Signer, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(headerX5C, encodedJSON(x5c))
	return jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
}

// headerX5C is the JWS header that carries the certificate chain.
const headerX5C jose.HeaderKey = "x5c"

// encodedJSON is a header value handed to go-jose as its JSON encoding.
type encodedJSON []byte

func (e encodedJSON) MarshalJSON() ([]byte, error) { return e, nil }

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

// sign returns the compact JWS of payload with the header of typ: what
// go-jose's CompactSerialize gives (TestATokenIsWhatGoJOSESerializes).
func (s *Signer) sign(typ string, payload []byte) (string, error) {
	prefix, ok := s.prefixes[typ]
	if !ok {
		return "", fmt.Errorf("sign: no header of type %q", typ)
	}
	enc := base64.RawURLEncoding
	var tok strings.Builder
	tok.Grow(len(prefix) + enc.EncodedLen(len(payload)) + 1 + enc.EncodedLen(2*s.size))
	// The signing input, header.payload, is hashed as it is written: a
	// hash takes bytes, and the token is a string.
	h := s.hash.New()
	tok.Write(prefix)
	h.Write(prefix)
	appendBase64(&tok, h, payload)
	sig, err := s.signDigest(h.Sum(nil))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	tok.WriteByte('.')
	appendBase64(&tok, nil, sig)
	return tok.String(), nil
}

// signDigest signs a digest with the key and returns the JWS form of the
// ECDSA signature: R and S, each big-endian in the curve's size.
func (s *Signer) signDigest(digest []byte) ([]byte, error) {
	der, err := s.key.Sign(rand.Reader, digest, s.hash)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
		return nil, errors.New("the key's signature is not an ASN.1 ECDSA signature")
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*s.size || rs.S.BitLen() > 8*s.size {
		return nil, errors.New("the key's signature does not fit its curve")
	}
	sig := make([]byte, 2*s.size)
	rs.R.FillBytes(sig[:s.size])
	rs.S.FillBytes(sig[s.size:])
	return sig, nil
}

// appendBase64 writes the base64url of src to b, without padding, and to h
// too unless it is nil, through a small buffer (it escapes to the heap
// through h).
func appendBase64(b *strings.Builder, h io.Writer, src []byte) {
	const chunk = 3 * 64
	var out [4 * 64]byte
	for len(src) > 0 {
		n := min(len(src), chunk)
		m := base64.RawURLEncoding.EncodedLen(n)
		base64.RawURLEncoding.Encode(out[:m], src[:n])
		b.Write(out[:m])
		if h != nil {
			_, _ = h.Write(out[:m]) // a hash never fails
		}
		src = src[n:]
	}
}

// signJSON signs the JSON encoding of v as a JWS of type typ, and returns
// that encoding.
func (s *Signer) signJSON(typ string, v any) (string, []byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	tok, err := s.sign(typ, payload)
	return tok, payload, err
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// signerKey is what a checked JWS header yields: the leaf's key and
// algorithm, and the time window in which every x5c certificate is valid.
type signerKey struct {
	pub                 *ecdsa.PublicKey
	alg                 jose.SignatureAlgorithm
	notBefore, notAfter time.Time
}

// verifyJWS checks a compact JWS of type typ and returns its payload:
// the header must name ES256 or ES384 fitting the leaf's key, the x5c
// chain must be the verifier's signing identity under roots at now
// (signerid.Verify), and the signature must verify (go-jose). cache, when not nil, remembers checked
// headers.
func verifyJWS(token, typ string, roots *x509.CertPool, now time.Time, cache *headerCache) ([]byte, error) {
	if len(token) > MaxTokenSize {
		return nil, malformed("%d bytes exceed the %d byte limit", len(token), MaxTokenSize)
	}
	h64, rest, ok := strings.Cut(token, ".")
	_, s64, ok2 := strings.Cut(rest, ".")
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
	// Strict: no second spelling of the same signature bytes (go-jose
	// decodes leniently; a second spelling of the header or the payload
	// changes the signing input and fails the signature).
	if _, err := base64.RawURLEncoding.Strict().DecodeString(s64); err != nil {
		return nil, malformed("signature: %v", err)
	}
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{key.alg})
	if err != nil {
		return nil, malformed("%v", err)
	}
	payload, err := obj.Verify(key.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignatureInvalid, err)
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
	var h signerid.JWSHeader
	if err := decodeStrict(header, &h); err != nil {
		return signerKey{}, malformed("header: %v", err)
	}
	if h.Alg != string(jose.ES256) && h.Alg != string(jose.ES384) {
		return signerKey{}, fmt.Errorf("%w: %q", ErrAlgorithmNotAllowed, h.Alg)
	}
	if h.Typ != typ {
		return signerKey{}, malformed("typ %q, want %q", h.Typ, typ)
	}
	chain, err := signerid.ParseX5C(h.X5C, maxChainLength)
	if err != nil {
		return signerKey{}, malformed("%v", err)
	}
	if err := signerid.Verify(chain, roots, now); err != nil {
		return signerKey{}, fmt.Errorf("%w: %w", ErrCertificateUntrusted, err)
	}
	alg, err := algFor(chain[0].PublicKey)
	if err != nil {
		return signerKey{}, err
	}
	if string(alg) != h.Alg {
		return signerKey{}, fmt.Errorf("%w: %q does not fit the certificate's key", ErrAlgorithmNotAllowed, h.Alg)
	}
	k := signerKey{pub: chain[0].PublicKey.(*ecdsa.PublicKey), alg: alg}
	k.notBefore, k.notAfter = signerid.Validity(chain)
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
