package manager

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

// kubeEnv is the manager acting on a real kube-apiserver (Node authorizer,
// NodeRestriction) through KubeNodes, over the fake verifier and clock.
type kubeEnv struct {
	*env
	admin kubernetes.Interface
	ns    string
}

func newKubeEnv(t *testing.T, prefix string, hosts map[string]string) *kubeEnv {
	t.Helper()
	admin := clustertest.Clientset(t)
	clock := newFakeClock()
	ns := prefix + "-tc"
	clustertest.Namespace(t, admin, ns)
	for node, host := range hosts {
		clustertest.Node(node).Label(cluster.LabelEnabled, "true").Annotation(cluster.AnnotationHostID, host).Create(t, admin)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	nodes := KubeNodes{
		Nodes:     cluster.New(admin, cluster.Options{Logger: log, Instance: "test", Now: clock.Now}),
		Clientset: admin,
		Requests:  cluster.NewOnboardRequests(admin, ns, ""),
		Log:       log,
	}
	e := &env{t: t, v: newFakeVerifier(clock), sink: &fakeSink{}}
	m, err := New(Config{}, Deps{Verifier: e.v, Nodes: nodes, Status: e.sink, Clock: clock, Logger: log, Rand: lockedRand(7)})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return &kubeEnv{env: e, admin: admin, ns: ns}
}

func (k *kubeEnv) node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := k.admin.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

func (k *kubeEnv) want(t *testing.T, name string, status cluster.Status, ready, cordoned bool) {
	t.Helper()
	n := k.node(t, name)
	if got := cluster.Status(n.Labels[cluster.LabelStatus]); got != status {
		t.Fatalf("node %s status %q, want %q (labels %v)", name, got, status, n.Labels)
	}
	if got := n.Labels[cluster.LabelReady] == "true"; got != ready {
		t.Fatalf("node %s ready %v, want %v (labels %v)", name, got, ready, n.Labels)
	}
	if n.Spec.Unschedulable != cordoned {
		t.Fatalf("node %s cordoned %v, want %v", name, n.Spec.Unschedulable, cordoned)
	}
}

func meta(kind string, kv map[string]any) map[string]any {
	return map[string]any{"metadata": map[string]any{kind: kv}}
}

// TestANodeActingWithItsOwnIdentityCannotWriteItsTrust plays root on an
// edge node against the real API server and the manager. Each attack
// worked when the verdict labels were trustedcompute.io/ready and /status,
// the onboard request a Node annotation, and the verifier registration fell
// back to the host a node claimed.
func TestANodeActingWithItsOwnIdentityCannotWriteItsTrust(t *testing.T) {
	const victim, evil, thief, deserter = "mgr-victim", "mgr-evil", "mgr-thief", "mgr-deserter"
	k := newKubeEnv(t, "mgr-attacks", map[string]string{victim: hostID(1), evil: hostID(2), thief: hostID(3), deserter: hostID(4)})
	ctx := context.Background()
	k.tick()
	for _, n := range []string{victim, evil, thief, deserter} {
		k.want(t, n, cluster.StatusVerified, true, false)
	}
	// The evil node is tampered with and fails: cordoned, tainted.
	k.v.set(hostID(2), func(h *simHost) { h.tampered = true })
	k.advance(2 * time.Hour)
	k.want(t, evil, cluster.StatusAttestationFailed, false, true)
	asEvil := clustertest.AsNode(t, evil)

	t.Run("the node cannot label itself ready or verified", func(t *testing.T) {
		for _, l := range []map[string]any{{cluster.LabelReady: "true"}, {cluster.LabelStatus: "verified"}} {
			if err := clustertest.PatchNode(asEvil, evil, meta("labels", l)); !apierrors.IsForbidden(err) {
				t.Fatalf("node sets %v on itself: err %v, want forbidden", l, err)
			}
		}
		k.want(t, evil, cluster.StatusAttestationFailed, false, true)
	})

	t.Run("the node cannot remove its taint, and its uncordon is reverted within one refresh", func(t *testing.T) {
		if err := clustertest.PatchNode(asEvil, evil, map[string]any{"spec": map[string]any{"taints": []corev1.Taint{}}}); !apierrors.IsForbidden(err) {
			t.Fatalf("node removes its taint: err %v, want forbidden", err)
		}
		err := clustertest.PatchNode(asEvil, evil, map[string]any{"spec": map[string]any{"unschedulable": false}})
		if err == nil {
			// The API lets a node uncordon itself; the manager puts it back.
			k.advance(DefaultRefreshInterval)
		} else if !apierrors.IsForbidden(err) {
			t.Fatalf("node uncordons itself: %v", err)
		}
		k.want(t, evil, cluster.StatusAttestationFailed, false, true)
	})

	t.Run("the node cannot trigger its re-onboarding", func(t *testing.T) {
		rebaselines := k.v.rebaselines[hostID(2)]
		err := cluster.NewOnboardRequests(asEvil, k.ns, "").Request(ctx, evil, k.now())
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node writes its onboard request: err %v, want forbidden", err)
		}
		if err := clustertest.PatchNode(asEvil, evil, meta("annotations", map[string]any{cluster.AnnotationOnboard: "true"})); err != nil {
			t.Fatalf("node annotates itself: %v", err)
		}
		k.advance(DefaultRefreshInterval)
		if k.v.rebaselines[hostID(2)] != rebaselines {
			t.Fatalf("the node's own annotation re-baselined it")
		}
		k.want(t, evil, cluster.StatusAttestationFailed, false, true)

		// The operator's request, with the operator's credentials, works.
		k.v.set(hostID(2), func(h *simHost) { h.tampered = false })
		if err := cluster.NewOnboardRequests(k.admin, k.ns, "tcctl").Request(ctx, evil, k.now()); err != nil {
			t.Fatal(err)
		}
		k.advance(DefaultRefreshInterval)
		k.want(t, evil, cluster.StatusVerified, true, false)
		if got, err := cluster.NewOnboardRequests(k.admin, k.ns, "").List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("onboard requests after onboarding: %v, %v; want cleared", got, err)
		}
	})

	t.Run("the node cannot claim another node's host", func(t *testing.T) {
		if err := clustertest.PatchNode(clustertest.AsNode(t, thief), thief, meta("annotations", map[string]any{cluster.AnnotationHostID: hostID(1)})); err != nil {
			t.Fatalf("node annotates itself: %v", err)
		}
		k.advance(DefaultRefreshInterval)
		k.want(t, thief, cluster.StatusUnknown, false, false)
		k.want(t, victim, cluster.StatusVerified, true, false)
		c := k.node(t, thief).Status.Conditions
		if len(c) == 0 || c[0].Reason != cluster.ReasonHostClaimRefused {
			t.Fatalf("thief conditions %+v, want reason %s", c, cluster.ReasonHostClaimRefused)
		}
	})

	t.Run("the node cannot keep its ready label by leaving trusted compute", func(t *testing.T) {
		body := map[string]any{"metadata": map[string]any{"labels": map[string]any{cluster.LabelEnabled: nil}}}
		if err := clustertest.PatchNode(clustertest.AsNode(t, deserter), deserter, body); err != nil {
			t.Fatalf("node removes its enabled label: %v", err)
		}
		k.advance(DefaultRefreshInterval)
		if l := k.node(t, deserter).Labels; l[cluster.LabelReady] != "" || l[cluster.LabelStatus] != "" {
			t.Fatalf("labels of a node that left %v: want no verdict labels", l)
		}
	})
}
