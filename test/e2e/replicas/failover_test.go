package replicas_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/eim"
	"trustedcompute.io/tc/internal/fleetsim"
	"trustedcompute.io/tc/internal/manager"
	"trustedcompute.io/tc/internal/manager/hvsclient"
	"trustedcompute.io/tc/internal/verifier/hvs"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

// actions records every Node write and EIM update the managers make, to
// find one made twice.
type actions struct {
	mu       sync.Mutex
	writes   map[string]int       // "method node report" → count
	notified map[string]int       // host → EIM updates
	failedAt map[string]time.Time // node → its first failed verdict written
}

func (a *actions) write(method, node, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.writes[method+" "+node+" "+detail]++
}

func (a *actions) duplicates() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for w, n := range a.writes {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", w, n))
		}
	}
	return out
}

// recordingNodes is a manager's Nodes that records its verdict writes.
type recordingNodes struct {
	manager.KubeNodes
	log *actions
}

func (r recordingNodes) MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error {
	r.log.write("verified", node, reportID)
	return r.KubeNodes.MarkVerified(ctx, node, ready, reportID, message)
}

func (r recordingNodes) MarkFailed(ctx context.Context, node string, status cluster.Status, parts []string, reportID, message string) (bool, error) {
	r.log.write("failed", node, reportID)
	changed, err := r.KubeNodes.MarkFailed(ctx, node, status, parts, reportID, message)
	if err == nil {
		r.log.mu.Lock()
		if _, ok := r.log.failedAt[node]; !ok {
			r.log.failedAt[node] = time.Now()
		}
		r.log.mu.Unlock()
	}
	return changed, err
}

func (r recordingNodes) Withdraw(ctx context.Context, node, reason, message string) (bool, error) {
	changed, err := r.KubeNodes.Withdraw(ctx, node, reason, message)
	if changed {
		r.log.write("withdraw", node, reason+" "+time.Now().Format(time.RFC3339Nano))
	}
	return changed, err
}

// eimSink is a manager's EIM. The manager tells the EIM the verdict of
// every report it acts on, with the Node write of that verdict: more updates
// than verdict writes for a host is an update made twice.
type eimSink struct{ log *actions }

func (s eimSink) Notify(hostGUID string, _ eim.Status, _ string) error {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.notified[hostGUID]++
	return nil
}

// eimDuplicates counts the EIM updates beyond the verdicts written, over
// the hosts (whose Nodes are named after them).
func (a *actions) eimDuplicates() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	acted := map[string]int{}
	for w, n := range a.writes {
		f := strings.Fields(w)
		acted[f[1]] += n
	}
	extra := 0
	for host, n := range a.notified {
		extra += max(0, n-acted[host])
	}
	return extra
}

// managerReplica is one attestation manager process with leader election.
type managerReplica struct {
	m      *manager.Manager
	cm     ctrl.Manager
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *managerReplica) elected() bool { return clustertest.Elected(r.cm) }

// TestTheFleetStaysAttestedWhenAVerifierReplicaAndTheLeaderManagerStop is
// issue 14's failover test: three verifier replicas on one PostgreSQL with a
// 3-server NATS cluster, two attestation managers electing a leader on a
// real kube-apiserver, 50 simulated nodes. One verifier replica stops, a
// node is tampered with, then the leader manager crashes (keeps its Lease).
// Every node must be attested again within one interval, no Node write or
// EIM update made twice, and the tamper caught and cordoned.
func TestTheFleetStaysAttestedWhenAVerifierReplicaAndTheLeaderManagerStop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three verifiers, two managers, a kube-apiserver and a fleet")
	}
	const poll = time.Minute // the manager's shortest pollDuration
	rc := clustertest.Start(t)
	cs := clustertest.NewClientset(t, rc)
	const ns = "tc-replicas"
	clustertest.Namespace(t, cs, ns)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	// The manager attests every poll; the verifiers' own refresh is the
	// backstop for a report about to expire.
	s := startSite(t, ctx, func(replica string) hvs.Config {
		return hvs.Config{ReportValidity: poll + 30*time.Second, RefreshMargin: 20 * time.Second, RefreshInterval: time.Second,
			Interval: poll, Replica: replica}
	})
	vs, f, api, last, logger, enrolled := s.vs, s.fleet, s.api, s.last, s.logger, s.enrolled
	// The verifiers' schedule may have attested a host between its
	// registration and its first flavors (an untrusted report); a report
	// of each now is the latest the managers find.
	for _, n := range f.Nodes() {
		r, err := api.CreateReport(ctx, n.HostID)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Trusted() {
			t.Fatalf("report of %s before the managers start: %s %+v", n.HostID, r.HostStatus, r.Faults)
		}
	}
	for _, n := range f.Nodes() {
		clustertest.Node(n.HostID).Label(cluster.LabelEnabled, "true").Annotation(cluster.AnnotationHostID, n.HostID).Create(t, cs)
	}

	var (
		mmu      sync.Mutex
		managers []*managerReplica
	)
	// The bus delivers every report to both managers, as their report
	// subscriptions do, and to the test.
	seen := s.watch(t, ctx, func(hostID string) {
		mmu.Lock()
		defer mmu.Unlock()
		for _, m := range managers {
			m.m.ReportPublished(hostID)
		}
	})
	// Two managers; the REST API through the last verifier replica.
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(verifiertest.AdminPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	acts := &actions{writes: map[string]int{}, notified: map[string]int{}, failedAt: map[string]time.Time{}}
	le := manager.LeaderElection{Enabled: true, Namespace: ns, LeaseName: "tc-failover", HoldLeaseOnStop: true,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}
	startManager := func(name string) *managerReplica {
		hc, err := hvsclient.New(last.Base, last.Roots, hvsclient.Credentials{Username: "admin", PasswordFile: pw})
		if err != nil {
			t.Fatal(err)
		}
		nodes := recordingNodes{KubeNodes: manager.KubeNodes{
			Nodes:     cluster.New(cs, cluster.Options{Logger: logger, Instance: name}),
			Clientset: cs, Requests: cluster.NewOnboardRequests(cs, ns, ""), Log: logger,
		}, log: acts}
		r := &managerReplica{done: make(chan struct{})}
		if r.m, err = manager.New(manager.Config{PollDuration: poll, Jitter: -1, GoldenFlavors: manager.Provided,
			DiskEncryption: manager.DiskEncryptionClaimed}, manager.Deps{
			Verifier: manager.HVSVerifier{Client: hc, Log: logger}, Nodes: nodes, Status: eimSink{acts}, Logger: logger,
		}); err != nil {
			t.Fatal(err)
		}
		if r.cm, err = manager.NewControllerManager(rc, le, ns, logger); err != nil {
			t.Fatal(err)
		}
		if err := r.m.Controller(r.cm, manager.ControllerOptions{Namespace: ns, SkipNameValidation: true}); err != nil {
			t.Fatal(err)
		}
		mctx, mcancel := context.WithCancel(context.Background())
		r.cancel = mcancel
		go func() {
			defer close(r.done)
			_ = r.cm.Start(mctx)
		}()
		t.Cleanup(func() { mcancel(); <-r.done })
		return r
	}
	ma, mb := startManager("manager-a"), startManager("manager-b")
	mmu.Lock()
	managers = []*managerReplica{ma, mb}
	mmu.Unlock()

	waitStatus(t, ctx, cs, seen, f.Nodes(), nil, 2*poll)
	verified := time.Since(start)
	leader := ma
	if mb.elected() {
		leader = mb
	}

	// Replica 1 stops, a node is tampered with, the leader manager crashes.
	killed := time.Now()
	t.Logf("verifier replica 1 stops at %s; the leader manager next", killed.Format("15:04:05.000"))
	vs[0].Stop()
	target := f.Nodes()[fleetNodes/2]
	if err := target.Measure("/usr/bin/evil", "a file that is in no golden flavor"); err != nil {
		t.Fatal(err)
	}
	leader.cancel() // holds its Lease: the other takes over when it lapses
	<-leader.done

	waitAll(t, ctx, seen, killed, f.Nodes(), poll+15*time.Second)
	attested := time.Since(killed)
	waitStatus(t, ctx, cs, seen, f.Nodes(), target, poll)
	acts.mu.Lock()
	cordoned := acts.failedAt[target.HostID].Sub(killed)
	acts.mu.Unlock()
	// The new leader reads each Node's latest report when it is elected:
	// the tamper is acted on once the old leader's Lease lapses, not at
	// the node's next poll.
	if limit := le.LeaseDuration + 15*time.Second; cordoned > limit {
		t.Errorf("the tampered node was marked failed %s after the failover began, want within %s (the Lease and a reconcile), not at its next poll", cordoned.Round(time.Millisecond), limit)
	}
	caught, _ := seen.untrustedAfter(target.HostID, killed)

	dups := acts.duplicates()
	if len(dups) > 0 {
		t.Errorf("Node writes made twice: %v", dups)
	}
	eimDups := acts.eimDuplicates()
	if eimDups > 0 {
		t.Errorf("%d EIM updates made twice (more updates than verdicts written)", eimDups)
	}
	reportDups := seen.duplicates(poll/4, target.HostID)
	if len(reportDups) > 0 {
		t.Errorf("%d reports made twice in one round: %v", len(reportDups), reportDups)
	}
	t.Logf("figures: %d verifier replicas, %d-server NATS cluster, PostgreSQL, 2 managers, %d nodes; enrolled in %s, all Verified after %s; "+
		"after verifier replica 1 and the leader manager stopped every node was attested again within %s (interval %s); "+
		"tamper reported untrusted after %s, cordoned after %s; %d duplicate Node writes, %d duplicate EIM updates, %d duplicate reports",
		replicas, replicas, fleetNodes, enrolled.Round(time.Millisecond), verified.Round(time.Millisecond),
		attested.Round(time.Millisecond), poll, caught.Sub(killed).Round(time.Millisecond), cordoned.Round(time.Millisecond),
		len(dups), eimDups, len(reportDups))
}

// waitStatus waits until every node's Node is Verified, and failed the
// tampered one (when set) and cordoned.
func waitStatus(t *testing.T, ctx context.Context, cs kubernetes.Interface, seen *arrivals, nodes []*fleetsim.Node, tampered *fleetsim.Node, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var wrong []string
		for _, n := range nodes {
			k, err := cs.CoreV1().Nodes().Get(ctx, n.HostID, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := string(cluster.StatusVerified)
			if n == tampered {
				want = string(cluster.StatusAttestationFailed)
				if !k.Spec.Unschedulable {
					want += " (cordoned)"
				}
			}
			if got := k.Labels[cluster.LabelStatus]; got != want {
				msg := ""
				for _, c := range k.Status.Conditions {
					if strings.Contains(string(c.Type), "Trusted") {
						msg = c.Message
					}
				}
				wrong = append(wrong, n.HostID+"="+got+" ("+msg+")")
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			seen.mu.Lock()
			causes := slices.Clone(seen.causes)
			seen.mu.Unlock()
			t.Fatalf("%d Nodes not as expected within %s: %v; untrusted reports: %v", len(wrong), within, wrong, causes)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
