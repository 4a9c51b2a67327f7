package verifier_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/eventually"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/report"
)

// TestADeletedEKRegistrationStopsTheReportsItAllowed runs over the real
// stack a node whose TPM has no EK certificate: an operator registers its
// EK, the node enrolls, is trusted and gets a secret. The operator then
// deletes the registration to revoke the TPM. The attack it closes: the
// host kept its enrollment, so its reports stayed trusted. Now its next
// report is AIK_NOT_PROVISIONED, the key broker releases it nothing and it
// cannot enroll again.
func TestADeletedEKRegistrationStopsTheReportsItAllowed(t *testing.T) {
	sw := tpmtest.New(t) // no EK certificate
	ekPEM := ekPublicKeyPEM(t, sw)
	// Credentials of the split grammar, which agents before 2026-12 hold:
	// the key broker answers them on their subjects.
	n := startNodeOn(t, "edge-1", sw, bus.GrammarSplit, func(c *verifier.Config) { c.Enrollment.AllowRegisteredEKs = true })
	h, admin := n.h, n.admin
	const ctJSON = "application/json"

	body, _ := json.Marshal(map[string]string{"hardware_uuid": "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a01",
		"description": "edge-1 without an EK certificate", "ek_public_key": ekPEM})
	status, b := h.do(t, "POST", "/hvs/v2/tpm-endorsements", admin, ctJSON, body)
	var reg enroll.Endorsement
	if err := json.Unmarshal(b, &reg); status != http.StatusCreated || err != nil || reg.ID == "" {
		t.Fatalf("register the EK: %d %s", status, b)
	}
	h.eventually(t, http.StatusCreated, "POST", "/hvs/v2/aik-enrollments", admin, []byte(`{"host_id":"edge-1"}`))
	n.register(t)
	if rep := postReport(t, h, admin); !rep.Trusted() {
		t.Fatalf("the enrolled node's report is not trusted: %s, %+v", rep.HostStatus, rep)
	}

	policy := restapi.SecretPolicy{HostIDs: []string{"edge-1"}, AllowSecureBootOff: true,
		AllowUnmeasuredDiskEncryption: true, MaxEvidenceAgeSeconds: 30}
	body, _ = json.Marshal(restapi.SecretRequest{Name: "volume-key", Value: []byte("volume key"), Policy: policy})
	if status, b := h.do(t, "POST", "/hvs/v2/secrets", admin, ctJSON, body); status != http.StatusCreated {
		t.Fatalf("create secret: %d %s", status, b)
	}
	keeper, err := n.agent.NewSecrets(agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Second, Roots: n.h.v.Roots}, n.tpm)
	if err != nil {
		t.Fatal(err)
	}
	if err := keeper.Attach(n.ctx, natsbus.Adapt(n.nc), n.grammar); err != nil {
		t.Fatal(err)
	}
	go func() { _ = keeper.Run(n.ctx) }()
	eventually.True(t, 30*time.Second, "the node holds the secret", func() bool {
		v, ok := keeper.Get("volume-key")
		return ok && string(v) == "volume key"
	})

	if status, b := h.do(t, "DELETE", "/hvs/v2/tpm-endorsements/"+reg.ID, admin, "", nil); status != http.StatusNoContent {
		t.Fatalf("delete the registration: %d %s", status, b)
	}
	rep := postReport(t, h, admin)
	if rep.Trusted() || rep.HostStatus != report.StatusAIKNotProvisioned {
		t.Errorf("the report after the deletion: trusted %t, host status %s; want untrusted, %s",
			rep.Trusted(), rep.HostStatus, report.StatusAIKNotProvisioned)
	}
	eventually.True(t, 40*time.Second, "the node drops the secret and releases are refused as not enrolled", func() bool {
		_, held := keeper.Get("volume-key")
		status, m := h.do(t, "GET", "/metrics", admin, "", nil)
		return !held && status == http.StatusOK &&
			strings.Contains(string(m), `tc_keybroker_decisions_total{outcome="refused",reason="not_enrolled"}`)
	})
	status, b = h.do(t, "POST", "/hvs/v2/aik-enrollments", admin, ctJSON, []byte(`{"host_id":"edge-1"}`))
	if status != http.StatusForbidden || !strings.Contains(string(b), enroll.EKNotRegistered) {
		t.Errorf("enrolling again without a registration: %d %s, want 403 %s", status, b, enroll.EKNotRegistered)
	}
	if rep := postReport(t, h, admin); rep.Trusted() {
		t.Error("a report after the refused enrollment is trusted")
	}
}

// postReport attests edge-1 now.
func postReport(t *testing.T, h *harness, admin string) *report.Report {
	t.Helper()
	status, b := h.do(t, "POST", "/hvs/v2/reports", admin, "application/json", []byte(`{"host_id":"edge-1"}`))
	var rep report.Report
	if err := json.Unmarshal(b, &rep); status != http.StatusCreated || err != nil {
		t.Fatalf("report: %d %s (%v)", status, b, err)
	}
	return &rep
}

// ekPublicKeyPEM is the PEM SubjectPublicKeyInfo of the EK the agent on sw
// uses (the TPM's preferred EK, a primary key: the same at every start).
func ekPublicKeyPEM(t *testing.T, sw *tpmtest.Swtpm) string {
	t.Helper()
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Close() }()
	ek, err := tp.PreferredEK()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(ek.Key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
