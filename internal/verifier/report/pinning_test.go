package report

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/cms"
)

// signCSR has the CMS sign a CSR for key, the way POST /cms/v1/certificates
// does for a caller whose CMS:CertApprover role allows it.
func signCSR(t *testing.T, ca *cms.CA, key *ecdsa.PrivateKey, cn, certType string) []*x509.Certificate {
	t.Helper()
	chain, err := ca.SignCSR(testca.CSR(t, key, cn), certType)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	return chain
}

// The attack of issue 11: an administrator, or anyone holding a
// CMS:CertApprover token, has the CMS sign a document-signing certificate
// and re-signs a trust report (or an EAR) with it. Only the verifier's own
// signing identity may sign what relying parties believe.
func TestReportSignedByCMSIssuedSigningCertIsRefused(t *testing.T) {
	ca := newCA(t)
	now := t0.Add(time.Minute)
	verifierChain := func() []*x509.Certificate {
		chain, err := ca.IssueVerifierSigning(newKey(t, elliptic.P256()).Public(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return chain
	}()

	tests := []struct {
		name  string
		chain func(key *ecdsa.PrivateKey) []*x509.Certificate
	}{
		{"a Signing certificate signed from a CSR named like the verifier", func(key *ecdsa.PrivateKey) []*x509.Certificate {
			return signCSR(t, ca, key, signerid.LeafCommonName, cms.TypeSigning)
		}},
		{"a Signing certificate from a CSR presented with the verifier signing CA in x5c", func(key *ecdsa.PrivateKey) []*x509.Certificate {
			chain := signCSR(t, ca, key, signerid.LeafCommonName, cms.TypeSigning)
			return []*x509.Certificate{chain[0], verifierChain[1], chain[1], chain[2]}
		}},
		{"a TLS client certificate signed from a CSR", func(key *ecdsa.PrivateKey) []*x509.Certificate {
			return signCSR(t, ca, key, signerid.LeafCommonName, cms.TypeTLSClient)
		}},
		{"a certificate of the Signing CA that the CMS issues in process", func(key *ecdsa.PrivateKey) []*x509.Certificate {
			chain, err := ca.IssueSigning(key.Public(), signerid.LeafCommonName, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return chain
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey(t, elliptic.P256())
			s, err := NewSigner(key, tt.chain(key))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := s.Sign(trustedReport())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(jws, ca.RootPool(), now); !errors.Is(err, ErrCertificateUntrusted) || !errors.Is(err, signerid.ErrNotVerifier) {
				t.Errorf("Verify(re-signed report) = %v, want %v and %v", err, ErrCertificateUntrusted, signerid.ErrNotVerifier)
			}
			if _, err := NewVerifier(ca.RootPool()).Verify(jws, now); !errors.Is(err, ErrCertificateUntrusted) {
				t.Errorf("Verifier.Verify(re-signed report) = %v, want %v", err, ErrCertificateUntrusted)
			}
			ear, err := s.EAR(trustedReport(), "", now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyEAR(ear, ca.RootPool(), now); !errors.Is(err, ErrCertificateUntrusted) {
				t.Errorf("VerifyEAR(re-signed EAR) = %v, want %v", err, ErrCertificateUntrusted)
			}
		})
	}

	// The verifier's own identity passes, so each refusal is for the
	// certificate alone.
	s := newSigner(t, ca, elliptic.P256())
	jws, err := s.Sign(trustedReport())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(jws, ca.RootPool(), now); err != nil {
		t.Fatalf("Verify(the verifier's report) = %v", err)
	}
	ear, err := s.EAR(trustedReport(), "", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEAR(ear, ca.RootPool(), now); err != nil {
		t.Fatalf("VerifyEAR(the verifier's EAR) = %v", err)
	}
}
