package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"trustedcompute.io/tc/internal/tpm/credential"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/store"
)

// PrivacyCASecret names the store secret that holds the privacy CA: its
// PKCS#8 key and its certificate, as PEM.
const PrivacyCASecret = "hvs/privacy-ca"

// PrivacyCACommonName is the subject CN of the privacy CA certificate.
const PrivacyCACommonName = "Trusted Compute Privacy CA"

// OIDAKCertificate is tcg-kp-AIKCertificate (2.23.133.8.3), the extended key
// usage of an AK certificate (TCG EK Credential Profile). AK certificates carry
// it as their only extended key usage, so they are no TLS certificates.
var OIDAKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}

const pemCert = "CERTIFICATE"

// privacyCA is the CA that certifies enrolled AKs.
type privacyCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// loadOrCreateCA reads the privacy CA from the store or creates and stores
// one. Replicas starting together agree on the first one stored.
func (e *Enroller) loadOrCreateCA(ctx context.Context) (*privacyCA, error) {
	b, err := e.store.GetSecret(ctx, PrivacyCASecret)
	switch {
	case err == nil:
		return e.decodeCA(b)
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("read privacy ca: %w", err)
	}
	ca, err := newPrivacyCA(e.cfg.Now(), e.cfg.PrivacyCAValidity)
	if err != nil {
		return nil, fmt.Errorf("create privacy ca: %w", err)
	}
	enc, err := ca.encode()
	if err != nil {
		return nil, fmt.Errorf("encode privacy ca: %w", err)
	}
	err = e.store.CreateSecret(ctx, PrivacyCASecret, enc)
	switch {
	case err == nil:
		e.logger.LogAttrs(ctx, slog.LevelInfo, "created privacy ca", slog.String(keySecret, PrivacyCASecret),
			slog.Time(keyUntil, ca.cert.NotAfter))
		return ca, nil
	case !errors.Is(err, store.ErrConflict):
		return nil, fmt.Errorf("store privacy ca: %w", err)
	}
	// Another replica stored one first: use theirs.
	b, err = e.store.GetSecret(ctx, PrivacyCASecret)
	if err != nil {
		return nil, fmt.Errorf("read privacy ca after a conflict: %w", err)
	}
	return e.decodeCA(b)
}

func newPrivacyCA(now time.Time, validity time.Duration) (*privacyCA, error) {
	key, err := cms.NewKey()
	if err != nil {
		return nil, err
	}
	tmpl, err := cms.NewTemplate(PrivacyCACommonName, now, validity, nil)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage, tmpl.IsCA, tmpl.MaxPathLenZero = x509.KeyUsageCertSign|x509.KeyUsageCRLSign, true, true
	cert, err := cms.Certify(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign: %w", err)
	}
	return newCA(cert, key), nil
}

func newCA(cert *x509.Certificate, key *ecdsa.PrivateKey) *privacyCA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &privacyCA{cert: cert, key: key, pool: pool}
}

func (ca *privacyCA) encode() ([]byte, error) { return cms.EncodeKeyPair(ca.key, ca.cert) }

// decodeCA decodes and checks a stored privacy CA.
func (e *Enroller) decodeCA(b []byte) (*privacyCA, error) {
	key, cert, err := cms.DecodeKeyPair(b)
	if err != nil {
		return nil, fmt.Errorf("stored privacy ca: %w", err)
	}
	switch {
	case !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return nil, errors.New("stored privacy ca: certificate is not a CA certificate")
	case !key.PublicKey.Equal(cert.PublicKey):
		return nil, errors.New("stored privacy ca: key does not match the certificate")
	case e.cfg.Now().After(cert.NotAfter):
		return nil, fmt.Errorf("stored privacy ca expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("stored privacy ca: certificate is not self-signed: %w", err)
	}
	return newCA(cert, key), nil
}

// issueAK certifies an AK public key for hostID: a leaf (no CA), subject
// CN=hostID, digital signature only, extended key usage tcg-kp-AIKCertificate.
func (ca *privacyCA) issueAK(akKey crypto.PublicKey, hostID string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	tmpl, err := cms.NewTemplate(hostID, now, validity, ca.cert)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDAKCertificate}
	return cms.Certify(tmpl, ca.cert, akKey, ca.key)
}

// Reasons an AK is not accepted for quotes (AKError.Reason).
const (
	// AKNotEnrolled: the host has no enrolled AK (HVS: AIK_NOT_PROVISIONED).
	AKNotEnrolled = "AKNotEnrolled"
	// AKCertUntrusted: the AK certificate does not chain to the privacy CA or
	// does not certify the enrolled AK of this host.
	AKCertUntrusted = "AKCertUntrusted"
	// AKCertExpired: the AK certificate is outside its validity.
	AKCertExpired = "AKCertExpired"
)

// AKError says why a host's AK is not accepted for quotes.
type AKError struct {
	HostID string
	// Reason is AKNotEnrolled, AKCertUntrusted or AKCertExpired.
	Reason string
	Err    error
}

func (e *AKError) Error() string {
	return withCause(fmt.Sprintf("ak of host %q not accepted: %s", e.HostID, e.Reason), e.Err)
}

func (e *AKError) Unwrap() error { return e.Err }

// VerifyAK returns the TPMT_PUBLIC of the AK whose quotes HVS may accept for
// hostID: the enrolled AK, when its certificate chains to the privacy CA, is
// within its validity, names the host and certifies that very AK. Otherwise
// it returns an *AKError (or another error when the store fails). It also
// returns the PCR banks the TPM had allocated at enrollment, nil if the
// agent did not say.
//
// The row is read every time; its certificate chain is verified once per
// enrollment and then trusted until the chain's validity ends (akCache).
func (e *Enroller) VerifyAK(ctx context.Context, hostID string) (akPublic []byte, pcrBanks []string, err error) {
	enr, err := e.store.AKEnrollmentByHost(ctx, hostID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, &AKError{HostID: hostID, Reason: AKNotEnrolled, Err: err}
	} else if err != nil {
		return nil, nil, fmt.Errorf("read ak enrollment of host %q: %w", hostID, err)
	}
	return e.VerifyEnrolledAK(hostID, enr)
}

// VerifyEnrolledAK is VerifyAK of the host's enrollment row as the caller
// read it from the store, just now (a report reads it with its host,
// store.ReportHost.Enrollment).
func (e *Enroller) VerifyEnrolledAK(hostID string, enr store.AKEnrollment) (akPublic []byte, pcrBanks []string, err error) {
	if enr.HostID != hostID {
		return nil, nil, &AKError{HostID: hostID, Reason: AKCertUntrusted,
			Err: fmt.Errorf("the enrollment read is of host %q", enr.HostID)}
	}
	now := e.cfg.Now()
	key := akCacheKey(hostID, &enr)
	if !e.akCache.verifiedAt(key, now) {
		valid, err := e.verifyEnrollment(hostID, &enr, now)
		if err != nil {
			return nil, nil, err
		}
		e.akCache.add(key, valid)
	}
	return enr.AKPublic, enr.PCRBanks, nil
}

// verifyEnrollment checks the enrollment read for hostID at now (see
// VerifyAK) and returns the window in which its certificate chain is valid.
func (e *Enroller) verifyEnrollment(hostID string, enr *store.AKEnrollment, now time.Time) (validity, error) {
	e.akVerifications.Add(1)
	untrusted := func(err error) (validity, error) {
		return validity{}, &AKError{HostID: hostID, Reason: AKCertUntrusted, Err: err}
	}
	cert, err := x509.ParseCertificate(enr.AKCertificate)
	if err != nil {
		return untrusted(fmt.Errorf("parse ak certificate: %w", err))
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:       e.ca.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		return validity{}, &AKError{HostID: hostID, Reason: AKCertExpired, Err: err}
	} else if err != nil {
		return untrusted(err)
	}
	if cert.Subject.CommonName != hostID {
		return untrusted(fmt.Errorf("ak certificate names host %q", cert.Subject.CommonName))
	}
	pub, err := decodePublic(enr.AKPublic)
	if err != nil {
		return untrusted(fmt.Errorf("enrolled ak: %w", err))
	}
	key, err := publicKey(pub)
	if err != nil {
		return untrusted(fmt.Errorf("enrolled ak: %w", err))
	}
	if !keysEqual(cert.PublicKey, key) {
		return untrusted(errors.New("ak certificate certifies another key than the enrolled ak"))
	}
	if name, err := credential.Name(enr.AKPublic); err != nil || !bytes.Equal(name, enr.AKName) {
		return untrusted(errors.New("enrolled ak name is not the name of the enrolled ak"))
	}
	return chainValidity(chains[0]), nil
}
