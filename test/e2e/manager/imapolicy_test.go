package manager_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/sandbox"
)

// kataQEMU is the file a Kata VM start measures on the node: not in the
// golden IMA log taken at boot, but in the node's runtime policy.
const kataQEMU = "/opt/kata/bin/qemu-system-x86_64"

// TestARuntimePolicyDecidesWhatANewFileDoes is issue 16 point 4, on swtpm:
// with a runtime policy assigned to the node, a new measured file within
// the policy keeps the node Verified (without it the golden log would fail
// the node), and a file outside the policy fails it, as today.
func TestARuntimePolicyDecidesWhatANewFileDoes(t *testing.T) {
	w := newWorld(t, manager.EveryBoot)
	mustVerified(t, w.attest(t), true)

	// The operator makes the node's policy from its known-good IMA log,
	// merged with the Kata files the node will run.
	log, err := os.ReadFile(filepath.Join(w.node.root.Dir, sandbox.IMALogPath))
	if err != nil {
		t.Fatal(err)
	}
	known, err := imapolicy.FromIMALog(string(log))
	if err != nil {
		t.Fatal(err)
	}
	qemu := sha256.Sum256([]byte("qemu 9.1"))
	kata := &imapolicy.Policy{Meta: imapolicy.Meta{Version: imapolicy.CurrentMetaVersion},
		Digests: map[string][]string{kataQEMU: {"sha256:" + hex.EncodeToString(qemu[:])}}}
	policy, err := imapolicy.Merge(known, kata)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	token := w.vt.Login(t, "admin", adminPassword)
	call := func(method, path string, in any) []byte {
		t.Helper()
		body, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		status, out := w.vt.Do(t, method, path, token, "application/json", body)
		if status != http.StatusOK && status != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", method, path, status, out)
		}
		return out
	}
	call("POST", "/hvs/v2/ima-policies", restapi.IMAPolicyRequest{Name: "kata-nodes", Policy: doc})
	call("POST", "/hvs/v2/ima-policies/kata-nodes/assign", restapi.IMAPolicyAssignment{HostIDs: []string{hostID}})

	// A Kata VM starts: its QEMU is measured, and it is in the policy.
	if err := w.node.root.MeasureFiles(w.node.tpm, w.node.banks, map[string]string{kataQEMU: "qemu 9.1"}); err != nil {
		t.Fatal(err)
	}
	n := w.attest(t)
	mustVerified(t, n, true)

	// A file outside the policy is measured: Attestation Failed, cordoned,
	// and the verifier's report names the file.
	if err := w.node.root.MeasureFiles(w.node.tpm, w.node.banks, map[string]string{"/usr/bin/evil": "evil"}); err != nil {
		t.Fatal(err)
	}
	n = w.attest(t)
	mustCordoned(t, n, "attestation-failed")
	if failed := w.events(t, cluster.ReasonAttestationFailed); len(failed) != 1 || !strings.Contains(failed[0], "IMA") {
		t.Fatalf("failure events %q, want one naming IMA", failed)
	}
	var reports restapi.ReportList
	if err := json.Unmarshal(call("GET", "/hvs/v2/reports?hostId="+hostID+"&latestPerHost=true", nil), &reports); err != nil {
		t.Fatal(err)
	}
	if len(reports.Reports) != 1 {
		t.Fatalf("%d latest reports, want 1", len(reports.Reports))
	}
	latest := string(reports.Reports[0])
	for _, want := range []string{imapolicy.ImaPolicyFileNotAllowed, "/usr/bin/evil"} {
		if !strings.Contains(latest, want) {
			t.Errorf("the latest report does not name %s", want)
		}
	}
	if strings.Contains(latest, kataQEMU+" ") {
		t.Errorf("the latest report faults the allowed file %s", kataQEMU)
	}
}
