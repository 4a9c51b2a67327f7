// Package cmstest gives tests a CMS on an in-memory secret store.
package cmstest

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// NewCA creates a CMS on a fresh in-memory store whose clock stands at now.
func NewCA(t testing.TB, now time.Time) *cms.CA {
	t.Helper()
	ca, err := cms.New(context.Background(),
		cms.Config{NotFound: memsecrets.ErrNotFound, Conflict: memsecrets.ErrConflict, Now: func() time.Time { return now }},
		memsecrets.New(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("cms.New: %v", err)
	}
	return ca
}

// VerifierSigning is a fresh P-256 key and the chain ca issues it as the
// verifier's signing identity, valid for ttl.
func VerifierSigning(t testing.TB, ca *cms.CA, ttl time.Duration) (*ecdsa.PrivateKey, []*x509.Certificate) {
	t.Helper()
	key := testca.NewKey(t)
	chain, err := ca.IssueVerifierSigning(key.Public(), ttl)
	if err != nil {
		t.Fatalf("IssueVerifierSigning: %v", err)
	}
	return key, chain
}

// OtherSigning is a fresh P-256 key and a chain ca issues it under its
// Signing CA, named like the verifier's signing certificate: a document
// signing certificate that is not the verifier's signing identity.
func OtherSigning(t testing.TB, ca *cms.CA, ttl time.Duration) (*ecdsa.PrivateKey, []*x509.Certificate) {
	t.Helper()
	key := testca.NewKey(t)
	chain, err := ca.IssueSigning(key.Public(), signerid.LeafCommonName, ttl)
	if err != nil {
		t.Fatalf("IssueSigning: %v", err)
	}
	return key, chain
}
