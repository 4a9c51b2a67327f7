package cluster_test

import (
	"context"
	"errors"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

// blockingPDB creates a PodDisruptionBudget over pods labelled app=app that
// allows no disruption, with the status the disruption controller (absent
// here) would write.
func blockingPDB(t *testing.T, cs kubernetes.Interface, ns, app string) {
	t.Helper()
	ctx := context.Background()
	one := intstr.FromInt32(1)
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one,
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pdb: %v", err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation,
		DisruptionsAllowed: 0,
		CurrentHealthy:     1,
		DesiredHealthy:     1,
		ExpectedPods:       1,
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set pdb status: %v", err)
	}
}

// evicted tells whether the pod is gone or being deleted.
func evicted(t *testing.T, cs kubernetes.Interface, ns, name string) bool {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return p.DeletionTimestamp != nil
}

func TestEvict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := clustertest.Clientset(t)
	node, otherNode := uniqueName(t, "n"), uniqueName(t, "n")
	enabledNode(node).Unschedulable().Create(t, cs)
	workloads, elsewhere := uniqueName(t, "ns"), uniqueName(t, "ns")
	clustertest.Namespace(t, cs, workloads)
	clustertest.Namespace(t, cs, elsewhere)

	clustertest.Pod(workloads, "plain").OnNode(node).Create(t, cs)
	clustertest.Pod(workloads, "guarded").OnNode(node).Label("app", "guarded").Create(t, cs)
	blockingPDB(t, cs, workloads, "guarded")
	clustertest.Pod(workloads, "daemon").OnNode(node).OwnedBy("apps/v1", "DaemonSet", "agent").Create(t, cs)
	clustertest.Pod(workloads, "static").OnNode(node).Annotation("kubernetes.io/config.mirror", "abc").Create(t, cs)
	clustertest.Pod(workloads, "other-node").OnNode(otherNode).Create(t, cs)
	clustertest.Pod(elsewhere, "not-configured").OnNode(node).Create(t, cs)

	n, err := newNodes(t, cs).Evict(ctx, node, []string{workloads})

	if n != 1 {
		t.Errorf("evicted %d pods, want 1", n)
	}
	var blocked *cluster.EvictionBlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("error = %v, want an EvictionBlockedError", err)
	}
	if len(blocked.Pods) != 1 || blocked.Pods[0] != workloads+"/guarded" || blocked.Node != node {
		t.Errorf("blocked = %+v, want node %s pod %s/guarded", blocked, node, workloads)
	}
	tests := []struct {
		ns, pod string
		want    bool
	}{
		{workloads, "plain", true},
		{workloads, "guarded", false},
		{workloads, "daemon", false},
		{workloads, "static", false},
		{workloads, "other-node", false},
		{elsewhere, "not-configured", false},
	}
	for _, tt := range tests {
		if got := evicted(t, cs, tt.ns, tt.pod); got != tt.want {
			t.Errorf("pod %s/%s evicted = %v, want %v", tt.ns, tt.pod, got, tt.want)
		}
	}

	// Again: the evicted pod is already going, the guarded one is still
	// refused, nothing else is touched.
	n, err = newNodes(t, cs).Evict(ctx, node, []string{workloads})
	if n != 0 || !errors.As(err, &blocked) {
		t.Errorf("second Evict = %d, %v; want 0 and the guarded pod refused again", n, err)
	}
}

func TestEvictWithoutNamespacesEvictsNothing(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	node, ns := uniqueName(t, "n"), uniqueName(t, "ns")
	enabledNode(node).Create(t, cs)
	clustertest.Namespace(t, cs, ns)
	clustertest.Pod(ns, "plain").OnNode(node).Create(t, cs)

	n, err := newNodes(t, cs).Evict(context.Background(), node, nil)
	if n != 0 || err != nil {
		t.Errorf("Evict with no namespaces = %d, %v; want 0, nil", n, err)
	}
	if evicted(t, cs, ns, "plain") {
		t.Error("a pod was evicted though no namespace was configured")
	}
}
