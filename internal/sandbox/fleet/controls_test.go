//go:build cgo && !tc_nosimulator

package fleet_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

// waitNode waits until the node's Node object says status, cordoned or not,
// and returns what it says.
func waitNode(t *testing.T, f *fleet.Fleet, node string, status cluster.Status, cordoned bool, timeout time.Duration) cluster.NodeInfo {
	t.Helper()
	info, err := f.WaitStatus(context.Background(), node, status, &cordoned, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// postControl posts a control to the sandbox's control endpoint with an
// AAS token and returns the status and the answer.
func postControl(t *testing.T, base, token, node string, c fleet.Control) (int, string) {
	t.Helper()
	form := url.Values{"node": {node}, "control": {string(c)}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/control", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEachControlChangesTheNodeAndTheManagersVerdictFollows drives every
// control through the sandbox's control endpoint, one after another on one
// fleet, and waits for the product's attestation manager to say what it
// says in production. Three of them are the complaints about the
// stand-in manager the sandbox ran before: a killed agent left the node
// Verified and ready, a PCR 7 failure read as Secure Boot Disabled, and a
// report could be dropped (TestAReportPublishedWhileTheManagerIsBusyIsNotDropped).
func TestEachControlChangesTheNodeAndTheManagersVerdictFollows(t *testing.T) {
	f := startFleet(t, 2)
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	token, err := f.AdminToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 45 * time.Second
	steps := []struct {
		name    string
		node    string
		control fleet.Control
		check   func(t *testing.T)
	}{
		{"killing a node's agent fails the node: Attestation Failed, cordoned, not ready", "edge-1", fleet.ControlKillAgent, func(t *testing.T) {
			info := waitNode(t, f, "edge-1", cluster.StatusAttestationFailed, true, timeout)
			if info.Ready {
				t.Error("edge-1 still ready with its agent dead")
			}
			assertCordoned(t, f, "edge-1", cluster.StatusAttestationFailed, cluster.ReasonAttestationFailed)
			if e, _ := warning(t, f, "edge-1", cluster.ReasonAttestationFailed); !strings.Contains(e.Note, "agent unreachable") {
				t.Errorf("the failure does not say the agent is unreachable: %q", e.Note)
			}
		}},
		{"a reboot starts the agent again and the node stays failed until it is re-onboarded", "edge-1", fleet.ControlReboot, func(t *testing.T) {
			// The manager re-baselines after the reboot and attests again:
			// the latest report is trusted. It does not lift the failure.
			deadline := time.Now().Add(timeout)
			for {
				_, trusted, err := f.LatestReportTrusted(context.Background(), "edge-1")
				if err != nil {
					t.Fatal(err)
				}
				if trusted {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no trusted report of edge-1 after the reboot")
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(time.Second)
			if n := cluster.InfoOf(nodeOf(t, f, "edge-1")); n.Status != cluster.StatusAttestationFailed || !n.Cordoned {
				t.Errorf("edge-1 after a clean reboot: %+v, want still failed and cordoned", n)
			}
		}},
		{"re-onboarding the fixed node makes it Verified and schedulable", "edge-1", fleet.ControlOnboard, func(t *testing.T) {
			info := waitNode(t, f, "edge-1", cluster.StatusVerified, false, timeout)
			if info.Tainted || !info.Ready {
				t.Errorf("edge-1 re-onboarded: %+v, want untainted and ready", info)
			}
		}},
		{"extending PCR 7 reads as Attestation Failed, as the product says, not Secure Boot Disabled", "edge-2", fleet.ControlExtendPCR, func(t *testing.T) {
			waitNode(t, f, "edge-2", cluster.StatusAttestationFailed, true, timeout)
			assertCordoned(t, f, "edge-2", cluster.StatusAttestationFailed, cluster.ReasonAttestationFailed)
			if _, sb := warning(t, f, "edge-2", cluster.ReasonSecureBootDisabled); sb {
				t.Error("a PCR 7 that no longer replays was called Secure Boot Disabled")
			}
		}},
		{"turning Secure Boot off reads as Secure Boot Disabled", "edge-2", fleet.ControlSecureBootOff, func(t *testing.T) {
			waitNode(t, f, "edge-2", cluster.StatusSecureBootDisabled, true, timeout)
			assertCordoned(t, f, "edge-2", cluster.StatusSecureBootDisabled, cluster.ReasonSecureBootDisabled)
		}},
		{"a tamper fails the node on its IMA part", "edge-1", fleet.ControlTamper, func(t *testing.T) {
			waitNode(t, f, "edge-1", cluster.StatusAttestationFailed, true, timeout)
			c := failedCondition(t, f, "edge-1", "IMA")
			if c == nil || !strings.Contains(c.Message, "IMA") {
				t.Errorf("edge-1's condition does not name the IMA part: %+v", c)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) {
			status, said := postControl(t, srv.URL, token, st.node, st.control)
			if status != http.StatusOK {
				t.Fatalf("%s on %s: %d %s", st.control, st.node, status, said)
			}
			t.Logf("%s", said)
			st.check(t)
		}) {
			return // each step starts from the one before
		}
	}
}

// TestAReportPublishedWhileTheManagerIsBusyIsNotDropped floods the
// manager with report notices while it is held, then tampers a node: once
// the manager runs again it acts on the tampered node's report at once,
// not at its next poll. The stand-in manager's buffer of 64 notices
// dropped that report.
func TestAReportPublishedWhileTheManagerIsBusyIsNotDropped(t *testing.T) {
	opts := testOptions(t, 2)
	opts.PollInterval = time.Hour // only the published report can fail the node in time
	f := startFleetWith(t, opts)
	ctx := context.Background()
	// Let the notices of the first reports be handled: a pending notice of
	// edge-1 would make the manager read its latest report anyway.
	time.Sleep(2 * time.Second)
	release := f.HoldManager()
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	for range 10000 {
		if err := f.Publish("edge-2"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Do(ctx, "edge-1", fleet.ControlTamper, 0); err != nil {
		t.Fatal(err)
	}
	// Wait until the verifier attested the tamper and published it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, trusted, err := f.LatestReportTrusted(ctx, "edge-1")
		if err != nil {
			t.Fatal(err)
		}
		if !trusted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the verifier did not attest the tampered edge-1")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 10000 {
		_ = f.Publish("edge-2")
	}
	if info := cluster.InfoOf(nodeOf(t, f, "edge-1")); info.Status != cluster.StatusVerified {
		t.Fatalf("edge-1 changed while the manager was held: %+v", info)
	}
	release()
	held = false
	waitNode(t, f, "edge-1", cluster.StatusAttestationFailed, true, 15*time.Second)
	assertUntouched(t, f, "edge-2")
}

// TestTheControlEndpointWantsALogin checks that nothing unauthenticated
// runs a control: the page shows no control without a login, the endpoint
// refuses a request without a token, with a token the verifier did not
// issue, or with a session but no anti-CSRF field; a session of the
// administrator runs one.
func TestTheControlEndpointWantsALogin(t *testing.T) {
	f := startFleet(t, 1)
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, token string
	}{
		{"a control without a token is refused", ""},
		{"a control with a token the verifier did not issue is refused", "eyJhbGciOiJFUzM4NCJ9.e30.c2ln"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, said := postControl(t, srv.URL, tc.token, "edge-1", fleet.ControlKillAgent); status != http.StatusUnauthorized {
				t.Errorf("%d %s, want 401", status, said)
			}
		})
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func() string {
		resp, err := browser.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if page := get(); strings.Contains(page, `action="/control"`) || !strings.Contains(page, `action="/login"`) {
		t.Fatalf("the page shows controls before a login:\n%s", page)
	}
	password, err := f.AdminPassword()
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string, form url.Values) (int, string) {
		resp, err := browser.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := post("/login", url.Values{"username": {"admin"}, "password": {"wrong"}}); status != http.StatusUnauthorized {
		t.Errorf("a wrong password: %d, want 401", status)
	}
	if status, body := post("/login", url.Values{"username": {"admin"}, "password": {password}}); status != http.StatusOK {
		t.Fatalf("login: %d %s", status, body)
	}
	page := get()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no controls after the login:\n%s", page)
	}
	if status, _ := post("/control", url.Values{"node": {"edge-1"}, "control": {string(fleet.ControlKillAgent)}}); status != http.StatusForbidden {
		t.Errorf("a session's control without the anti-CSRF field: %d, want 403", status)
	}
	if info := cluster.InfoOf(nodeOf(t, f, "edge-1")); info.Status != cluster.StatusVerified {
		t.Fatalf("a refused control changed edge-1: %+v", info)
	}
	// The answer is the page again (after a redirect), saying what was done.
	status, body := post("/control", url.Values{"csrf": {m[1]}, "node": {"edge-1"}, "control": {string(fleet.ControlKillAgent)}})
	if status != http.StatusOK || !strings.Contains(body, "trust agent killed") {
		t.Errorf("the administrator's control: %d, or the page does not say what it did", status)
	}
	waitNode(t, f, "edge-1", cluster.StatusAttestationFailed, true, 45*time.Second)
}
