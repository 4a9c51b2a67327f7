package report

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
)

// t0 is the clock of the test CAs and the creation time of test reports.
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// newCA creates a CMS on a fresh in-memory store whose clock stands at t0.
func newCA(t testing.TB) *cms.CA { return cmstest.NewCA(t, t0) }

func newKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newP256Signer returns a new CA and a Signer for a P-256 key under it.
func newP256Signer(t testing.TB) (*cms.CA, *Signer) {
	t.Helper()
	ca := newCA(t)
	return ca, newSigner(t, ca, elliptic.P256())
}

// newSigner issues the verifier's signing certificate for a fresh key on
// curve c, valid for a day from t0, and returns a Signer for it.
func newSigner(t testing.TB, ca *cms.CA, c elliptic.Curve) *Signer {
	t.Helper()
	key := newKey(t, c)
	chain, err := ca.IssueVerifierSigning(key.Public(), 24*time.Hour)
	if err != nil {
		t.Fatalf("IssueVerifierSigning: %v", err)
	}
	s, err := NewSigner(key, chain)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func pcr(i int) *int { return &i }

func boolp(b bool) *bool { return &b }

// rules returns n passing rule results of a part for one flavor.
func rules(p flavor.Part, flavorID string, n int) []flavor.RuleResult {
	var out []flavor.RuleResult
	for i := range n {
		out = append(out, flavor.RuleResult{
			Rule: flavor.Rule{
				Name:        flavor.RulePcrEventLogEquals,
				Markers:     []flavor.Part{p},
				ExpectedPCR: &flavor.ExpectedPCR{PCR: flavor.PCR{Index: i % 10, Bank: "SHA384"}, Measurement: "ab01"},
			},
			FlavorID: flavorID,
			Trusted:  true,
		})
	}
	return out
}

// trustedReport is a report of a trusted host with PLATFORM, OS and IMA
// parts, 20 rules in all, and Secure Boot on in PCR 7 and the efivar.
// signedReport signs trustedReport with a fresh P-256 signer of a fresh CA
// and returns the CA, the signer and the token.
func signedReport(t testing.TB) (*cms.CA, *Signer, string) {
	t.Helper()
	ca, s := newP256Signer(t)
	tok, err := s.Sign(trustedReport())
	if err != nil {
		t.Fatal(err)
	}
	return ca, s, tok
}

func trustedReport() *Report {
	return &Report{
		ID:         "6a1f3c2e-0b7d-4c1e-9a55-2f0e8d4c7b10",
		HostID:     "9d0c2b7e-5a41-4f3b-8e61-0c7a3d2f1e90",
		HostName:   "edge-07",
		Created:    t0,
		Expiration: t0.Add(time.Hour),
		TrustInformation: flavor.TrustInformation{
			Overall: true,
			FlavorsTrust: map[flavor.Part]flavor.PartTrust{
				flavor.PartPlatform: {Trust: true, Rules: rules(flavor.PartPlatform, "f-platform", 8)},
				flavor.PartOS:       {Trust: true, Rules: rules(flavor.PartOS, "f-os", 8)},
				flavor.PartIMA:      {Trust: true, Rules: rules(flavor.PartIMA, "f-ima", 4)},
			},
		},
		HostInfo: HostInfo{
			OSName: "Ubuntu", OSVersion: "24.04", BIOSName: "American Megatrends", BIOSVersion: "1.2.3",
			HostName: "edge-07", HardwareUUID: "4c4c4544-0042-3510-8052-b4c04f4e3532",
			HardwareFeatures: HardwareFeatures{
				TPM:  TPMFeature{Enabled: true, Meta: TPMMeta{TPMVersion: "2.0"}},
				UEFI: UEFIFeature{Enabled: true, Meta: UEFIMeta{SecureBootEnabled: true}},
			},
			SecureBoot: SecureBoot{FromPCR7: true, Verified: true, Efivar: boolp(true), Authorities: []string{"CN=Microsoft UEFI CA 2011"}},
		},
		HostStatus: StatusConnected,
		ResetCount: 7,
		Nonce:      []byte("0123456789abcdef0123456789abcdef"),
	}
}

// failIMA marks the IMA part of r failed with an unexpected file.
func failIMA(r *Report) {
	ima := r.TrustInformation.FlavorsTrust[flavor.PartIMA]
	ima.Trust = false
	ima.Rules = append(ima.Rules, flavor.RuleResult{
		Rule:     flavor.Rule{Name: flavor.RuleImaEventLogEquals, Markers: []flavor.Part{flavor.PartIMA}},
		FlavorID: "f-ima",
		Faults: []appraise.Fault{{
			Name: flavor.FaultImaContainsUnexpectedEntries, Description: "unexpected files",
			UnexpectedEntries: []string{"/usr/bin/miner"},
		}},
	})
	r.TrustInformation.FlavorsTrust[flavor.PartIMA] = ima
	r.TrustInformation.Overall = false
}

// secureBootOff makes r the report of a host whose PCR 7 says Secure
// Boot is off while the agent's efivar claims it is on.
func secureBootOff(r *Report) {
	r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled = false
	r.HostInfo.SecureBoot.FromPCR7 = false
	r.HostInfo.SecureBoot.Authorities = nil
}
