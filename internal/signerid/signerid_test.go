package signerid

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/testca"
)

var now = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64

// mint makes a certificate from tmpl under parent (self-signed when nil).
func mint(t testing.TB, tmpl *x509.Certificate, parent *issuer) issuer {
	t.Helper()
	key := testca.NewKey(t)
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	return issuer{cert: testca.Sign(t, tmpl, signer, key.Public(), signerKey), key: key}
}

func caTemplate(cn string, docSigning bool) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: []string{Organization}},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	if docSigning {
		c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDExtKeyUsageDocumentSigning}
	}
	return c
}

func leafTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{OIDExtKeyUsageDocumentSigning}}
}

func TestVerifyAcceptsOnlyTheVerifierSigningChain(t *testing.T) {
	root := mint(t, caTemplate("Trusted Compute Root CA", false), nil)
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	verifierCA := mint(t, caTemplate(CACommonName, true), &root)
	signingCA := mint(t, caTemplate("Trusted Compute Signing CA", true), &root)
	own := mint(t, leafTemplate(LeafCommonName), &verifierCA)

	foreignRoot := mint(t, caTemplate("Trusted Compute Root CA", false), nil)
	foreignVerifierCA := mint(t, caTemplate(CACommonName, true), &foreignRoot)
	nested := mint(t, caTemplate(CACommonName, true), &verifierCA)

	// leafUnder mints tmpl under ca: the chain leaf, ca.
	leafUnder := func(tmpl *x509.Certificate, ca *issuer) []*x509.Certificate {
		return []*x509.Certificate{mint(t, tmpl, ca).cert, ca.cert}
	}
	ownChain := []*x509.Certificate{own.cert, verifierCA.cert}
	tlsLeaf := leafTemplate(LeafCommonName)
	tlsLeaf.UnknownExtKeyUsage, tlsLeaf.ExtKeyUsage = nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tests := []struct {
		name    string
		chain   []*x509.Certificate
		roots   *x509.CertPool
		at      time.Time
		wantErr error // nil: accepted; errAny: refused for another reason
	}{
		{"the verifier's certificate under the verifier signing CA is accepted", ownChain, roots, now, nil},
		{"the same chain with the root appended is accepted",
			[]*x509.Certificate{own.cert, verifierCA.cert, root.cert}, roots, now, nil},
		{"a signing certificate under the Signing CA is not the verifier",
			leafUnder(leafTemplate(LeafCommonName), &signingCA), roots, now, ErrNotVerifier},
		{"a signing certificate issued by the root itself is not the verifier",
			[]*x509.Certificate{mint(t, leafTemplate(LeafCommonName), &root).cert}, roots, now, ErrNotVerifier},
		{"a certificate under a CA named like the verifier signing CA below it is not the verifier",
			append(leafUnder(leafTemplate(LeafCommonName), &nested), verifierCA.cert), roots, now, ErrNotVerifier},
		{"another name under the verifier signing CA is not the verifier",
			leafUnder(leafTemplate("node-1"), &verifierCA), roots, now, ErrNotVerifier},
		{"a TLS usage under the verifier signing CA is not a signing certificate",
			leafUnder(tlsLeaf, &verifierCA), roots, now, ErrNotVerifier},
		{"a verifier signing CA of another root does not chain",
			leafUnder(leafTemplate(LeafCommonName), &foreignVerifierCA), roots, now, errAny},
		{"an expired chain does not verify", ownChain, roots, now.Add(2 * time.Hour), errAny},
		{"no roots are refused rather than the system roots", ownChain, nil, now, errAny},
		{"a zero time is refused rather than the clock", ownChain, roots, time.Time{}, errAny},
		{"an empty chain is refused", nil, roots, now, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.chain, tt.roots, tt.at)
			anyErr := errors.Is(tt.wantErr, errAny)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Verify = %v, want nil", err)
			case anyErr && err == nil:
				t.Fatal("Verify = nil, want an error")
			case tt.wantErr != nil && !anyErr && !errors.Is(err, tt.wantErr):
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")
