package signerid

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Limits of VerifyJWS on untrusted input.
const (
	// MaxJWSSize bounds a token VerifyJWS reads.
	MaxJWSSize = 1 << 20
	// MaxJWSChain bounds the x5c chain.
	MaxJWSChain = 8
)

// VerifyJWS checks a compact JWS (RFC 7515) of type typ signed with the
// verifier's signing identity and returns its payload: the protected
// header is exactly alg, typ and x5c (strict base64url and JSON), the x5c
// chain is the verifier's signing identity under roots at now (Verify), alg
// is the one algorithm of the leaf's key (ES256 for P-256, ES384 for
// P-384), and the signature verifies. It uses the standard library alone,
// for relying parties that link no JOSE library (the trust agent); the
// verifier's package report checks its tokens the same way with go-jose.
func VerifyJWS(token, typ string, roots *x509.CertPool, now time.Time) ([]byte, error) {
	if len(token) > MaxJWSSize {
		return nil, fmt.Errorf("jws of %d bytes exceeds %d", len(token), MaxJWSSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("jws: want a compact JWS of three parts")
	}
	enc := base64.RawURLEncoding.Strict()
	header, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("jws header: %w", err)
	}
	h, err := parseJWSHeader(header)
	if err != nil {
		return nil, err
	}
	if h.Typ != typ {
		return nil, fmt.Errorf("jws typ %q, want %q", h.Typ, typ)
	}
	chain, err := ParseX5C(h.X5C, MaxJWSChain)
	if err != nil {
		return nil, fmt.Errorf("jws: %w", err)
	}
	if err := Verify(chain, roots, now); err != nil {
		return nil, fmt.Errorf("jws: %w", err)
	}
	pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("jws: key type %T, want ECDSA", chain[0].PublicKey)
	}
	var (
		hash crypto.Hash
		size int
	)
	switch {
	case pub.Curve == elliptic.P256() && h.Alg == "ES256":
		hash, size = crypto.SHA256, 32
	case pub.Curve == elliptic.P384() && h.Alg == "ES384":
		hash, size = crypto.SHA384, 48
	default:
		return nil, fmt.Errorf("jws alg %q does not fit the certificate's key", h.Alg)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("jws signature: %w", err)
	}
	if len(sig) != 2*size {
		return nil, fmt.Errorf("jws signature of %d bytes, want %d", len(sig), 2*size)
	}
	d := hash.New()
	d.Write([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(pub, d.Sum(nil), r, s) {
		return nil, errors.New("jws signature does not verify")
	}
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("jws payload: %w", err)
	}
	return payload, nil
}

// parseJWSHeader decodes a protected header of exactly alg, typ and x5c
// (crypto/x509 links the SHA-256 and SHA-384 the algorithms hash with).
func parseJWSHeader(b []byte) (JWSHeader, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return JWSHeader{}, fmt.Errorf("jws header: %w", err)
	}
	var h JWSHeader
	want := map[string]any{"alg": &h.Alg, "typ": &h.Typ, "x5c": &h.X5C}
	if len(fields) != len(want) {
		return JWSHeader{}, fmt.Errorf("jws header has %d fields, want alg, typ and x5c", len(fields))
	}
	for name, dst := range want {
		raw, ok := fields[name]
		if !ok {
			return JWSHeader{}, fmt.Errorf("jws header has no %s", name)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return JWSHeader{}, fmt.Errorf("jws header %s: %w", name, err)
		}
	}
	return h, nil
}
