package fleet_test

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

// TestTamperOnARealCluster runs the tamper scenario with --kubeconfig: the
// sandbox creates the Node objects and the manager cordons the tampered one
// in the real kube-apiserver, exactly as the Kubernetes adapter does.
func TestTamperOnARealCluster(t *testing.T) {
	cs := clustertest.Clientset(t)
	opts := testOptions(t, 2)
	opts.Kube = cs
	ctx := context.Background()
	f, err := fleet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	if err := f.WaitAllVerified(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	node := func(name string) *corev1.Node {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := node("edge-1"); n.Labels[cluster.LabelStatus] != string(cluster.StatusVerified) {
		t.Fatalf("edge-1 labels %v, want verified", n.Labels)
	}
	if err := fleet.RunScenario(ctx, f, "tamper", io.Discard); err != nil {
		t.Fatal(err)
	}
	n := node("edge-1")
	tainted := slices.ContainsFunc(n.Spec.Taints, func(tt corev1.Taint) bool { return tt.Key == cluster.TaintUntrusted })
	if !n.Spec.Unschedulable || !tainted || n.Labels[cluster.LabelStatus] != string(cluster.StatusAttestationFailed) {
		t.Fatalf("tampered edge-1 in the cluster: unschedulable=%v taints=%v labels=%v", n.Spec.Unschedulable, n.Spec.Taints, n.Labels)
	}
	if other := node("edge-2"); other.Spec.Unschedulable || other.Labels[cluster.LabelStatus] != string(cluster.StatusVerified) {
		t.Fatalf("edge-2 changed: unschedulable=%v labels=%v", other.Spec.Unschedulable, other.Labels)
	}
}
