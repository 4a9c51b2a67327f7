package enroll

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"
)

// OIDEKCertificate is tcg-kp-EKCertificate (2.23.133.8.1), the extended key
// usage of an EK certificate.
var OIDEKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 1}

// oidSubjectAltName is id-ce-subjectAltName (2.5.29.17).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// tagDirectoryName is the context tag of GeneralName's directoryName [4].
const tagDirectoryName = 4

// VerifyEKCertificate parses a DER EK certificate and verifies that it chains
// to roots (through intermediates, if given) at now.
//
// TPM EK certificates have an empty subject and name the TPM in a subject
// alternative name that holds a directoryName (TPM manufacturer, model and
// version attributes, TCG EK Credential Profile 3.2.9), marked critical as
// RFC 5280 demands for an empty subject. crypto/x509 understands only DNS,
// email, IP and URI names, so it reports such a SAN as an unhandled critical
// extension and refuses the chain. The SAN is cleared from the unhandled list
// only when it holds nothing but directoryNames; any other critical extension
// it does not know still fails the verification.
//
// EK certificates carry the extended key usage tcg-kp-EKCertificate, unknown
// to crypto/x509, which is why the chain is verified for any key usage: an
// EK certificate is never used for TLS, and the caller compares the
// certified key with the TPM's EK.
func VerifyEKCertificate(der []byte, roots, intermediates *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse ek certificate: %w", err)
	}
	if roots == nil {
		return nil, errors.New("no trusted ek ca is configured")
	}
	if err := acceptTCGSubjectAltName(cert); err != nil {
		return nil, err
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("verify ek certificate: %w", err)
	}
	return cert, nil
}

// acceptTCGSubjectAltName removes a critical SAN holding only directoryNames
// from cert's unhandled critical extensions. A critical SAN with other names
// that crypto/x509 left unhandled is an error.
func acceptTCGSubjectAltName(cert *x509.Certificate) error {
	i := slices.IndexFunc(cert.UnhandledCriticalExtensions, func(o asn1.ObjectIdentifier) bool {
		return o.Equal(oidSubjectAltName)
	})
	if i < 0 {
		return nil
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		if !directoryNamesOnly(ext.Value) {
			return errors.New("ek certificate has a critical subject alternative name that is not a tpm directory name")
		}
		cert.UnhandledCriticalExtensions = slices.Delete(slices.Clone(cert.UnhandledCriticalExtensions), i, i+1)
		return nil
	}
	return errors.New("ek certificate lists an unhandled subject alternative name it does not carry")
}

// directoryNamesOnly reports whether a SubjectAltName extension value is a
// non-empty SEQUENCE of GeneralNames that are all directoryNames.
func directoryNamesOnly(value []byte) bool {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(value, &seq)
	if err != nil || len(rest) != 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return false
	}
	names := seq.Bytes
	if len(names) == 0 {
		return false
	}
	for len(names) > 0 {
		var name asn1.RawValue
		names, err = asn1.Unmarshal(names, &name)
		if err != nil || name.Class != asn1.ClassContextSpecific || name.Tag != tagDirectoryName || !name.IsCompound {
			return false
		}
		var dn asn1.RawValue // the Name inside: a SEQUENCE (RDNSequence)
		if r, err := asn1.Unmarshal(name.Bytes, &dn); err != nil || len(r) != 0 || dn.Tag != asn1.TagSequence {
			return false
		}
	}
	return true
}
