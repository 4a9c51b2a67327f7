package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
)

var discard = slog.New(slog.DiscardHandler)

// bootedNode is a node whose TPM went through a real firmware measured boot
// (a captured OVMF event log replayed into its PCRs) and whose IMA log
// measured a few files into PCR 10.
type bootedNode struct {
	tpm   *agent.NodeTPM
	root  *sandbox.Root
	agent *agent.Agent
	banks []string
}

func bootNode(t *testing.T, spec string, bootLog []byte) *bootedNode {
	t.Helper()
	return bootNodeWith(t, spec, bootLog, map[string]string{"/usr/bin/kata-runtime": "kata", "/usr/lib/systemd/systemd": "init"})
}

// bootNodeWith boots a node whose IMA measured files (none: PCR 10 untouched).
func bootNodeWith(t *testing.T, spec string, bootLog []byte, files map[string]string) *bootedNode {
	t.Helper()
	nt, banks, root := agentclienttest.BootNode(t, spec, "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a00", "edge-1", bootLog)
	if err := root.MeasureFiles(nt, banks, files); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{HostID: "edge-1"}, nt, measure.New(root.Dir), discard)
	if err != nil {
		t.Fatal(err)
	}
	return &bootedNode{tpm: nt, root: root, agent: a, banks: banks}
}

func (n *bootedNode) quote(t *testing.T) (evidence.QuoteRequest, *evidence.QuoteResponse) {
	t.Helper()
	nonce := make([]byte, evidence.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	req := evidence.QuoteRequest{Version: evidence.Version, Nonce: nonce, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Banks: n.banks, IMAMeasureEnabled: true, EventLog: true}
	resp, err := n.agent.Evidence(context.Background(), req)
	if err != nil {
		t.Fatalf("evidence: %v", err)
	}
	return req, resp
}

func (n *bootedNode) akPublic(t *testing.T) []byte {
	info, err := n.tpm.KeyInfo()
	if err != nil {
		t.Fatal(err)
	}
	return info.AKPublic
}

func faultNames(v appraise.Verdict) []string {
	var names []string
	for _, f := range v.Faults {
		names = append(names, f.Name)
	}
	return names
}

// TestEvidenceFromARealTPMAppraises runs the whole node side against real TPM
// implementations — swtpm and the in-process reference simulator — and the
// pure appraisal: genuine evidence is trusted, each tamper is caught with the
// fault that names it.
func TestEvidenceFromARealTPMAppraises(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"swtpm":     func(t *testing.T) string { return tpmtest.New(t).Spec() },
		"simulator": func(t *testing.T) string { requireSimulator(t); return "simulator" },
	}
	for name, spec := range backends {
		t.Run(name, func(t *testing.T) {
			n := bootNode(t, spec(t), sandbox.BootLogSecureBootOn)
			ak := n.akPublic(t)

			t.Run("genuine evidence is trusted and shows Secure Boot on", func(t *testing.T) {
				req, resp := n.quote(t)
				v := appraise.Appraise(appraise.Input{AKPublic: ak, Request: req, Response: resp}, time.Now())
				if !v.Trusted() {
					t.Fatalf("faults: %v", v.Faults)
				}
				if !v.SecureBoot.Enabled {
					t.Fatal("Secure Boot read as disabled from a Secure Boot log")
				}
				if len(v.IMAEntries) != 2 {
					t.Fatalf("IMA entries = %d, want 2", len(v.IMAEntries))
				}
			})

			tampers := []struct {
				name   string
				tamper func(t *testing.T, req *evidence.QuoteRequest, resp *evidence.QuoteResponse, ak *[]byte)
				want   string
			}{
				{"one changed byte of the signature breaks it", func(t *testing.T, _ *evidence.QuoteRequest, resp *evidence.QuoteResponse, _ *[]byte) {
					resp.Signature[len(resp.Signature)-1] ^= 0x01
				}, appraise.FaultQuoteSignature},
				{"another nonce than the verifier's is refused", func(t *testing.T, req *evidence.QuoteRequest, _ *evidence.QuoteResponse, _ *[]byte) {
					req.Nonce = bytes.Repeat([]byte{7}, evidence.NonceSize)
				}, appraise.FaultQuoteNonce},
				{"a quote checked against another TPM's AK is refused", func(t *testing.T, _ *evidence.QuoteRequest, _ *evidence.QuoteResponse, ak *[]byte) {
					other := bootNode(t, tpmtest.New(t).Spec(), sandbox.BootLogSecureBootOn)
					*ak = other.akPublic(t)
				}, appraise.FaultQuoteSignature},
				{"an IMA entry the TPM never saw does not replay", func(t *testing.T, _ *evidence.QuoteRequest, resp *evidence.QuoteResponse, _ *[]byte) {
					line, _ := sandbox.IMAEntry("/usr/bin/evil", bytes.Repeat([]byte{0xee}, 32))
					resp.IMALog = line + resp.IMALog
					resp.IMAEntries++
				}, appraise.FaultIMAReplay},
				{"an IMA entry whose file hash was changed no longer matches its template hash", func(t *testing.T, _ *evidence.QuoteRequest, resp *evidence.QuoteResponse, _ *[]byte) {
					i := strings.Index(resp.IMALog, "sha256:") + len("sha256:")
					flipped := byte('0')
					if resp.IMALog[i] == '0' {
						flipped = '1'
					}
					resp.IMALog = resp.IMALog[:i] + string(flipped) + resp.IMALog[i+1:]
				}, appraise.FaultIMAUnparsable},
				// The Node the agent names (its pod's) is bound like every
				// host fact: root on another node cannot lend it a report.
				{"another node name than the agent's fails the quote", func(t *testing.T, _ *evidence.QuoteRequest, resp *evidence.QuoteResponse, _ *[]byte) {
					resp.HostInfo.NodeName = "edge-other"
				}, appraise.FaultQuoteNonce},
				// Last: it leaves PCR 0 extended.
				{"PCR values read after a later extend do not match the quote", func(t *testing.T, req *evidence.QuoteRequest, resp *evidence.QuoteResponse, _ *[]byte) {
					if err := n.tpm.Extend(0, n.banks[0], bytes.Repeat([]byte{1}, 32+16*btoi(n.banks[0] == evidence.BankSHA384))); err != nil {
						t.Fatal(err)
					}
					now, err := n.tpm.ReadPCRs(n.banks[0], []int{0})
					if err != nil {
						t.Fatal(err)
					}
					for i := range resp.PCRs {
						if resp.PCRs[i].Index == 0 && resp.PCRs[i].Bank == n.banks[0] {
							resp.PCRs[i].Value = now[0]
						}
					}
				}, appraise.FaultQuotePCRDigest},
			}
			for _, tt := range tampers {
				t.Run(tt.name, func(t *testing.T) {
					req, resp := n.quote(t)
					akPub := slices.Clone(ak)
					tt.tamper(t, &req, resp, &akPub)
					v := appraise.Appraise(appraise.Input{AKPublic: akPub, Request: req, Response: resp}, time.Now())
					if !slices.Contains(faultNames(v), tt.want) {
						t.Fatalf("faults %v, want %s", faultNames(v), tt.want)
					}
				})
			}

			t.Run("a measurement the event log does not explain fails the replay", func(t *testing.T) {
				if err := n.tpm.Extend(4, n.banks[0], bytes.Repeat([]byte{2}, 32+16*btoi(n.banks[0] == evidence.BankSHA384))); err != nil {
					t.Fatal(err)
				}
				req, resp := n.quote(t)
				v := appraise.Appraise(appraise.Input{AKPublic: ak, Request: req, Response: resp}, time.Now())
				if !slices.Contains(faultNames(v), appraise.FaultEventLogReplay) {
					t.Fatalf("faults %v, want %s", faultNames(v), appraise.FaultEventLogReplay)
				}
			})
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// requireSimulator skips when this build has no in-process simulator (no
// cgo), unless TC_TEST_REQUIRE names it.
func requireSimulator(t *testing.T) {
	t.Helper()
	sim, err := tpm.Open("simulator")
	if errors.Is(err, tpm.ErrSimulatorUnavailable) {
		if tpmtest.Required("simulator") {
			t.Fatalf("the in-process simulator is required but unavailable: %v", err)
		}
		t.Skipf("in-process simulator unavailable (needs cgo and libssl-dev): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = sim.Close()
}

// TestANodeWithoutIMAIsAttestedOnItsEmptyLog: a kernel without IMA has no
// runtime log; the agent answers with none, and the empty log replays to the
// untouched PCR 10. A node that hides its IMA log is caught the same way.
func TestANodeWithoutIMAIsAttestedOnItsEmptyLog(t *testing.T) {
	n := bootNode(t, tpmtest.New(t).Spec(), sandbox.BootLogSecureBootOn)
	if err := os.RemoveAll(filepath.Join(n.root.Dir, "sys/kernel/security/ima")); err != nil {
		t.Fatal(err)
	}
	req, resp := n.quote(t)
	v := appraise.Appraise(appraise.Input{AKPublic: n.akPublic(t), Request: req, Response: resp}, time.Now())
	// bootNode measured two files into PCR 10: without their log lines the
	// replay of the empty log cannot explain PCR 10.
	if !slices.Contains(faultNames(v), appraise.FaultIMAReplay) {
		t.Fatalf("a hidden IMA log gave faults %v, want %s", faultNames(v), appraise.FaultIMAReplay)
	}

	clean := bootNodeWith(t, tpmtest.New(t).Spec(), sandbox.BootLogSecureBootOn, nil)
	if err := os.RemoveAll(filepath.Join(clean.root.Dir, "sys/kernel/security/ima")); err != nil {
		t.Fatal(err)
	}
	req, resp = clean.quote(t)
	if resp.IMALog != "" || resp.IMAEntries != 0 {
		t.Fatalf("a node without IMA sent an IMA log: %q", resp.IMALog)
	}
	if v := appraise.Appraise(appraise.Input{AKPublic: clean.akPublic(t), Request: req, Response: resp}, time.Now()); !v.Trusted() {
		t.Fatalf("a node without IMA is not trusted: %v", v.Faults)
	}
}
