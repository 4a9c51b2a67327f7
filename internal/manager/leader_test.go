package manager

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

// writeLog records every write a replica makes to a Node, by replica.
type writeLog struct {
	mu     sync.Mutex
	writes []string // "replica method node report"
}

func (w *writeLog) add(replica, method, node, detail string) {
	if !strings.HasPrefix(node, "lease-") {
		return // another test's Node on the shared API server
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, replica+" "+method+" "+node+" "+detail)
}

func (w *writeLog) by(replica string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.writes {
		if strings.HasPrefix(s, replica+" ") {
			out = append(out, s)
		}
	}
	return out
}

// duplicates lists the writes of one verdict (method, node, report) made
// more than once, by any replicas.
func (w *writeLog) duplicates() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]int{}
	for _, s := range w.writes {
		_, what, _ := strings.Cut(s, " ")
		seen[what]++
	}
	var out []string
	for what, n := range seen {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", what, n))
		}
	}
	return out
}

// recordingNodes is a replica's KubeNodes that logs its verdict writes.
type recordingNodes struct {
	KubeNodes
	replica string
	log     *writeLog
}

func (r recordingNodes) MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error {
	r.log.add(r.replica, "verified", node, reportID)
	return r.KubeNodes.MarkVerified(ctx, node, ready, reportID, message)
}

func (r recordingNodes) MarkFailed(ctx context.Context, node string, status cluster.Status, parts []string, reportID, message string) (bool, error) {
	r.log.add(r.replica, "failed", node, reportID)
	return r.KubeNodes.MarkFailed(ctx, node, status, parts, reportID, message)
}

func (r recordingNodes) Withdraw(ctx context.Context, node, reason, message string) (bool, error) {
	r.log.add(r.replica, "withdraw", node, reason)
	return r.KubeNodes.Withdraw(ctx, node, reason, message)
}

// replica is one attestation manager process: its Manager, its
// controller-runtime manager with leader election, its own EIM sink.
type replica struct {
	name   string
	m      *Manager
	cm     ctrl.Manager
	sink   *fakeSink
	cancel context.CancelFunc
	done   chan struct{} // closed when the manager stopped
}

func (r *replica) elected() bool { return clustertest.Elected(r.cm) }

func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s did not stop", r.name)
	}
}

// TestTwoReplicasOnOneAPIServerOnlyTheLeaderActsAndTheOtherTakesOver runs
// two managers with Lease leader election on the real API server, over one
// verifier: only the elected one writes Nodes and tells the EIM; when it
// crashes (stops holding its Lease) the other takes over within the lease
// duration, keeps attesting, and no verdict is written twice. Without
// leader election both replicas would register, patch and notify every node.
func TestTwoReplicasOnOneAPIServerOnlyTheLeaderActsAndTheOtherTakesOver(t *testing.T) {
	rc := clustertest.Start(t)
	admin := clustertest.NewClientset(t, rc)
	const ns = "mgr-lease-tc"
	clustertest.Namespace(t, admin, ns)
	names := []string{"lease-1", "lease-2", "lease-3", "lease-4", "lease-5"}
	for i, name := range names {
		clustertest.Node(name).Label(cluster.LabelEnabled, "true").Annotation(cluster.AnnotationHostID, hostID(200+i)).Create(t, admin)
	}
	clock := newFakeClock()
	v := newFakeVerifier(clock)
	writes := &writeLog{}
	le := LeaderElection{
		Enabled: true, Namespace: ns, LeaseName: "lease-test", HoldLeaseOnStop: true,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := func(name string) *replica {
		nodes := recordingNodes{
			KubeNodes: KubeNodes{
				Nodes:     cluster.New(admin, cluster.Options{Logger: log, Instance: name, Now: clock.Now}),
				Clientset: admin, Requests: cluster.NewOnboardRequests(admin, ns, ""), Log: log,
			},
			replica: name, log: writes,
		}
		r := &replica{name: name, sink: &fakeSink{}, done: make(chan struct{})}
		var err error
		if r.m, err = New(Config{}, Deps{Verifier: v, Nodes: nodes, Status: r.sink, Clock: clock, Logger: log, Rand: lockedRand(3)}); err != nil {
			t.Fatal(err)
		}
		if r.cm, err = NewControllerManager(rc, le, ns, log); err != nil {
			t.Fatal(err)
		}
		if err := r.m.Controller(r.cm, ControllerOptions{Namespace: ns, SkipNameValidation: true}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() {
			defer close(r.done)
			_ = r.cm.Start(ctx) // "leader election lost" when stopped while leading
		}()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	a, b := start("replica-a"), start("replica-b")
	published := func(i int) { // the bus delivers every report to both
		a.m.ReportPublished(hostID(200 + i))
		b.m.ReportPublished(hostID(200 + i))
	}
	k := &kubeEnv{admin: admin}

	waitFor(t, 30*time.Second, "one replica elected", func() bool { return a.elected() || b.elected() })
	leader, follower := a, b
	if b.elected() {
		leader, follower = b, a
	}
	waitFor(t, 30*time.Second, "every node verified", func() bool {
		for _, n := range names {
			if k.node(t, n).Labels[cluster.LabelStatus] != string(cluster.StatusVerified) {
				return false
			}
		}
		return true
	})
	// A tamper while both run: only the leader acts on its report.
	v.set(hostID(201), func(h *simHost) { h.tampered = true })
	v.publish(hostID(201))
	published(1)
	waitFor(t, 30*time.Second, "lease-2 cordoned", func() bool { return k.node(t, "lease-2").Spec.Unschedulable })
	if follower.elected() {
		t.Fatal("both replicas are elected")
	}
	if got := writes.by(follower.name); len(got) != 0 || len(follower.sink.all()) != 0 || v.count("register lease-") != len(names) {
		t.Fatalf("the follower acted: writes %v, EIM %v, registrations %d", got, follower.sink.all(), v.count("register lease-"))
	}
	leaderWrites := len(writes.by(leader.name))

	// The leader crashes: it keeps its Lease until the Lease expires.
	crashed := time.Now()
	leader.stop(t)
	waitFor(t, 30*time.Second, "the follower elected", follower.elected)
	took := time.Since(crashed)
	if limit := le.LeaseDuration + 2*le.RetryPeriod + time.Second; took > limit {
		t.Fatalf("the follower took over after %s, want within the lease duration (%s, limit %s)", took, le.LeaseDuration, limit)
	}

	// The new leader keeps attesting: a tamper after the failover is caught,
	// and a node enabled after it is attested.
	v.set(hostID(203), func(h *simHost) { h.tampered = true })
	v.publish(hostID(203))
	published(3)
	clustertest.Node("lease-6").Label(cluster.LabelEnabled, "true").Annotation(cluster.AnnotationHostID, hostID(205)).Create(t, admin)
	waitFor(t, 30*time.Second, "lease-4 cordoned and lease-6 verified by the new leader", func() bool {
		return k.node(t, "lease-4").Spec.Unschedulable &&
			k.node(t, "lease-6").Labels[cluster.LabelStatus] == string(cluster.StatusVerified)
	})
	if got := writes.by(leader.name); len(got) != leaderWrites {
		t.Fatalf("the stopped leader wrote after it stopped: %v", got[leaderWrites:])
	}
	if d := writes.duplicates(); len(d) != 0 {
		t.Fatalf("verdicts written twice across the failover: %v", d)
	}
	k.want(t, "lease-2", cluster.StatusAttestationFailed, false, true)
	failed := slices.DeleteFunc(writes.by(follower.name), func(s string) bool { return !strings.Contains(s, " failed ") })
	if len(failed) != 1 || !strings.Contains(failed[0], "lease-4") {
		t.Fatalf("the new leader's failures %v, want lease-4 once (lease-2 was acted on already)", failed)
	}
	t.Logf("takeover after a crash: %s (lease %s, retry %s); writes: leader %d, new leader %d",
		took.Round(10*time.Millisecond), le.LeaseDuration, le.RetryPeriod, leaderWrites, len(writes.by(follower.name)))
}

// TestTheControllerWakesOnTheChangesItWatches runs one manager as the
// controller on the real API server, with no poll coming due (the clock
// stands still): an uncordon of a failed node is reverted, an operator's
// onboard request is acted on, and a node that leaves Trusted Compute loses
// its verdict labels, each from a watch event alone.
func TestTheControllerWakesOnTheChangesItWatches(t *testing.T) {
	rc := clustertest.Start(t)
	admin := clustertest.NewClientset(t, rc)
	const ns = "mgr-watch-tc"
	clustertest.Namespace(t, admin, ns)
	clustertest.Node("watch-1").Label(cluster.LabelEnabled, "true").Annotation(cluster.AnnotationHostID, hostID(301)).Create(t, admin)
	clustertest.Node("watch-2").Label(cluster.LabelEnabled, "true").Annotation(cluster.AnnotationHostID, hostID(302)).Create(t, admin)
	clock := newFakeClock()
	v := newFakeVerifier(clock)
	v.set(hostID(301), func(h *simHost) { h.tampered = true })
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	nodes := KubeNodes{
		Nodes:     cluster.New(admin, cluster.Options{Logger: log, Instance: "watch", Now: clock.Now}),
		Clientset: admin, Requests: cluster.NewOnboardRequests(admin, ns, ""), Log: log,
	}
	m, err := New(Config{}, Deps{Verifier: v, Nodes: nodes, Status: &fakeSink{}, Clock: clock, Logger: log, Rand: lockedRand(5)})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := NewControllerManager(rc, LeaderElection{}, ns, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Controller(cm, ControllerOptions{Namespace: ns, SkipNameValidation: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cm.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	k := &kubeEnv{admin: admin}
	waitFor(t, 30*time.Second, "watch-1 cordoned, watch-2 verified", func() bool {
		return k.node(t, "watch-1").Spec.Unschedulable && k.node(t, "watch-2").Labels[cluster.LabelStatus] == string(cluster.StatusVerified)
	})

	if err := clustertest.PatchNode(admin, "watch-1", map[string]any{"spec": map[string]any{"unschedulable": false}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the uncordon reverted", func() bool { return k.node(t, "watch-1").Spec.Unschedulable })

	v.set(hostID(301), func(h *simHost) { h.tampered = false })
	if err := cluster.NewOnboardRequests(admin, ns, "tcctl").Request(ctx, "watch-1", clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "watch-1 re-onboarded", func() bool {
		n := k.node(t, "watch-1")
		return !n.Spec.Unschedulable && n.Labels[cluster.LabelStatus] == string(cluster.StatusVerified)
	})

	if err := clustertest.PatchNode(admin, "watch-2", meta("labels", map[string]any{cluster.LabelEnabled: nil})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "watch-2's verdict labels removed", func() bool {
		l := k.node(t, "watch-2").Labels
		return l[cluster.LabelStatus] == "" && l[cluster.LabelReady] == ""
	})
}
