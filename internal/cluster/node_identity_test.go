package cluster_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

func labels(kv ...string) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return map[string]any{"metadata": map[string]any{"labels": m}}
}

// TestANodeCannotWriteItsOwnTrust plays a compromised node: root on the
// node has the kubelet's credentials. Each attack worked when the verdict
// labels were trustedcompute.io/ready and trustedcompute.io/status and the
// onboard request a Node annotation.
func TestANodeCannotWriteItsOwnTrust(t *testing.T) {
	t.Parallel()
	admin := clustertest.Clientset(t)
	ctx := context.Background()

	t.Run("the node cannot label itself ready", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "n")
		enabledNode(name).Create(t, admin)
		err := clustertest.PatchNode(clustertest.AsNode(t, name), name, labels(cluster.LabelReady, "true"))
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node labels itself %s=true: err %v, want forbidden", cluster.LabelReady, err)
		}
		if info, err := newNodes(t, admin).Get(ctx, name); err != nil || info.Ready {
			t.Fatalf("Get = %+v, %v; want not ready", info, err)
		}
	})

	t.Run("the node cannot label itself verified", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "n")
		failedNode(name).Create(t, admin)
		err := clustertest.PatchNode(clustertest.AsNode(t, name), name, labels(cluster.LabelStatus, string(cluster.StatusVerified)))
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node labels itself %s=verified: err %v, want forbidden", cluster.LabelStatus, err)
		}
	})

	t.Run("the node cannot remove its status label", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "n")
		enabledNode(name).Create(t, admin)
		nodes := newNodes(t, admin)
		if err := nodes.MarkVerified(ctx, name, true, "r-1", "ok"); err != nil {
			t.Fatal(err)
		}
		// Removing a restricted label is refused too, so the node cannot
		// hide a status either.
		body := map[string]any{"metadata": map[string]any{"labels": map[string]any{cluster.LabelStatus: nil}}}
		if err := clustertest.PatchNode(clustertest.AsNode(t, name), name, body); !apierrors.IsForbidden(err) {
			t.Fatalf("node removes its %s label: err %v, want forbidden", cluster.LabelStatus, err)
		}
	})

	t.Run("the node cannot remove its untrusted taint", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "n")
		enabledNode(name).Create(t, admin)
		if _, err := newNodes(t, admin).MarkFailed(ctx, name, cluster.StatusAttestationFailed, []string{"IMA"}, "r-1", ""); err != nil {
			t.Fatal(err)
		}
		node := clustertest.AsNode(t, name)
		err := clustertest.PatchNode(node, name, map[string]any{"spec": map[string]any{"taints": []corev1.Taint{}}})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node removes its taints: err %v, want forbidden", err)
		}
		if info, err := newNodes(t, admin).Get(ctx, name); err != nil || !info.Tainted {
			t.Fatalf("Get = %+v, %v; want the taint kept", info, err)
		}
	})

	t.Run("the node cannot ask for its own re-onboarding", func(t *testing.T) {
		t.Parallel()
		name, ns := uniqueName(t, "n"), uniqueName(t, "ns")
		failedNode(name).Create(t, admin)
		clustertest.Namespace(t, admin, ns)
		node := clustertest.AsNode(t, name)

		// Where requests are: the node may not write there.
		err := cluster.NewOnboardRequests(node, ns, "").Request(ctx, name, time.Now())
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node writes its onboard request: err %v, want forbidden", err)
		}
		// Where requests were: the node may write there, and it is ignored.
		body := map[string]any{"metadata": map[string]any{"annotations": map[string]any{cluster.AnnotationOnboard: "true"}}}
		if err := clustertest.PatchNode(node, name, body); err != nil {
			t.Fatalf("node annotates itself: %v (the API allows it; the manager must ignore it)", err)
		}
		info, err := newNodes(t, admin).Get(ctx, name)
		if err != nil || info.OnboardRequested {
			t.Fatalf("Get = %+v, %v; want no onboard request from the node's own annotation", info, err)
		}
		if got, err := cluster.NewOnboardRequests(admin, ns, "").List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("onboard requests = %v, %v; want none", got, err)
		}
	})

	t.Run("another node's identity cannot touch the node at all", func(t *testing.T) {
		t.Parallel()
		name, other := uniqueName(t, "n"), uniqueName(t, "n")
		enabledNode(name).Create(t, admin)
		enabledNode(other).Create(t, admin)
		body := map[string]any{"metadata": map[string]any{"annotations": map[string]any{cluster.AnnotationHostID: "stolen"}}}
		if err := clustertest.PatchNode(clustertest.AsNode(t, other), name, body); !apierrors.IsForbidden(err) {
			t.Fatalf("node %s annotates node %s: err %v, want forbidden", other, name, err)
		}
	})
}
