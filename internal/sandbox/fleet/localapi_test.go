package fleet

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"trustedcompute.io/tc/internal/cluster"
)

// TestTheLocalAPIServesTheKubernetesAdapterAsAnAPIServerDoes runs the
// product's adapter (internal/cluster) on the sandbox's local Kubernetes API
// and checks what the Node objects and Events say: the cases the sandbox's
// former node registry was tested with, now of the real adapter.
func TestTheLocalAPIServesTheKubernetesAdapterAsAnAPIServerDoes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		steps func(n *cluster.Nodes, r *cluster.OnboardRequests) error
		check func(t *testing.T, api localAPI)
	}{
		{
			name: "a failed node is cordoned, tainted, unlabelled ready and gets a Warning event",
			steps: func(n *cluster.Nodes, _ *cluster.OnboardRequests) error {
				if err := n.MarkVerified(ctx, "n1", true, "r1", "ok"); err != nil {
					return err
				}
				_, err := n.MarkFailed(ctx, "n1", cluster.StatusAttestationFailed, []string{"IMA"}, "r2", "attestation failed")
				return err
			},
			check: func(t *testing.T, api localAPI) {
				node := get(t, api, "n1")
				info := cluster.InfoOf(node)
				if !info.Cordoned || !info.CordonedByUs || !info.Tainted || info.Ready || info.Status != cluster.StatusAttestationFailed || info.LastReport != "r2" {
					t.Errorf("node %+v", info)
				}
				c := cluster.TrustCondition(node)
				if c == nil || c.Status != corev1.ConditionFalse || c.Reason != cluster.ReasonAttestationFailed || c.Message != "attestation failed (failed: IMA)" {
					t.Errorf("condition %+v", c)
				}
				ev := eventsOf(t, api, "n1")
				if len(ev) != 2 || ev[1].Type != "Warning" || ev[1].Note != "attestation failed; failed: IMA; report r2" || ev[1].ReportID != "r2" {
					t.Errorf("events %+v", ev)
				}
			},
		},
		{
			name: "marking a node failed twice with the same report changes nothing",
			steps: func(n *cluster.Nodes, _ *cluster.OnboardRequests) error {
				if _, err := n.MarkFailed(ctx, "n1", cluster.StatusSecureBootDisabled, nil, "r1", "sb off"); err != nil {
					return err
				}
				changed, err := n.MarkFailed(ctx, "n1", cluster.StatusSecureBootDisabled, nil, "r1", "sb off")
				if changed {
					return errors.New("second MarkFailed changed the node")
				}
				return err
			},
			check: func(t *testing.T, api localAPI) {
				if ev := eventsOf(t, api, "n1"); len(ev) != 1 {
					t.Errorf("%d events, want 1: %+v", len(ev), ev)
				}
			},
		},
		{
			name: "a verified report does not uncordon a failed node",
			steps: func(n *cluster.Nodes, _ *cluster.OnboardRequests) error {
				if _, err := n.MarkFailed(ctx, "n1", cluster.StatusAttestationFailed, []string{"IMA"}, "r1", "x"); err != nil {
					return err
				}
				return n.MarkVerified(ctx, "n1", true, "r2", "ok")
			},
			check: func(t *testing.T, api localAPI) {
				if info := cluster.InfoOf(get(t, api, "n1")); !info.Cordoned || !info.Tainted {
					t.Errorf("node %+v: want still cordoned and tainted", info)
				}
			},
		},
		{
			name: "onboarding lifts the cordon and the taint, clears the request and records Onboarded",
			steps: func(n *cluster.Nodes, r *cluster.OnboardRequests) error {
				if _, err := n.MarkFailed(ctx, "n1", cluster.StatusAttestationFailed, []string{"IMA"}, "r1", "x"); err != nil {
					return err
				}
				if err := r.Request(ctx, "n1", testNow); err != nil {
					return err
				}
				if err := n.Onboarded(ctx, "n1", true, "r2"); err != nil {
					return err
				}
				return r.Done(ctx, "n1")
			},
			check: func(t *testing.T, api localAPI) {
				if info := cluster.InfoOf(get(t, api, "n1")); info.Cordoned || info.CordonedByUs || info.Tainted || !info.Ready {
					t.Errorf("node %+v", info)
				}
				ev := eventsOf(t, api, "n1")
				if last := ev[len(ev)-1]; last.Reason != cluster.ReasonOnboarded || last.Note != "re-onboarded after a passing attestation; uncordoned; report r2" {
					t.Errorf("last event %+v", last)
				}
				left, err := cluster.NewOnboardRequests(api, "", "").List(ctx)
				if err != nil || len(left) != 0 {
					t.Errorf("onboard requests left: %v %v", left, err)
				}
			},
		},
		{
			name: "pending neither cordons nor changes a status label",
			steps: func(n *cluster.Nodes, _ *cluster.OnboardRequests) error {
				if err := n.MarkVerified(ctx, "n1", false, "r1", "ok"); err != nil {
					return err
				}
				return n.Pending(ctx, "n1", cluster.ReasonVerifierUnreachable, "down")
			},
			check: func(t *testing.T, api localAPI) {
				node := get(t, api, "n1")
				info := cluster.InfoOf(node)
				if c := cluster.TrustCondition(node); info.Cordoned || info.Status != cluster.StatusVerified || c.Status != corev1.ConditionUnknown {
					t.Errorf("node %+v condition %+v", info, c)
				}
			},
		},
		{
			name: "a node that does not exist is not found",
			steps: func(n *cluster.Nodes, _ *cluster.OnboardRequests) error {
				if err := n.MarkVerified(ctx, "ghost", true, "r1", "ok"); !errors.Is(err, cluster.ErrNodeNotFound) {
					return errors.New("want ErrNodeNotFound, got " + errString(err))
				}
				return nil
			},
			check: func(*testing.T, localAPI) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newLocalAPI()
			for _, name := range []string{"n1", "n2"} {
				if _, err := api.CoreV1().Nodes().Create(ctx, sandboxNode(name, name, ""), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			now := testNow
			n := cluster.New(api, cluster.Options{Now: func() time.Time { now = now.Add(time.Second); return now }})
			if err := tt.steps(n, cluster.NewOnboardRequests(api, "", "")); err != nil {
				t.Fatal(err)
			}
			tt.check(t, api)
			if info := cluster.InfoOf(get(t, api, "n2")); info.Status != cluster.StatusPending || info.Cordoned || len(eventsOf(t, api, "n2")) != 0 {
				t.Errorf("bystander n2 was acted on: %+v", info)
			}
		})
	}
}

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func get(t *testing.T, api localAPI, name string) *corev1.Node {
	t.Helper()
	n, err := api.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eventsOf lists the Events about a node, oldest first.
func eventsOf(t *testing.T, api localAPI, node string) []Event {
	t.Helper()
	f := &Fleet{kube: api, byName: map[string]member{}}
	f.add(&nodeProc{name: "n1"})
	f.add(&nodeProc{name: "n2"})
	ev, err := f.Events(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clip(ev)
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
