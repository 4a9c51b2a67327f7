package fleet_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/sandbox/fleet"
	"trustedcompute.io/tc/internal/tcctl"
)

// startSimulated starts a fleet of n nodes on the fleet simulator and
// waits until all are Verified.
func startSimulated(t *testing.T, n int, opts fleet.Options) *fleet.Fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a verifier and a simulated fleet")
	}
	opts.Nodes, opts.Simulator, opts.Dir = n, fleet.SimulatorFleet, t.TempDir()
	ctx := context.Background()
	start := time.Now()
	f, err := fleet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	started := time.Since(start)
	if err := f.WaitAllVerified(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d simulated nodes started and enrolled in %s, all Verified after %s", n, started.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return f
}

// TestTwoHundredSimulatedNodesAreVerifiedAndTheControlsWorkOnThem starts
// more nodes than run as processes: the fleet simulator is chosen, no
// process is started, every node is Verified; the page pages through them;
// a tamper, a PCR extend and a killed agent each fail their node alone,
// Secure Boot off is refused with the way to get it, and a reboot and a
// re-onboarding make the killed node Verified again.
func TestTwoHundredSimulatedNodesAreVerifiedAndTheControlsWorkOnThem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a verifier and 200 simulated nodes")
	}
	ctx := context.Background()
	start := time.Now()
	f, err := fleet.Start(ctx, fleet.Options{Nodes: 200, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	t.Logf("200 nodes started and enrolled in %s", time.Since(start).Round(time.Millisecond))
	if f.Simulator() != fleet.SimulatorFleet || len(f.PIDs()) != 0 {
		t.Fatalf("200 nodes ran on %s with %d processes, want the fleet simulator and none", f.Simulator(), len(f.PIDs()))
	}
	if err := f.WaitAllVerified(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("all 200 Verified %s after the start", time.Since(start).Round(time.Millisecond))

	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, query string
		rows        int
		contains    string
	}{
		{"the first page lists 100 of the 200 nodes", "", 100, "page 1 of 2"},
		{"the second page lists the other 100", "?page=2", 100, "edge-00200"},
		{"a status filter lists only its nodes", "?status=Attestation+Failed", 0, "200 Verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := get(t, srv.URL+"/"+tc.query)
			if got := strings.Count(page, "<tr data-node="); got != tc.rows || !strings.Contains(page, tc.contains) {
				t.Errorf("%d rows, want %d, and %q in the page:\n%s", got, tc.rows, tc.contains, page)
			}
		})
	}

	const timeout = 45 * time.Second
	steps := []struct {
		name    string
		node    string
		control fleet.Control
		status  cluster.Status
		says    string
	}{
		{"a tamper fails the node on its IMA part", "edge-00017", fleet.ControlTamper, cluster.StatusAttestationFailed, "IMA"},
		{"a PCR extended outside the event log fails the node", "edge-00018", fleet.ControlExtendPCR, cluster.StatusAttestationFailed, ""},
		{"a killed agent fails the node", "edge-00019", fleet.ControlKillAgent, cluster.StatusAttestationFailed, "agent unreachable"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if _, err := f.Do(ctx, st.node, st.control, fleet.DefaultPCR); err != nil {
				t.Fatal(err)
			}
			info := waitNode(t, f, st.node, st.status, true, timeout)
			if c := failedCondition(t, f, st.node, st.says); c == nil || !strings.Contains(c.Message, st.says) {
				t.Errorf("%s: %+v, condition %+v, want one that says %q", st.node, info, c, st.says)
			}
		})
	}
	t.Run("Secure Boot off is refused with the way to get it", func(t *testing.T) {
		_, err := f.Do(ctx, "edge-00020", fleet.ControlSecureBootOff, 0)
		if err == nil || !strings.Contains(err.Error(), "--simulator process") {
			t.Errorf("Secure Boot off on a simulated node: %v, want a refusal naming --simulator process", err)
		}
	})
	t.Run("a reboot and a re-onboarding make the killed node Verified", func(t *testing.T) {
		for _, c := range []fleet.Control{fleet.ControlReboot, fleet.ControlOnboard} {
			if _, err := f.Do(ctx, "edge-00019", c, 0); err != nil {
				t.Fatal(err)
			}
		}
		waitNode(t, f, "edge-00019", cluster.StatusVerified, false, timeout)
	})
	rows, err := f.Rows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, r := range rows {
		if r.Status != "Verified" || r.Cordoned {
			failed[r.Node] = true
		}
	}
	if len(failed) != 2 || !failed["edge-00017"] || !failed["edge-00018"] {
		t.Errorf("nodes not Verified at the end: %v, want edge-00017 and edge-00018 only", failed)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// TestThePageUpdatesLiveWithoutReloading checks the page's live updates:
// no self-reload, its script allowed by the page's policy and served, and
// a change event on its stream when a node fails.
func TestThePageUpdatesLiveWithoutReloading(t *testing.T) {
	f := startSimulated(t, 2, fleet.Options{})
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if strings.Contains(string(page), `http-equiv="refresh"`) || !strings.Contains(string(page), `<script src="/app.js"`) ||
		!strings.Contains(string(page), "<main data-live>") {
		t.Errorf("the page reloads itself or has no live script:\n%s", page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("policy %q does not allow the page's own script and stream", csp)
	}
	if js := get(t, srv.URL+"/app.js"); !strings.Contains(js, "EventSource('/events')") {
		t.Errorf("app.js does not listen to /events:\n%s", js)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stream.Body.Close() }()
	if ct := stream.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("/events: %s", ct)
	}
	lines := bufio.NewScanner(stream.Body)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "retry:") {
		t.Fatalf("/events starts with %q", lines.Text())
	}
	if _, err := f.Do(ctx, "edge-00001", fleet.ControlTamper, 0); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		if lines.Text() == "event: change" {
			if info := cluster.InfoOf(nodeOf(t, f, "edge-00001")); info.Status == cluster.StatusVerified {
				t.Logf("a change before the failure (a new report): %+v", info)
				continue
			}
			return
		}
	}
	t.Fatalf("no change event after the tamper failed the node: %v", lines.Err())
}

// kubeAssets is the directory of kube-apiserver and etcd the sandbox
// finds. The test skips without them unless TC_TEST_REQUIRE names kube.
func kubeAssets(t *testing.T) string {
	t.Helper()
	dir := fleet.FindKubeAssets()
	if err := fleet.HasKubeBinaries(dir); err != nil {
		if strings.Contains(os.Getenv("TC_TEST_REQUIRE"), "kube") {
			t.Fatalf("kube-apiserver and etcd required: %v", err)
		}
		t.Skipf("no kube-apiserver and etcd (hack/kube-tools.sh builds them): %v", err)
	}
	return dir
}

// TestTcctlNodeCommandsWorkOnTheSandboxsOwnKubeAPIServer runs the sandbox
// on a kube-apiserver of its own and the real tcctl node commands against
// it, with only the KUBECONFIG the sandbox prints: status shows the
// Verified nodes, a tampered node Attestation Failed and cordoned, and
// onboard, after the node is fixed, makes it Verified and schedulable.
func TestTcctlNodeCommandsWorkOnTheSandboxsOwnKubeAPIServer(t *testing.T) {
	f := startSimulated(t, 2, fleet.Options{KubeAssets: kubeAssets(t)})
	kubeconfig := f.Kubeconfig()
	if kubeconfig != filepath.Join(f.Dir(), fleet.KubeconfigFile) {
		t.Fatalf("kubeconfig %q, want one in the data dir", kubeconfig)
	}
	t.Setenv("KUBECONFIG", kubeconfig) // the printed export line
	tcctlRun := func(args ...string) string {
		t.Helper()
		root := &cobra.Command{Use: "tcctl", SilenceUsage: true, SilenceErrors: true}
		tcctl.AddTo(root, tcctl.Env{Getenv: os.Getenv, Now: time.Now})
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"--config-dir", t.TempDir()}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("tcctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	line := func(out, node string) string {
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, node+" ") {
				return l
			}
		}
		t.Fatalf("no line of %s in:\n%s", node, out)
		return ""
	}
	out := tcctlRun("node", "status")
	for _, n := range f.NodeNames() {
		if l := line(out, n); !strings.Contains(l, string(cluster.StatusVerified)) {
			t.Errorf("tcctl node status: %q, want %s verified", l, n)
		}
	}

	ctx := context.Background()
	if _, err := f.Do(ctx, "edge-00001", fleet.ControlTamper, 0); err != nil {
		t.Fatal(err)
	}
	waitNode(t, f, "edge-00001", cluster.StatusAttestationFailed, true, 45*time.Second)
	if l := line(tcctlRun("node", "status", "edge-00001"), "edge-00001"); !strings.Contains(l, string(cluster.StatusAttestationFailed)) {
		t.Errorf("tcctl node status after the tamper: %q", l)
	}
	if _, err := f.Do(ctx, "edge-00001", fleet.ControlReboot, 0); err != nil { // the fix: a clean boot
		t.Fatal(err)
	}
	if out := tcctlRun("node", "onboard", "edge-00001"); !strings.Contains(out, "onboarding requested") {
		t.Errorf("tcctl node onboard: %q", out)
	}
	info := waitNode(t, f, "edge-00001", cluster.StatusVerified, false, 45*time.Second)
	if info.Tainted || info.OnboardRequested {
		t.Errorf("edge-00001 after tcctl node onboard: %+v", info)
	}
}

// TestThePageUpdatesLiveInARealBrowser opens the sandbox's page in
// headless Chromium, logs in, and sees a tamper and then a control clicked
// on the page show up without a reload, the controls still there after the
// live updates.
func TestThePageUpdatesLiveInARealBrowser(t *testing.T) {
	exe, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; in CI the browser tests must run (hack/deps.sh test installs it)")
		}
		t.Skip("chromium is not installed (hack/deps.sh test installs it)")
	}
	f := startSimulated(t, 2, fleet.Options{})
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	password, err := f.AdminPassword()
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox)...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	failed := func(node string) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(chromedp.CSS(`tr[data-node="` + node + `"] td.Failed`))
	}

	step("log in",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="edge-00002"] form button`)),
	)
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.tcNoReload = true`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Do(context.Background(), "edge-00001", fleet.ControlTamper, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	step("see the tamper", failed("edge-00001"))
	t.Logf("the tamper showed %s after the control returned", time.Since(start).Round(10*time.Millisecond))
	if same, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.tcNoReload === true`)); err != nil || !same {
		t.Fatalf("the page was reloaded (%v); want a live update", err)
	}
	// The controls of the swapped page still work (with the session's
	// anti-CSRF field).
	step("kill edge-00002's agent from the page",
		chromedp.Click(chromedp.CSS(`tr[data-node="edge-00002"] form:has(input[value="kill-agent"]) button`)),
		failed("edge-00002"),
	)
}
