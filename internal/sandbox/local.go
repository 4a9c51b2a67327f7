package sandbox

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/tpm"
)

// LocalOptions configures RunLocal.
type LocalOptions struct {
	// TPM is the TPM spec of the node (default: the in-process simulator).
	TPM string
	// SecureBoot selects the firmware log: Secure Boot on (default) or off.
	SecureBootOff bool
	// Dir holds the node's file system root; a temp dir when empty.
	Dir string
}

// RunLocal boots one simulated node — a real OVMF event log replayed into its
// TPM, IMA measurements extended into PCR 10 — collects the evidence as the
// trust agent does and appraises it, then shows how a tamper is caught.
func RunLocal(ctx context.Context, w io.Writer, opts LocalOptions, logger *slog.Logger) error {
	if opts.TPM == "" {
		opts.TPM = "simulator"
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "tc-sandbox-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(d) }()
		dir = d
	}
	bootLog := BootLogSecureBootOn
	if opts.SecureBootOff {
		bootLog = BootLogSecureBootOff
	}
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format+"\n", args...) }

	raw, err := tpm.OpenContext(ctx, opts.TPM)
	if err != nil {
		return err
	}
	defer func() { _ = raw.Close() }()
	node, err := agent.NewNodeTPM(raw, tpm.AKOptions{})
	if err != nil {
		return err
	}
	info, err := raw.Info()
	if err != nil {
		return err
	}
	p("node edge-1: TPM %s %s (%s), AK %x", info.Manufacturer, info.Version, opts.TPM, node.AK().Name)

	banks, err := ReplayEventLog(node, bootLog)
	if err != nil {
		return err
	}
	root, err := NewRoot(dir, "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a00", "edge-1", bootLog)
	if err != nil {
		return err
	}
	p("measured boot: %d-byte OVMF event log replayed into banks %s", len(bootLog), strings.Join(banks, ", "))
	files := map[string]string{"/usr/bin/containerd": "containerd", "/usr/bin/kata-runtime": "kata-runtime", "/usr/lib/systemd/systemd": "systemd"}
	if err := root.MeasureFiles(node, banks, files); err != nil {
		return err
	}
	p("IMA: %d files measured into PCR 10", len(files))

	a, err := agent.New(agent.Config{HostID: "edge-1"}, node, measure.New(root.Dir, measure.WithLogger(logger)), logger)
	if err != nil {
		return err
	}
	appraiseOnce := func(title string) (appraise.Verdict, error) {
		nonce := make([]byte, evidence.NonceSize)
		if _, err := rand.Read(nonce); err != nil {
			return appraise.Verdict{}, err
		}
		req := evidence.QuoteRequest{Version: evidence.Version, Nonce: nonce, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Banks: banks, IMAMeasureEnabled: true, EventLog: true}
		resp, err := a.Evidence(ctx, req)
		if err != nil {
			return appraise.Verdict{}, err
		}
		keys, err := node.KeyInfo()
		if err != nil {
			return appraise.Verdict{}, err
		}
		v := appraise.Appraise(appraise.Input{AKPublic: keys.AKPublic, Request: req, Response: resp}, time.Now())
		p("\n== %s", title)
		p("quote: %d bytes signed by the AK, reset count %d, %d PCR values", len(resp.Attest), resetCount(v), len(resp.PCRs))
		p("secure boot (from the quoted PCR 7 events): %v, authorities %v", v.SecureBoot.Enabled, v.SecureBoot.Authorities)
		p("disk encryption: %v (%s)", resp.HostInfo.DiskEncryption.Enabled, resp.HostInfo.DiskEncryption.Reason)
		if v.Trusted() {
			p("verdict: TRUSTED — quote genuine and fresh, event log and IMA log replay to the quoted PCRs")
		} else {
			p("verdict: NOT TRUSTED")
			for _, f := range v.Faults {
				p("  fault %s", f)
			}
		}
		return v, nil
	}
	if _, err := appraiseOnce("first attestation"); err != nil {
		return err
	}
	// Tamper: a file is measured by the kernel but the log shown to the
	// verifier hides it — the IMA log no longer replays to PCR 10.
	if _, err := MeasureFile(node, banks, "/usr/bin/evil", []byte("0123456789abcdef0123456789abcdef")); err != nil {
		return err
	}
	v, err := appraiseOnce("after a hidden measurement (a file measured into PCR 10, left out of the IMA log)")
	if err != nil {
		return err
	}
	if v.Trusted() {
		return fmt.Errorf("sandbox: a hidden IMA measurement was not detected")
	}
	return nil
}

func resetCount(v appraise.Verdict) uint32 {
	rc, _ := v.ResetCount()
	return rc
}
