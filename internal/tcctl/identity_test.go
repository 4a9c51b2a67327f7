package tcctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/report"
)

// startResigningProxy is a JWS proxy that re-signs every signed report it
// relays with signer, keeping its content.
func startResigningProxy(t *testing.T, h *harness, signer *report.Signer) string {
	t.Helper()
	return startJWSProxy(t, h, func(_ []string, payload []byte) (string, error) {
		var r report.Report
		if err := json.Unmarshal(payload, &r); err != nil {
			return "", err
		}
		return signer.Sign(&r)
	})
}

// The attack of issue 11 on tcctl: a report re-signed with a Signing
// certificate that the verifier's own CMS signed from a CSR (what an
// administrator or a CMS:CertApprover can obtain) fails --verify.
func TestReportGetVerifyRefusesAReportSignedByACMSIssuedSigningCert(t *testing.T) {
	h := startVerifier(t)
	key := testca.NewKey(t)
	csr := testca.CSR(t, key, signerid.LeafCommonName)
	chain, err := h.v.CA().SignCSR(csr, cms.TypeSigning)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL := startResigningProxy(t, h, signer)

	direct := newCLI(t)
	direct.must(t, "login", "--url", h.base, "--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword))
	direct.must(t, "host", "register", "--host-id", "edge-3", "--name", "edge-three")
	var created struct {
		ID string `json:"id"`
	}
	out := direct.must(t, "report", "create", "--host-id", "edge-3", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("report create: %v:\n%s", err, out)
	}
	// The verifier's own signature passes, so the refusal below is for the
	// certificate alone.
	if out := direct.must(t, "report", "get", created.ID, "--verify"); !strings.Contains(out, "signed by CN="+signerid.LeafCommonName) {
		t.Fatalf("the verifier's report:\n%s", out)
	}

	c := newCLI(t)
	c.must(t, "login", "--url", proxyURL, "--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword))
	for _, format := range []string{"table", "jws"} {
		out, errOut, err := c.run("report", "get", created.ID, "--verify", "-o", format)
		if err == nil || !strings.Contains(err.Error(), "signing certificate is not trusted") {
			t.Errorf("-o %s: a re-signed report: error %v, want the signing certificate refused", format, err)
		}
		if strings.Contains(out+errOut, "signature: valid") {
			t.Errorf("-o %s: a re-signed report was called valid:\n%s%s", format, out, errOut)
		}
	}
}
