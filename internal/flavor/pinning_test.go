package flavor

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
)

// The attack of issue 11 on flavors: a document-signing certificate that an
// administrator (or any holder of a CMS:CertApprover token) has the real
// CMS sign from a CSR signs golden flavors. They must not verify, or a
// tampered node would be judged against the attacker's measurements.
func TestFlavorSignedByCMSIssuedSigningCertIsRefused(t *testing.T) {
	ca := cmstest.NewCA(t, now)
	key := testca.NewKey(t)
	csr := testca.CSR(t, key, signerid.LeafCommonName)
	fromCSR, err := ca.SignCSR(csr, cms.TypeSigning)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	own, err := ca.IssueVerifierSigning(key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	signAll := func(chain []*x509.Certificate) []SignedFlavor {
		var out []SignedFlavor
		for _, f := range goldenFlavors(t, defaultHost(), "p") {
			sf, err := Sign(f, key, chain)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sf)
		}
		return out
	}

	forged := signAll(fromCSR)
	for _, sf := range forged {
		if err := Verify(sf, ca.RootPool(), now); !errors.Is(err, ErrCertificateUntrusted) || !errors.Is(err, signerid.ErrNotVerifier) {
			t.Errorf("Verify(flavor %s signed with a CSR-issued Signing certificate) = %v, want %v", sf.Flavor.Meta.ID, err, ErrCertificateUntrusted)
		}
	}
	ti, err := Evaluate(automatic(), forged, defaultHost().facts(), ca.RootPool(), now)
	if err != nil {
		t.Fatal(err)
	}
	if ti.Overall || len(findFaults(ti, PartPlatform, RuleFlavorTrusted, FaultFlavorCertificateUntrusted)) == 0 {
		t.Errorf("a host judged against flavors signed with a CSR-issued certificate: overall %v, PLATFORM faults %+v; want untrusted with %s",
			ti.Overall, ti.FlavorsTrust[PartPlatform], FaultFlavorCertificateUntrusted)
	}

	// The same flavors signed with the verifier's own certificate verify
	// and make the host trusted, so the refusal is for the certificate.
	ti, err = Evaluate(automatic(), signAll(own), defaultHost().facts(), ca.RootPool(), now)
	if err != nil {
		t.Fatal(err)
	}
	if !ti.Overall {
		t.Fatalf("a host judged against the verifier's own flavors is untrusted: %+v", ti)
	}
}
