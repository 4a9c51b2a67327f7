//go:build cgo && !tc_nosimulator

package fleet_test

import (
	"context"
	"io"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

// TestTamperOnARealCluster runs the tamper scenario with --kubeconfig: the
// sandbox creates the Node objects and the attestation manager's
// controller-runtime reconciler cordons the tampered one in the real
// kube-apiserver, as in production.
func TestTamperOnARealCluster(t *testing.T) {
	opts := testOptions(t, 2)
	opts.KubeConfig = clustertest.Start(t)
	f := startFleetWith(t, opts)
	if n := nodeOf(t, f, "edge-1"); n.Labels[cluster.LabelStatus] != string(cluster.StatusVerified) {
		t.Fatalf("edge-1 labels %v, want verified", n.Labels)
	}
	if err := fleet.RunScenario(context.Background(), f, "tamper", io.Discard); err != nil {
		t.Fatal(err)
	}
	n := nodeOf(t, f, "edge-1")
	tainted := slices.ContainsFunc(n.Spec.Taints, func(tt corev1.Taint) bool { return tt.Key == cluster.TaintUntrusted })
	if !n.Spec.Unschedulable || !tainted || n.Labels[cluster.LabelStatus] != string(cluster.StatusAttestationFailed) {
		t.Fatalf("tampered edge-1 in the cluster: unschedulable=%v taints=%v labels=%v", n.Spec.Unschedulable, n.Spec.Taints, n.Labels)
	}
	assertUntouched(t, f, "edge-2")
}
