package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

const (
	pemKey  = "PRIVATE KEY"
	pemCert = "CERTIFICATE"
)

// NewKey makes a P-384 key, the kind every CA here holds.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// NewSerial returns a random positive 128-bit certificate serial number.
func NewSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never zero
}

// NewTemplate starts a certificate for subject CN cn with a fresh serial
// number, valid from shortly before now (for clock skew) for ttl, but not
// past the end of issuer when issuer is not nil.
func NewTemplate(cn string, now time.Time, ttl time.Duration, issuer *x509.Certificate) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(ttl)
	if issuer != nil && notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
	}, nil
}

// Certify signs a certificate of pub from tmpl with parentKey as parent and
// parses it back.
func Certify(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return cert, nil
}

// EncodeKeyPair encodes a CA as it is stored: PEM of the PKCS#8 key, then
// of the certificate.
func EncodeKeyPair(key *ecdsa.PrivateKey, cert *x509.Certificate) ([]byte, error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: k})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: cert.Raw})...), nil
}

// DecodeKeyPair decodes what EncodeKeyPair wrote. It does not check that the
// key matches the certificate.
func DecodeKeyPair(b []byte) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	kb, rest := pem.Decode(b)
	if kb == nil || kb.Type != pemKey {
		return nil, nil, errors.New("first PEM block must be a PRIVATE KEY")
	}
	cb, rest := pem.Decode(rest)
	if cb == nil || cb.Type != pemCert {
		return nil, nil, errors.New("second PEM block must be a CERTIFICATE")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, errors.New("trailing data after the certificate")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("key is %T, want an ECDSA key", k)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	return key, cert, nil
}
