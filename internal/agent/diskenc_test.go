package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
)

// quotePCR15 asks the agent for evidence over PCRs 0-10 and 15, as the
// verifier does, and appraises it.
func (n *bootedNode) quotePCR15(t *testing.T) (evidence.QuoteRequest, *evidence.QuoteResponse) {
	t.Helper()
	nonce := make([]byte, evidence.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	req := evidence.QuoteRequest{Version: evidence.Version, Nonce: nonce, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15},
		Banks: n.banks, IMAMeasureEnabled: true, EventLog: true}
	resp, err := n.agent.Evidence(context.Background(), req)
	if err != nil {
		t.Fatalf("evidence: %v", err)
	}
	return req, resp
}

// TestDiskEncryptionIsReadFromPCR15 runs the agent on swtpm with a root file
// system on LUKS2 and PCR 15 extended as systemd-cryptsetup does with
// tpm2-measure-pcr=yes.
func TestDiskEncryptionIsReadFromPCR15(t *testing.T) {
	tests := []struct {
		name string
		// prepare lays out the node's disk and systemd's measurements.
		prepare    func(t *testing.T, n *bootedNode)
		wantStatus string
		wantFaults []string
	}{
		{
			name: "a node whose tpm2-measure log replays to PCR 15 is measured",
			prepare: func(t *testing.T, n *bootedNode) {
				mustDo(t, n.root.WritePlatform(true))
				mustDo(t, n.root.MeasurePlatformRootVolume(n.tpm, n.banks))
			},
			wantStatus: appraise.DiskEncryptionMeasured,
		},
		{
			name: "a forged log whose volume key record was never extended into PCR 15 is a fault",
			prepare: func(t *testing.T, n *bootedNode) {
				mustDo(t, n.root.WritePlatform(true))
				digests := map[string][]byte{}
				for _, b := range n.banks {
					digests[b] = bytes.Repeat([]byte{0xee}, map[string]int{evidence.BankSHA1: 20, evidence.BankSHA256: 32, evidence.BankSHA384: 48}[b])
				}
				mustDo(t, n.root.AppendMeasureLog(15, "volume-key", "cryptsetup:"+sandbox.PlatformRootVolume+":"+sandbox.PlatformRootLUKSUUID, digests))
			},
			wantStatus: appraise.DiskEncryptionClaimed,
			wantFaults: []string{appraise.FaultMeasureLogReplay},
		},
		{
			name:       "a claim of encryption alone is claimed",
			prepare:    func(t *testing.T, n *bootedNode) { mustDo(t, n.root.WritePlatform(true)) },
			wantStatus: appraise.DiskEncryptionClaimed,
		},
		{
			name: "another volume's key measured does not make the root measured",
			prepare: func(t *testing.T, n *bootedNode) {
				mustDo(t, n.root.WritePlatform(true))
				mustDo(t, n.root.MeasureVolumeKey(n.tpm, n.banks, "var", "0b7e2c1d-0000-4000-8000-000000000001", []byte("var key")))
			},
			wantStatus: appraise.DiskEncryptionClaimed,
		},
		{
			name:       "a node without encryption and without measurements is none",
			prepare:    func(*testing.T, *bootedNode) {},
			wantStatus: appraise.DiskEncryptionNone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := bootNode(t, tpmtest.New(t).Spec(), sandbox.BootLogSecureBootOn)
			tt.prepare(t, n)
			req, resp := n.quotePCR15(t)
			v := appraise.Appraise(appraise.Input{AKPublic: n.akPublic(t), Request: req, Response: resp}, time.Now())
			// One fault per bank that does not replay: compare the names.
			if got := slices.Compact(faultNames(v)); !slices.Equal(got, tt.wantFaults) {
				t.Fatalf("faults = %v, want %v", v.Faults, tt.wantFaults)
			}
			if v.DiskEncryption.Status != tt.wantStatus {
				t.Fatalf("disk encryption = %+v, want %s", v.DiskEncryption, tt.wantStatus)
			}
		})
	}
}

// TestHostFactsAreBoundToTheQuote: the facts sent with a quote are the
// ones the TPM quoted; changed on the way (a disk encryption claim added,
// or another answer's facts swapped in), they fail the quote.
func TestHostFactsAreBoundToTheQuote(t *testing.T) {
	n := bootNode(t, tpmtest.New(t).Spec(), sandbox.BootLogSecureBootOn)
	ak := n.akPublic(t)
	req, resp := n.quotePCR15(t)
	if v := appraise.Appraise(appraise.Input{AKPublic: ak, Request: req, Response: resp}, time.Now()); !v.Trusted() {
		t.Fatalf("genuine evidence: %v", v.Faults)
	}
	tampers := []struct {
		name   string
		tamper func(resp *evidence.QuoteResponse)
	}{
		{"a disk encryption claim added after the quote", func(resp *evidence.QuoteResponse) {
			resp.HostInfo.DiskEncryption = evidence.DiskEncryption{Enabled: true, RootDevice: "dm-0", Method: "dm-crypt/LUKS2"}
		}},
		{"the host name changed after the quote", func(resp *evidence.QuoteResponse) { resp.HostInfo.HostName = "another" }},
		{"the host facts left out", func(resp *evidence.QuoteResponse) { resp.HostInfo = nil }},
	}
	for _, tt := range tampers {
		t.Run(tt.name+" fails the quote", func(t *testing.T) {
			req, resp := n.quotePCR15(t)
			tt.tamper(resp)
			v := appraise.Appraise(appraise.Input{AKPublic: ak, Request: req, Response: resp}, time.Now())
			if !slices.Equal(faultNames(v), []string{appraise.FaultQuoteNonce}) {
				t.Fatalf("faults = %v, want only %s", v.Faults, appraise.FaultQuoteNonce)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
