package manager

import (
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/verifier/report"
)

func TestReadinessNeedsDiskEncryptionMeasuredUnlessTheOperatorAcceptsClaims(t *testing.T) {
	legacy := func() *report.Report {
		// A report of a verifier that did not measure disk encryption:
		// the agent's claim only.
		r := newReport("h").build()
		r.HostInfo.DiskEncryptionStatus = ""
		return r
	}
	tests := []struct {
		name        string
		policy      DiskEncryptionPolicy
		report      *report.Report
		wantReady   bool
		wantMessage string
	}{
		{"disk encryption measured from PCR 15 is ready", "", newReport("h").build(), true, DetailVerified},
		{"an agent's claim alone is not ready by default", "", newReport("h").diskEncryptionClaimed().build(), false,
			"full-disk encryption only claimed by the agent, not measured in PCR 15 (diskEncryption: measured): the node sent no systemd measure log"},
		{"an agent's claim alone is not ready under diskEncryption: measured", DiskEncryptionMeasured, newReport("h").diskEncryptionClaimed().build(), false, "only claimed"},
		{"an agent's claim is ready under diskEncryption: claimed", DiskEncryptionClaimed, newReport("h").diskEncryptionClaimed().build(), true,
			"claimed by the agent, not measured (diskEncryption: claimed)"},
		{"no disk encryption is not ready even under diskEncryption: claimed", DiskEncryptionClaimed, newReport("h").diskEncryption(false).build(), false,
			"full-disk encryption absent (root on /dev/sda2 is not dm-crypt)"},
		{"a claim in a report without a measured status counts as claimed", "", legacy(), false, "only claimed"},
		{"an untrusted report is never ready, whatever the policy", DiskEncryptionClaimed, newReport("h").fault("QuoteNonce").build(), false, "QuoteNonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DiskEncryption: tt.policy}.WithDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			d := cfg.Decide(tt.report)
			if d.Ready != tt.wantReady {
				t.Errorf("ready = %v, want %v (%s)", d.Ready, tt.wantReady, d.Message)
			}
			if !strings.Contains(d.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", d.Message, tt.wantMessage)
			}
		})
	}
}

// TestAnAgentThatClaimsDiskEncryptionWithoutMeasurementIsNotReady plays the
// attack of a node that lies about its disk: its agent claims dm-crypt, the
// verifier finds no volume key measurement in PCR 15. On the old code the
// claim alone made the node ready.
func TestAnAgentThatClaimsDiskEncryptionWithoutMeasurementIsNotReady(t *testing.T) {
	e := newEnv(t, Config{}, 1)
	e.v.set(hostID(1), func(h *simHost) { h.diskCryptClaimed = true })
	e.tick()
	e.wantStatus("edge-1", cluster.StatusVerified)
	if n := e.nodes.get("edge-1"); n.Ready {
		t.Fatalf("node %+v is ready on the agent's word alone", n.Node)
	}

	accepting := newEnv(t, Config{DiskEncryption: DiskEncryptionClaimed}, 1)
	accepting.v.set(hostID(1), func(h *simHost) { h.diskCryptClaimed = true })
	accepting.tick()
	if n := accepting.nodes.get("edge-1"); !n.Ready {
		t.Fatalf("node %+v is not ready although the operator accepts claimed disk encryption", n.Node)
	}
}

func TestAnUnknownDiskEncryptionPolicyIsRefused(t *testing.T) {
	err := Config{DiskEncryption: "trusted"}.WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), `disk encryption "trusted": want measured or claimed`) {
		t.Fatalf("err = %v", err)
	}
}
