package dashboard_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

var screenshots = flag.String("screenshots", "", "write the dashboard screenshots into this directory (docs/images)")

// chromium finds Debian's chromium (hack/deps.sh test installs it). Without
// it the test is skipped, except in CI, where it must run.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; in CI the dashboard's browser test must run (hack/deps.sh test installs it)")
	}
	t.Skip("chromium is not installed: run hack/deps.sh test (Debian package chromium) to run the dashboard's browser test")
	return ""
}

// TestDashboardInARealBrowser logs in to a real verifier's dashboard in
// headless Chromium, sees the fleet, sees a tamper (a new untrusted report
// of a node) appear within 2 s without a reload, and opens its drill-down.
func TestDashboardInARealBrowser(t *testing.T) {
	exe := chromium(t)
	v := startWithDashboard(t)
	ctx := context.Background()
	sign := signer(t, v)
	hosts := []struct{ id, name string }{{"host-1", "edge-node-1"}, {"host-2", "edge-node-2"}, {"host-3", "edge-node-3"}, {"host-4", "edge-node-4"}}
	now := time.Now()
	for i, h := range hosts {
		if err := v.Store().CreateHost(ctx, store.Host{ID: h.id, Name: h.name, Status: report.StatusConnected,
			LastConnected: now, CreatedAt: now.Add(-48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			continue // edge-node-4 has no report yet
		}
		storeReport(t, v, sign, h.id, h.name, now.Add(-time.Duration(30-i)*time.Minute))
	}

	base := "https://" + v.DashboardAddr()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1280, 900),
		// Chromium trusts the dashboard's certificate by its public key,
		// which the Go side has verified under the CMS root first.
		chromedp.Flag("ignore-certificate-errors-spki-list", pinnedSPKI(t, v)),
	)
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	do(t, bctx, "log in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), verifiertest.AdminPassword),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("nodes")),
		chromedp.WaitVisible(chromedp.CSS("#live.ok")), // the event stream is open
	)
	trusted, untrusted, pending := text(t, bctx, "#count-Trusted"), text(t, bctx, "#count-Untrusted"), text(t, bctx, "#count-Pending")
	if trusted != "3" || untrusted != "0" || pending != "1" {
		t.Fatalf("fleet: %s trusted, %s untrusted, %s pending; want 3, 0, 1", trusted, untrusted, pending)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.tcNoReload = true`)); err != nil {
		t.Fatal(err)
	}

	// The tamper: a new report of edge-node-2 with a changed kubelet and a
	// changed PCR 8.
	start := time.Now()
	bad := storeReport(t, v, sign, "host-2", "edge-node-2", time.Now(),
		appraise.Fault{Name: flavor.FaultImaMeasurementMismatch, Description: "the measurement of /usr/bin/kubelet differs from the flavor",
			File: "/usr/bin/kubelet", Expected: "sha256:" + strings.Repeat("a1", 32), Actual: "sha256:" + strings.Repeat("e7", 32)},
		appraise.Fault{Name: flavor.FaultPcrValueMismatch, Description: "SHA256 PCR 8 differs from the flavor",
			PCRIndex: ptr(8), PCRBank: "SHA256", Expected: strings.Repeat("3c", 32), Actual: strings.Repeat("9f", 32)},
		appraise.Fault{Name: flavor.FaultPcrEventLogContainsUnexpectedEntries, Description: "the event log of SHA256 PCR 8 has 1 events the flavor does not have",
			PCRIndex: ptr(8), PCRBank: "SHA256", UnexpectedEntries: []string{"EV_IPL grub_cmd: linux /vmlinuz root=/dev/mapper/root init=/bin/sh"}},
	)
	tctx, tcancel := context.WithTimeout(bctx, 2*time.Second)
	err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-node="host-2"] .badge.bad`)))
	tcancel()
	if err != nil {
		t.Fatalf("the tamper did not show within 2 s: %v", err)
	}
	t.Logf("the tamper showed %s after the report was stored", time.Since(start).Round(10*time.Millisecond))
	if same, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.tcNoReload === true`)); err != nil || !same {
		t.Fatalf("the page was reloaded (%v); want a live update", err)
	}
	if n := text(t, bctx, "#count-Untrusted"); n != "1" {
		t.Errorf("untrusted count %s after the tamper, want 1", n)
	}
	shot(t, bctx, "dashboard-fleet.png")

	do(t, bctx, "open the node and the drill-down of its newest report",
		chromedp.Click(chromedp.CSS(`tr[data-node="host-2"] a.name`)),
		chromedp.WaitVisible(chromedp.ID("timeline")),
		chromedp.Click(chromedp.CSS(`#timeline a.report-link`)), // the newest first
		chromedp.WaitVisible(chromedp.CSS("#part-IMA .fault")),
	)
	file, expected, actual := text(t, bctx, "#part-IMA code.file"), text(t, bctx, "#part-IMA code.expected"), text(t, bctx, "#part-IMA code.actual")
	if file != "/usr/bin/kubelet" || !strings.HasPrefix(expected, "sha256:a1a1") || !strings.HasPrefix(actual, "sha256:e7e7") {
		t.Errorf("IMA drill-down: file %q expected %q actual %q", file, expected, actual)
	}
	if entry := text(t, bctx, "#part-PLATFORM .related .entries"); !strings.Contains(entry, "init=/bin/sh") {
		t.Errorf("PCR 8 drill-down does not show the event that explains it: %q", entry)
	}
	if sig := text(t, bctx, "#signature"); !strings.HasPrefix(sig, "valid") {
		t.Errorf("signature status %q, want valid", sig)
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/reports/"+bad) {
		t.Errorf("drill-down at %s (%v), want report %s", loc, err, bad)
	}
	shot(t, bctx, "dashboard-drilldown.png")
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// shot saves a full-page screenshot when -screenshots names a directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pinnedSPKI connects to the dashboard verifying its certificate under the
// CMS root, and returns the base64 SHA-256 of its public key for Chromium.
func pinnedSPKI(t *testing.T, v *verifiertest.Verifier) string {
	t.Helper()
	host, _, _ := net.SplitHostPort(v.DashboardAddr())
	conn, err := tls.Dial("tcp", v.DashboardAddr(), &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: v.Roots, ServerName: host})
	if err != nil {
		t.Fatalf("the dashboard's certificate does not verify under the CMS root: %v", err)
	}
	defer func() { _ = conn.Close() }()
	if conn.ConnectionState().Version != tls.VersionTLS13 {
		t.Errorf("dashboard TLS version %x, want 1.3", conn.ConnectionState().Version)
	}
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// signer signs reports with a chain the verifier's CMS issued to its
// signing identity, as HVS does.
func signer(t *testing.T, v *verifiertest.Verifier) *report.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := v.CA().IssueVerifierSigning(&key.PublicKey, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.NewSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeReport stores a signed report of the host, trusted unless faults
// are given (IMA faults in the IMA part, PCR faults in PLATFORM).
func storeReport(t *testing.T, v *verifiertest.Verifier, s *report.Signer, hostID, name string, at time.Time, faults ...appraise.Fault) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	on := true
	rule := func(part flavor.Part, name string, fs []appraise.Fault) flavor.RuleResult {
		return flavor.RuleResult{Rule: flavor.Rule{Name: name, Markers: []flavor.Part{part}},
			FlavorID: strings.ToLower(string(part)) + "-flavor-of-" + hostID, Trusted: len(fs) == 0, Faults: fs}
	}
	var ima, pcr8, pcr8log []appraise.Fault
	for _, f := range faults {
		switch {
		case f.File != "":
			ima = append(ima, f)
		case len(f.UnexpectedEntries) > 0:
			pcr8log = append(pcr8log, f)
		default:
			pcr8 = append(pcr8, f)
		}
	}
	r := &report.Report{
		ID: id.String(), HostID: hostID, HostName: name, Created: at, Expiration: at.Add(2 * time.Hour),
		HostStatus: report.StatusConnected,
		HostInfo: report.HostInfo{HostName: name, SecureBoot: report.SecureBoot{FromPCR7: true, Verified: true, Efivar: &on},
			DiskEncryptionStatus: appraise.DiskEncryptionMeasured},
		TrustInformation: flavor.TrustInformation{Overall: len(faults) == 0, FlavorsTrust: map[flavor.Part]flavor.PartTrust{
			flavor.PartPlatform: {Trust: len(pcr8)+len(pcr8log) == 0, Rules: []flavor.RuleResult{
				rule(flavor.PartPlatform, flavor.RulePcrMatchesConstant, pcr8),
				rule(flavor.PartPlatform, flavor.RulePcrEventLogEquals, pcr8log)}},
			flavor.PartIMA: {Trust: len(ima) == 0, Rules: []flavor.RuleResult{rule(flavor.PartIMA, flavor.RuleImaEventLogEquals, ima)}},
		}},
	}
	jws, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Store().CreateReport(context.Background(), store.Report{ID: r.ID, HostID: hostID, HostName: name,
		Trusted: r.Trusted(), CreatedAt: at, ExpiresAt: r.Expiration, JSON: b, JWS: jws}); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func ptr(i int) *int { return &i }
