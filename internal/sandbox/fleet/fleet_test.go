//go:build cgo && !tc_nosimulator

package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/sandbox/fleet"
	"trustedcompute.io/tc/internal/syncbuf"
)

func testOptions(t *testing.T, nodes int) fleet.Options {
	t.Helper()
	return fleet.Options{
		Nodes:        nodes,
		Dir:          t.TempDir(),
		NodeCommand:  []string{os.Args[0]},
		NodeEnv:      []string{nodeEnv + "=1"},
		PollInterval: time.Minute,
	}
}

// startFleet starts a fleet of n nodes and waits until all are Verified.
func startFleet(t *testing.T, n int) *fleet.Fleet {
	t.Helper()
	return startFleetWith(t, testOptions(t, n))
}

func startFleetWith(t *testing.T, opts fleet.Options) *fleet.Fleet {
	t.Helper()
	ctx := context.Background()
	f, err := fleet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	if err := f.WaitAllVerified(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	return f
}

// nodeOf reads a sandbox node's Node object.
func nodeOf(t *testing.T, f *fleet.Fleet, name string) *corev1.Node {
	t.Helper()
	n, err := f.Kubernetes().CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func events(t *testing.T, f *fleet.Fleet, node string) []fleet.Event {
	t.Helper()
	ev, err := f.Events(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func warning(t *testing.T, f *fleet.Fleet, node, reason string) (fleet.Event, bool) {
	t.Helper()
	for _, e := range events(t, f, node) {
		if e.Type == "Warning" && e.Reason == reason {
			return e, true
		}
	}
	return fleet.Event{}, false
}

// assertCordoned checks what the Kubernetes adapter leaves on a failed
// node's Node object. The adapter writes the Node (status label, cordon,
// taint), then the Event, then the condition (cluster.Nodes.apply): a
// waiter that saw the label may read the Node before the other two, so it
// waits up to cordonSettles for all three.
func assertCordoned(t *testing.T, f *fleet.Fleet, node string, status cluster.Status, reason string) {
	t.Helper()
	var problems []string
	settle(func() bool {
		problems = cordonProblems(t, f, node, status, reason)
		return len(problems) == 0
	})
	for _, p := range problems {
		t.Error(p)
	}
}

// cordonSettles bounds the time between the adapter's Node patch and its
// condition patch that assertCordoned waits out.
const cordonSettles = 10 * time.Second

// settle calls done until it returns true or cordonSettles has passed.
func settle(done func() bool) {
	for deadline := time.Now().Add(cordonSettles); !done() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
}

// failedCondition waits up to cordonSettles for the node's trust
// condition to be False and to say says (assertCordoned: the condition is
// the adapter's last write), and returns the last one read.
func failedCondition(t *testing.T, f *fleet.Fleet, node, says string) *corev1.NodeCondition {
	t.Helper()
	var c *corev1.NodeCondition
	settle(func() bool {
		c = cluster.TrustCondition(nodeOf(t, f, node))
		return c != nil && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, says)
	})
	return c
}

// cordonProblems is what assertCordoned finds missing, now.
func cordonProblems(t *testing.T, f *fleet.Fleet, node string, status cluster.Status, reason string) []string {
	t.Helper()
	var problems []string
	n := nodeOf(t, f, node)
	info := cluster.InfoOf(n)
	if info.Status != status || !info.Cordoned || !info.CordonedByUs || info.Ready || !info.Tainted {
		problems = append(problems, fmt.Sprintf("%s: %+v, want %s, cordoned by the manager, tainted, not ready", node, info, status))
	}
	if c := cluster.TrustCondition(n); c == nil || c.Status != corev1.ConditionFalse || c.Reason != reason {
		problems = append(problems, fmt.Sprintf("%s: condition %+v, want False/%s", node, c, reason))
	}
	if e, ok := warning(t, f, node, reason); !ok || !strings.Contains(e.Note, "report ") || e.ReportID == "" {
		problems = append(problems, fmt.Sprintf("%s: Warning Event %s with the report missing: %+v", node, reason, events(t, f, node)))
	}
	return problems
}

// assertUntouched checks that a bystander is Verified, schedulable and was
// never failed.
func assertUntouched(t *testing.T, f *fleet.Fleet, node string) {
	t.Helper()
	info := cluster.InfoOf(nodeOf(t, f, node))
	if info.Status != cluster.StatusVerified || info.Cordoned || info.Tainted {
		t.Errorf("bystander %s: %+v, want Verified and schedulable", node, info)
	}
	for _, e := range events(t, f, node) {
		if e.Reason == cluster.ReasonAttestationFailed || e.Reason == cluster.ReasonSecureBootDisabled {
			t.Errorf("bystander %s was failed: %s", node, e)
		}
	}
}

func TestScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		check    func(t *testing.T, f *fleet.Fleet)
	}{
		{"tamper", func(t *testing.T, f *fleet.Fleet) {
			assertCordoned(t, f, "edge-1", cluster.StatusAttestationFailed, cluster.ReasonAttestationFailed)
			if e, _ := warning(t, f, "edge-1", cluster.ReasonAttestationFailed); !strings.Contains(e.Note, "IMA") {
				t.Errorf("the failure event does not name the IMA part: %q", e.Note)
			}
			assertUntouched(t, f, "edge-2")
		}},
		{"reboot", func(t *testing.T, f *fleet.Fleet) {
			assertUntouched(t, f, "edge-2")
			assertUntouched(t, f, "edge-1")
		}},
		{"secureboot-off", func(t *testing.T, f *fleet.Fleet) {
			assertCordoned(t, f, "edge-1", cluster.StatusSecureBootDisabled, cluster.ReasonSecureBootDisabled)
			assertUntouched(t, f, "edge-2")
		}},
		{"onboard", func(t *testing.T, f *fleet.Fleet) {
			info := cluster.InfoOf(nodeOf(t, f, "edge-1"))
			if info.Status != cluster.StatusVerified || info.Cordoned || info.CordonedByUs || info.Tainted {
				t.Errorf("edge-1 after onboarding: %+v", info)
			}
			ev := events(t, f, "edge-1")
			failed := slices.IndexFunc(ev, func(e fleet.Event) bool { return e.Reason == cluster.ReasonAttestationFailed })
			onboarded := slices.IndexFunc(ev, func(e fleet.Event) bool { return e.Type == "Normal" && e.Reason == cluster.ReasonOnboarded })
			if failed < 0 || onboarded < failed {
				t.Errorf("failed at event %d, onboarded at %d: want a failure, then Onboarded: %v", failed, onboarded, ev)
			}
			assertUntouched(t, f, "edge-2")
		}},
	}
	for _, tt := range tests {
		t.Run("the "+tt.scenario+" scenario behaves as described", func(t *testing.T) {
			f := startFleet(t, 2)
			var out bytes.Buffer
			err := fleet.RunScenario(context.Background(), f, tt.scenario, &out)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, f)
		})
	}
}

// children lists the processes whose parent is this one.
func children(t *testing.T) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, pid)
		}
	}
	return out
}

func TestStopLeavesNothingRunningOrListening(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- fleet.Run(ctx, &out, testOptions(t, 2), fleet.RunOptions{Web: "127.0.0.1:0"}) }()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "all 2 nodes Verified") {
		select {
		case err := <-done:
			t.Fatalf("sandbox stopped: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes not verified:\n%s", out.String())
		}
	}
	nodes := children(t)
	if len(nodes) != 2 {
		t.Fatalf("%d child processes while running, want 2 nodes", len(nodes))
	}
	var addrs []string // each printed address once: the login line repeats the verifier's
	for _, m := range regexp.MustCompile(`(?:https|tls|http)://(127\.0\.0\.1:\d+)`).FindAllStringSubmatch(out.String(), -1) {
		if !slices.Contains(addrs, m[1]) {
			addrs = append(addrs, m[1])
		}
	}
	if len(addrs) != 4 {
		t.Fatalf("want the web view, verifier, bus and dashboard addresses in the output, got %v", addrs)
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			t.Fatalf("%s not listening while running: %v", a, err)
		}
		_ = c.Close()
	}

	web := regexp.MustCompile(`web view: (\S+)`).FindStringSubmatch(out.String())
	if web == nil {
		t.Fatal("no web view URL printed")
	}
	for _, tc := range []struct {
		method, path string
		status       int
		contains     string
	}{
		{http.MethodGet, "", http.StatusOK, "edge-2"},
		{http.MethodGet, "nodes.json", http.StatusOK, `"status":"Verified"`},
		{http.MethodPost, "", http.StatusMethodNotAllowed, ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, web[1]+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, web[1]+tc.path, resp.StatusCode, body, tc.status, tc.contains)
		}
	}

	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sandbox did not stop in 30s")
	}
	if left := children(t); len(left) != 0 {
		t.Errorf("child processes left: %v", left)
	}
	for _, pid := range nodes {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("node process %d still exists", pid)
		}
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s still listening after stop", a)
		}
	}
}
