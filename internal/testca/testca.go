// Package testca is a certificate authority for tests: a self-signed P-256
// CA made for one test, that issues leaf certificates from templates, and a
// reader of PEM certificate files. It is for tests only.
package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a self-signed CA, valid from an hour ago to an hour from now.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is Cert, PEM-encoded.
	PEM []byte

	serial atomic.Int64
}

// New makes a CA named cn.
func New(t testing.TB, cn string) *CA {
	t.Helper()
	key := NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert := Sign(t, tmpl, tmpl, &key.PublicKey, key)
	ca := &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
	ca.serial.Store(1)
	return ca
}

// Sign makes a certificate of pub from tmpl, signed by parentKey as parent
// (tmpl itself and the key of pub for a self-signed one).
func Sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	der := must(x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey))(t)
	return must(x509.ParseCertificate(der))(t)
}

// NewKey makes a P-256 key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))(t)
}

// Pool is a pool that holds the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue signs a certificate of a new P-256 key from tmpl and returns its
// DER and the key. A zero serial number, start or end in tmpl is filled
// in: the next serial, an hour ago, an hour from now.
func (ca *CA) Issue(t testing.TB, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := NewKey(t)
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(ca.serial.Add(1))
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	return must(x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key))(t), key
}

// ServerCert issues a TLS server certificate for 127.0.0.1 and dnsNames.
func (ca *CA) ServerCert(t testing.TB, dnsNames ...string) tls.Certificate {
	t.Helper()
	der, key := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "test server"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    dnsNames,
	})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// CSR makes a certificate request named cn, signed by key.
func CSR(t testing.TB, key crypto.Signer, cn string) *x509.CertificateRequest {
	t.Helper()
	der := must(x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key))(t)
	return must(x509.ParseCertificateRequest(der))(t)
}

// ReadCert reads the first PEM block of the file at path as a certificate.
func ReadCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	data := must(os.ReadFile(path))(t) //nolint:gosec // G304: test fixtures the caller names
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	return must(x509.ParseCertificate(block.Bytes))(t)
}

// ParseCerts parses the PEM certificates of b, in order; it fails t unless
// there is at least one.
func ParseCerts(t testing.TB, b []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			break
		}
		certs = append(certs, must(x509.ParseCertificate(block.Bytes))(t))
		b = rest
	}
	if len(certs) == 0 {
		t.Fatal("no PEM certificate")
	}
	return certs
}

// must(f())(t) is the value f returns, or fails t with f's error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
