package verifier_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
)

// The attack of issue 11, played against the running verifier: an
// administrator gives itself CMS:CertApprover roles, has the CMS sign a
// document-signing certificate and a TLS certificate for the verifier's own
// names, and signs a trust report, an EAR and a flavor with the former.
// None of it is believed, and the TLS certificate is never issued.
func TestACMSIssuedSigningCertificateSignsNothingTheVerifierBelieves(t *testing.T) {
	h := startVerifier(t, t.TempDir())
	admin := h.login(t, "admin", adminPassword)

	// The administrator grants itself CertApprover roles for both CSRs.
	status, body := h.do(t, "GET", "/aas/v1/users?name=admin", admin, "", nil)
	var users []struct {
		ID string `json:"id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &users) != nil || len(users) != 1 {
		t.Fatalf("find admin: %d %s", status, body)
	}
	var roleIDs []string
	for _, context := range []string{
		"CN=" + signerid.LeafCommonName + ";certType=Signing",
		"CN=localhost;SAN=localhost,127.0.0.1;certType=TLS",
	} {
		b, _ := json.Marshal(map[string]any{"service": cms.RoleService, "name": cms.RoleCertApprover, "context": context, "permissions": []string{}})
		status, body := h.do(t, "POST", "/aas/v1/roles", admin, "application/json", b)
		var role struct {
			ID string `json:"id"`
		}
		if status != http.StatusCreated || json.Unmarshal(body, &role) != nil {
			t.Fatalf("create role %s: %d %s", context, status, body)
		}
		roleIDs = append(roleIDs, role.ID)
	}
	b, _ := json.Marshal(map[string]any{"role_ids": roleIDs})
	if status, body := h.do(t, "POST", "/aas/v1/users/"+users[0].ID+"/roles", admin, "application/json", b); status != http.StatusNoContent {
		t.Fatalf("assign roles: %d %s", status, body)
	}
	approver := h.login(t, "admin", adminPassword)

	key := testca.NewKey(t)
	csr := func(cn string, dns []string, ips []net.IP) []byte { return csrPEM(t, key, cn, dns, ips) }

	// The verifier's own TLS names are never issued.
	status, body = h.do(t, "POST", cms.PathCertificates+"?certType=TLS", approver, cms.PEMContentType,
		csr("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}))
	if status != http.StatusForbidden || !strings.Contains(string(body), "verifier's own TLS names") {
		t.Fatalf("TLS CSR for the verifier's names = %d %s, want 403", status, body)
	}

	// A document-signing certificate is issued, as the role allows...
	status, body = h.do(t, "POST", cms.PathCertificates+"?certType=Signing", approver, cms.PEMContentType, csr(signerid.LeafCommonName, nil, nil))
	if status != http.StatusCreated {
		t.Fatalf("Signing CSR = %d %s, want 201", status, body)
	}
	chain := testca.ParseCerts(t, body)

	// ...but a report or an EAR signed with it does not verify offline
	// under the pinned root.
	now := time.Now()
	signer, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	forgedReport := &report.Report{ID: "forged", HostID: "edge-1", HostName: "edge-1", Created: now, Expiration: now.Add(time.Hour)}
	forgedReport.TrustInformation.Overall = true
	jws, err := signer.Sign(forgedReport)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.Verify(jws, h.v.Roots, now); !errors.Is(err, report.ErrCertificateUntrusted) {
		t.Errorf("report.Verify(report signed with a CMS-issued Signing certificate) = %v, want %v", err, report.ErrCertificateUntrusted)
	}
	ear, err := signer.EAR(forgedReport, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.VerifyEAR(ear, h.v.Roots, now); !errors.Is(err, report.ErrCertificateUntrusted) {
		t.Errorf("report.VerifyEAR(EAR signed with a CMS-issued Signing certificate) = %v, want %v", err, report.ErrCertificateUntrusted)
	}

	// ...and the verifier refuses a flavor signed with it, while its own
	// flavors verify under the same root.
	content := flavor.Flavor{Meta: flavor.Meta{ID: "fleet-os", Description: flavor.Description{FlavorPart: flavor.PartOS}},
		PCRs: []flavor.PCRRule{{PCR: flavor.PCR{Index: 9, Bank: "SHA256"}, Measurement: strings.Repeat("ab", 32), PCRMatches: true}}}
	b, _ = json.Marshal(map[string]any{"flavor_collection": flavor.FlavorCollection{Flavors: []flavor.Flavor{content}}})
	status, body = h.do(t, "POST", "/hvs/v2/flavors", admin, "application/json", b)
	var own flavor.SignedFlavorCollection
	if status != http.StatusCreated || json.Unmarshal(body, &own) != nil || len(own.SignedFlavors) != 1 {
		t.Fatalf("import a flavor = %d %s", status, body)
	}
	if err := flavor.Verify(own.SignedFlavors[0], h.v.Roots, now); err != nil {
		t.Fatalf("the verifier's own flavor does not verify: %v", err)
	}
	content.Meta.ID = "forged"
	content.PCRs[0].Measurement = strings.Repeat("cd", 32)
	forged, err := flavor.Sign(content, key, chain)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(map[string]any{"signed_flavor_collection": flavor.SignedFlavorCollection{SignedFlavors: []flavor.SignedFlavor{forged}}})
	status, body = h.do(t, "POST", "/hvs/v2/flavors", admin, "application/json", b)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "signing identity") {
		t.Errorf("import a flavor signed with a CMS-issued Signing certificate = %d %s, want 400", status, body)
	}
}
