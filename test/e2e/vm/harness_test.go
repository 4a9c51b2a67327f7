package vm_test

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

const adminPassword = verifiertest.AdminPassword

// harness is an in-process verifier (SQLite, embedded NATS on loopback) and
// an HTTPS client pinned to its CMS root, as an operator bootstraps one.
type harness struct {
	v       *verifiertest.Verifier
	rootPEM []byte // the CMS root
	admin   string // the administrator's token
}

func startVerifier(t *testing.T) *harness {
	t.Helper()
	v := verifiertest.Start(t, t.TempDir(), func(cfg *verifier.Config) {
		cfg.Enrollment.EKRoots = tpmtest.LocalCAPool(t)
		// SHA-256 only: the Debian cloud kernel builds sha512 as a module,
		// so IMA, which starts before any module loads, extends the SHA-384
		// bank of PCR 10 with zero-padded SHA-1 template digests, which
		// internal/appraise does not model (it reports IMAReplay).
		cfg.HVS.Banks = []string{"SHA256"}
		// The attestation manager's clock jumps hours ahead to make its
		// schedule due (manager_test.go); reports must outlive those jumps.
		cfg.HVS.ReportValidity = 1000 * time.Hour
	})
	v.Client.Timeout = 2 * time.Minute
	h := &harness{
		v:       v,
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.CA().Root().Raw}),
	}
	h.admin = v.Login(t, "admin", adminPassword)
	return h
}

// do sends a request as the administrator.
func (h *harness) do(t *testing.T, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	return h.v.Do(t, method, path, h.admin, contentType, body)
}

// mustDo fails the test unless the answer has status want.
func (h *harness) mustDo(t *testing.T, want int, method, path string, body []byte) []byte {
	t.Helper()
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	status, b := h.do(t, method, path, ct, body)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	return b
}

// report asks HVS for a new report of host and checks that its JWS form
// verifies offline against the CMS root alone and says the same.
func (h *harness) report(t *testing.T, host string) *report.Report {
	t.Helper()
	body := h.mustDo(t, http.StatusCreated, "POST", "/hvs/v2/reports", []byte(`{"host_id":"`+host+`"}`))
	var rep report.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	jws := h.mustDo(t, http.StatusOK, "GET", "/hvs/v2/reports/"+rep.ID+"?format=jws", nil)
	signed, err := report.Verify(string(jws), h.v.Roots, time.Now())
	if err != nil {
		t.Fatalf("the report does not verify offline: %v", err)
	}
	if signed.ID != rep.ID || signed.Trusted() != rep.Trusted() {
		t.Fatalf("signed report %s/%v differs from the served one %s/%v", signed.ID, signed.Trusted(), rep.ID, rep.Trusted())
	}
	return &rep
}
