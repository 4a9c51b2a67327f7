package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

// newNodes is the package under test acting through cs, logging to the test.
func newNodes(t *testing.T, cs kubernetes.Interface) *cluster.Nodes {
	t.Helper()
	return cluster.New(cs, cluster.Options{
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
		Instance: "test",
	})
}

var serial atomic.Int64

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName is a DNS-safe name no other test uses: all tests share one API
// server.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	base := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return strings.Trim(fmt.Sprintf("%s-%s-%d", prefix, base, serial.Add(1)), "-")
}

// enabledNode starts a Node selected for Trusted Compute.
func enabledNode(name string) *clustertest.NodeBuilder {
	return clustertest.Node(name).Label(cluster.LabelEnabled, "true")
}

// verifiedNode is a Node as MarkVerified leaves it with a ready verdict.
func verifiedNode(name string) *clustertest.NodeBuilder {
	return enabledNode(name).Label(cluster.LabelStatus, "verified").Label(cluster.LabelReady, "true")
}

// failedNode is a Node as MarkFailed leaves it.
func failedNode(name string) *clustertest.NodeBuilder {
	return enabledNode(name).
		Label(cluster.LabelStatus, string(cluster.StatusAttestationFailed)).
		Annotation(cluster.AnnotationCordonedBy, cluster.DefaultName).
		Unschedulable().
		Taint(cluster.TaintUntrusted, "", corev1.TaintEffectNoSchedule).
		Condition(cluster.ConditionTrustedAttestation, corev1.ConditionFalse, cluster.ReasonAttestationFailed)
}

// failedUnknown is a failed Node whose verdict turned unknown: still
// failed, cordoned and tainted.
var failedUnknown = nodeWant{status: "attestation-failed", unschedulable: true, cordonedByUs: true, taint: true,
	condition: corev1.ConditionUnknown, reason: cluster.ReasonVerifierUnreachable}

// nodeCase is a Node as it is before an operation and as it must be after.
type nodeCase struct {
	name string
	node func(name string) *clustertest.NodeBuilder
	want nodeWant
}

// createNode creates the test's own Node from build and returns its name
// and the package under test.
func createNode(t *testing.T, cs kubernetes.Interface, build func(name string) *clustertest.NodeBuilder) (string, *cluster.Nodes) {
	t.Helper()
	name := uniqueName(t, "n")
	build(name).Create(t, cs)
	return name, newNodes(t, cs)
}

func getNode(t *testing.T, cs kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key && t.Effect == effect })
}

// checkNode reports every way the Node differs from what is wanted.
type nodeWant struct {
	status        string // LabelStatus; "-" for absent
	ready         bool
	unschedulable bool
	cordonedByUs  bool
	taint         bool
	condition     corev1.ConditionStatus
	reason        string
}

func checkNode(t *testing.T, n *corev1.Node, want nodeWant) {
	t.Helper()
	status, ok := n.Labels[cluster.LabelStatus]
	if !ok {
		status = "-"
	}
	if status != want.status {
		t.Errorf("label %s = %q, want %q", cluster.LabelStatus, status, want.status)
	}
	if got := n.Labels[cluster.LabelReady] == "true"; got != want.ready {
		t.Errorf("label %s = %q, want ready %v", cluster.LabelReady, n.Labels[cluster.LabelReady], want.ready)
	}
	if _, ok := n.Labels[cluster.LabelReady]; ok && !want.ready {
		t.Errorf("label %s present (%q), want it removed", cluster.LabelReady, n.Labels[cluster.LabelReady])
	}
	if n.Spec.Unschedulable != want.unschedulable {
		t.Errorf("spec.unschedulable = %v, want %v", n.Spec.Unschedulable, want.unschedulable)
	}
	if got := n.Annotations[cluster.AnnotationCordonedBy] != ""; got != want.cordonedByUs {
		t.Errorf("annotation %s = %q, want present %v", cluster.AnnotationCordonedBy, n.Annotations[cluster.AnnotationCordonedBy], want.cordonedByUs)
	}
	if got := hasTaint(n, cluster.TaintUntrusted, corev1.TaintEffectNoSchedule); got != want.taint {
		t.Errorf("taint %s:NoSchedule present %v, want %v (taints %v)", cluster.TaintUntrusted, got, want.taint, n.Spec.Taints)
	}
	c := cluster.TrustCondition(n)
	switch {
	case c == nil && want.condition != "":
		t.Errorf("no %s condition, want %s/%s", cluster.ConditionTrustedAttestation, want.condition, want.reason)
	case c != nil && (c.Status != want.condition || c.Reason != want.reason):
		t.Errorf("condition %s = %s/%s (%q), want %s/%s", c.Type, c.Status, c.Reason, c.Message, want.condition, want.reason)
	}
}
