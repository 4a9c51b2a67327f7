// Package signerid is the verifier's signing identity: the one kind of
// certificate whose signatures on trust reports, EAR tokens and flavors are
// believed, and the check of a certificate chain against it.
//
// The CMS root issues a dedicated intermediate, the verifier signing CA
// (CACommonName), that signs nothing but the verifier's own signing
// certificate (LeafCommonName). CSR signing never reaches it: the CMS signs
// CSRs only under its TLS, TLS client and Signing intermediates, and every
// certificate it issues from a CSR is a leaf. A chain is the verifier's
// identity only when the leaf was issued by that intermediate and the
// intermediate directly by a trusted root, so a document-signing
// certificate that an administrator (or anyone holding a CMS:CertApprover
// token) obtains from the CMS cannot sign a report, an EAR or a flavor that
// verifies.
//
// The package uses only the standard library: the pure flavor policy, the
// report format, the CMS and every relying party (manager, tcctl) share it.
package signerid

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Names of the signing identity.
const (
	// Organization is the subject organization of the CMS's CA certificates.
	Organization = "Trusted Compute"
	// CACommonName is the subject common name of the verifier signing CA,
	// the intermediate that issues only the verifier's signing certificate.
	CACommonName = "Trusted Compute Verifier Signing CA"
	// LeafCommonName is the subject common name of the verifier's signing
	// certificate (the key HVS signs reports, EARs and flavors with).
	LeafCommonName = "HVS Signing"
)

// OIDExtKeyUsageDocumentSigning is id-kp-documentSigning (RFC 9336), the only
// extended key usage of signing certificates and of their intermediates.
var OIDExtKeyUsageDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

// ErrNotVerifier is wrapped by Verify's error when the chain leads to a
// trusted root but is not the verifier's signing identity (a certificate of
// another CMS intermediate, such as one signed from a CSR).
var ErrNotVerifier = errors.New("certificate is not the verifier's signing identity")

// Verify checks that chain (leaf first, then any intermediates, the root may
// follow) is the verifier's signing identity under roots at now: the leaf
// verifies to a root through an intermediate, that intermediate is the
// verifier signing CA (a CA certificate named CACommonName with the
// document signing usage) issued directly by the root, and the leaf is a
// document signing certificate named LeafCommonName (digital signature key
// usage, id-kp-documentSigning as its only extended key usage, not a CA).
//
// A nil roots pool or a zero now is an error, never the system roots or the
// clock.
func Verify(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	if roots == nil {
		return errors.New("no CMS roots are configured")
	}
	if now.IsZero() {
		return errors.New("no verification time")
	}
	if len(chain) == 0 || chain[0] == nil {
		return errors.New("the certificate chain is empty")
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("verify signing certificate: %w", err)
	}
	if !isSigningLeaf(leaf) {
		return fmt.Errorf("%w: %q is not a document signing certificate", ErrNotVerifier, leaf.Subject.String())
	}
	// x509 may build several chains; one through the verifier signing CA,
	// issued by the root itself, is enough.
	viaVerifierCA := slices.ContainsFunc(chains, func(c []*x509.Certificate) bool {
		return len(c) == 3 && IsVerifierCA(c[1])
	})
	if !viaVerifierCA {
		return fmt.Errorf("%w: %q is issued by %q, not by the %s", ErrNotVerifier,
			leaf.Subject.String(), leaf.Issuer.String(), CACommonName)
	}
	if leaf.Subject.CommonName != LeafCommonName {
		return fmt.Errorf("%w: the signing certificate is named %q, want %q", ErrNotVerifier, leaf.Subject.CommonName, LeafCommonName)
	}
	return nil
}

// IsVerifierCA reports whether c carries the marks of the verifier signing
// CA. Only the CMS root issues CA certificates, so among certificates that
// chain to the pinned root these marks name exactly one intermediate.
func IsVerifierCA(c *x509.Certificate) bool {
	return c.IsCA && c.BasicConstraintsValid &&
		c.Subject.CommonName == CACommonName &&
		slices.Equal(c.Subject.Organization, []string{Organization}) &&
		c.KeyUsage&x509.KeyUsageCertSign != 0 &&
		hasOnlyDocumentSigning(c)
}

func isSigningLeaf(c *x509.Certificate) bool {
	return !c.IsCA && c.KeyUsage&x509.KeyUsageDigitalSignature != 0 && hasOnlyDocumentSigning(c)
}

func hasOnlyDocumentSigning(c *x509.Certificate) bool {
	return len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 1 &&
		c.UnknownExtKeyUsage[0].Equal(OIDExtKeyUsageDocumentSigning)
}
