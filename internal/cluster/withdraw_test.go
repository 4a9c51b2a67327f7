package cluster_test

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

func TestWithdraw(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	tests := []nodeCase{
		{
			name: "a verified ready node loses ready and turns unknown, uncordoned",
			node: verifiedNode,
			want: nodeWant{status: "unknown", condition: corev1.ConditionUnknown, reason: cluster.ReasonVerifierUnreachable},
		},
		{name: "a failed node keeps its status, cordon and taint", node: failedNode, want: failedUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			name, nodes := createNode(t, cs, tt.node)
			for i, wantChanged := range []bool{true, false} {
				changed, err := nodes.Withdraw(ctx, name, cluster.ReasonVerifierUnreachable, "evidence from 09:00 older than 2h")
				if err != nil || changed != wantChanged {
					t.Fatalf("Withdraw #%d = %v, %v; want changed %v", i+1, changed, err, wantChanged)
				}
			}
			checkNode(t, getNode(t, cs, name), tt.want)
			if ev := clustertest.NodeEvents(t, cs, name); len(ev) != 1 || ev[0].Type != corev1.EventTypeWarning || ev[0].Reason != cluster.ReasonVerifierUnreachable {
				t.Fatalf("events %+v, want one Warning %s", ev, cluster.ReasonVerifierUnreachable)
			}
			// Fresh evidence makes it Verified again: a withdrawal is no failure.
			if err := nodes.MarkVerified(ctx, name, true, "r-2", "ok"); err != nil {
				t.Fatal(err)
			}
			if info, err := nodes.Get(ctx, name); err != nil || (tt.want.status == "unknown" && (info.Status != cluster.StatusVerified || !info.Ready)) {
				t.Fatalf("after MarkVerified %+v, %v", info, err)
			}
		})
	}
}

func TestClearDisabledRemovesTheVerdictOfANodeThatLeft(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	ctx := context.Background()
	left, stays := uniqueName(t, "n"), uniqueName(t, "n")
	clustertest.Node(left).Label(cluster.LabelStatus, "verified").Label(cluster.LabelReady, "true").Create(t, cs)
	verifiedNode(stays).Create(t, cs)
	cleared, err := newNodes(t, cs).ClearDisabled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := getNode(t, cs, left); n.Labels[cluster.LabelReady] != "" || n.Labels[cluster.LabelStatus] != "" {
		t.Fatalf("labels of the node that left %v (cleared %v)", n.Labels, cleared)
	}
	if n := getNode(t, cs, stays); n.Labels[cluster.LabelReady] != "true" {
		t.Fatalf("an enabled node lost its verdict: %v", n.Labels)
	}
}

// FlavorsReplaced leaves the operator's trail of golden flavors a boot
// replaced: a Warning Event naming the report, and nothing else changed.
func TestFlavorsReplacedRecordsAWarningAndChangesNothing(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	ctx := context.Background()
	name, nodes := createNode(t, cs, verifiedNode)
	before := getNode(t, cs, name)
	if err := nodes.FlavorsReplaced(ctx, name, "r-9", "this boot measured OS otherwise than the golden flavors"); err != nil {
		t.Fatal(err)
	}
	after := getNode(t, cs, name)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the Node changed: %v → %v", before.Labels, after.Labels)
	}
	ev := clustertest.NodeEvents(t, cs, name)
	if len(ev) != 1 || ev[0].Type != corev1.EventTypeWarning || ev[0].Reason != cluster.ReasonGoldenFlavorsReplaced ||
		ev[0].Annotations[cluster.AnnotationReport] != "r-9" || ev[0].Note != "this boot measured OS otherwise than the golden flavors" {
		t.Fatalf("events %+v, want one Warning %s about r-9", ev, cluster.ReasonGoldenFlavorsReplaced)
	}
	if err := nodes.FlavorsReplaced(ctx, "no-such-node", "r-9", "x"); !errors.Is(err, cluster.ErrNodeNotFound) {
		t.Errorf("FlavorsReplaced(unknown node) = %v, want ErrNodeNotFound", err)
	}
}
