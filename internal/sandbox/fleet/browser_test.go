package fleet_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"trustedcompute.io/tc/internal/sandbox/fleet"
)

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
