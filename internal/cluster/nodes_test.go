package cluster_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

func TestMarkVerified(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	tests := []struct {
		name  string
		node  func(name string) *clustertest.NodeBuilder
		ready bool
		want  nodeWant
	}{
		{
			name:  "a new node with secure boot and disk encryption becomes verified and ready",
			node:  enabledNode,
			ready: true,
			want:  nodeWant{status: "verified", ready: true, condition: corev1.ConditionTrue, reason: cluster.ReasonVerified},
		},
		{
			name:  "a ready node without secure boot or disk encryption loses the ready label",
			node:  verifiedNode,
			ready: false,
			want:  nodeWant{status: "verified", condition: corev1.ConditionTrue, reason: cluster.ReasonVerified},
		},
		{
			name:  "a failed node stays cordoned and tainted, since only onboarding lifts that",
			node:  failedNode,
			ready: true,
			want: nodeWant{status: "verified", ready: true, unschedulable: true, cordonedByUs: true, taint: true,
				condition: corev1.ConditionTrue, reason: cluster.ReasonVerified},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, nodes := createNode(t, cs, tt.node)
			if err := nodes.MarkVerified(context.Background(), name, tt.ready, "report-1", "all checks passed"); err != nil {
				t.Fatalf("MarkVerified: %v", err)
			}
			n := getNode(t, cs, name)
			checkNode(t, n, tt.want)
			if got := n.Annotations[cluster.AnnotationLastReport]; got != "report-1" {
				t.Errorf("annotation %s = %q, want report-1", cluster.AnnotationLastReport, got)
			}
			if c := cluster.TrustCondition(n); c != nil && c.Message != "all checks passed" {
				t.Errorf("condition message = %q, want %q", c.Message, "all checks passed")
			}
		})
	}
}

func TestMarkFailed(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	tests := []struct {
		name       string
		status     cluster.Status
		parts      []string
		wantReason string
	}{
		{
			name:       "an attestation failure cordons, taints and records which part failed",
			status:     cluster.StatusAttestationFailed,
			parts:      []string{"pcr-7", "ima-log"},
			wantReason: cluster.ReasonAttestationFailed,
		},
		{
			name:       "secure boot off cordons, taints and says so",
			status:     cluster.StatusSecureBootDisabled,
			parts:      []string{"secure-boot"},
			wantReason: cluster.ReasonSecureBootDisabled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			name := uniqueName(t, "n")
			verifiedNode(name).
				Taint("example.com/dedicated", "edge", corev1.TaintEffectNoSchedule).
				Create(t, cs)

			changed, err := newNodes(t, cs).MarkFailed(ctx, name, tt.status, tt.parts, "report-42", "quote did not match")
			if err != nil {
				t.Fatalf("MarkFailed: %v", err)
			}
			if !changed {
				t.Error("MarkFailed reported no change on a verified node")
			}

			n := getNode(t, cs, name)
			checkNode(t, n, nodeWant{status: string(tt.status), unschedulable: true, cordonedByUs: true, taint: true,
				condition: corev1.ConditionFalse, reason: tt.wantReason})
			if !hasTaint(n, "example.com/dedicated", corev1.TaintEffectNoSchedule) {
				t.Errorf("the node's other taint is gone: %v", n.Spec.Taints)
			}
			if got := n.Annotations[cluster.AnnotationLastReport]; got != "report-42" {
				t.Errorf("annotation %s = %q, want report-42", cluster.AnnotationLastReport, got)
			}
			if c := cluster.TrustCondition(n); c != nil && !strings.Contains(c.Message, "quote did not match") {
				t.Errorf("condition message %q does not carry the caller's message", c.Message)
			}

			events := clustertest.NodeEvents(t, cs, name)
			if len(events) != 1 {
				t.Fatalf("%d events about the node, want 1: %+v", len(events), events)
			}
			e := events[0]
			if e.Type != corev1.EventTypeWarning || e.Reason != tt.wantReason {
				t.Errorf("event %s/%s, want Warning/%s", e.Type, e.Reason, tt.wantReason)
			}
			for _, want := range append([]string{"report-42"}, tt.parts...) {
				if !strings.Contains(e.Note, want) {
					t.Errorf("event note %q does not name %q", e.Note, want)
				}
			}
			if got := e.Annotations[cluster.AnnotationReport]; got != "report-42" {
				t.Errorf("event annotation %s = %q, want report-42", cluster.AnnotationReport, got)
			}
			if e.Regarding.UID != n.UID {
				t.Errorf("event regards uid %s, want the node's %s", e.Regarding.UID, n.UID)
			}
		})
	}
}

// raceTransport lets another client change the Node between our read and our
// first patch, and records every request method.
type raceTransport struct {
	node  string
	race  func()
	mu    sync.Mutex
	once  sync.Once
	calls []string
}

// wrap is a rest.Config WrapTransport.
func (rt *raceTransport) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		rt.observe(req)
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (rt *raceTransport) observe(req *http.Request) {
	rt.mu.Lock()
	rt.calls = append(rt.calls, req.Method+" "+req.URL.Path)
	rt.mu.Unlock()
	if req.Method == http.MethodPatch && req.URL.Path == "/api/v1/nodes/"+rt.node {
		rt.once.Do(rt.race)
	}
}

func (rt *raceTransport) count(prefix string) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for _, c := range rt.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func TestMarkFailedPatchesAndKeepsWhatOthersWroteMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := clustertest.Clientset(t)
	name := uniqueName(t, "n")
	enabledNode(name).Taint("example.com/dedicated", "edge", corev1.TaintEffectNoSchedule).Create(t, admin)

	// Between MarkFailed's read and its first patch, another client adds a
	// label and a taint.
	other := func() {
		patch := `[{"op":"add","path":"/metadata/labels/example.com~1owner","value":"team-a"},` +
			`{"op":"add","path":"/spec/taints/-","value":{"key":"example.com/gpu","effect":"NoSchedule"}}]`
		if _, err := admin.CoreV1().Nodes().Patch(ctx, name, types.JSONPatchType, []byte(patch),
			metav1.PatchOptions{FieldManager: "someone-else"}); err != nil {
			t.Errorf("concurrent patch: %v", err)
		}
	}
	cfg := clustertest.Start(t)
	rt := &raceTransport{node: name, race: other}
	cfg.WrapTransport = rt.wrap
	cs := clustertest.NewClientset(t, cfg)

	if _, err := newNodes(t, cs).MarkFailed(ctx, name, cluster.StatusAttestationFailed, []string{"pcr-0"}, "r-1", ""); err != nil {
		t.Fatalf("MarkFailed: %v", err)
	}

	if got := rt.count("PATCH /api/v1/nodes/" + name); got < 2 {
		t.Errorf("%d node patches, want a conflict and a retry (the race did not happen?)", got)
	}
	if got := rt.count("PUT "); got != 0 {
		t.Errorf("%d PUT requests, want none: %v", got, rt.calls)
	}
	n := getNode(t, admin, name)
	checkNode(t, n, nodeWant{status: "attestation-failed", unschedulable: true, cordonedByUs: true, taint: true,
		condition: corev1.ConditionFalse, reason: cluster.ReasonAttestationFailed})
	if n.Labels["example.com/owner"] != "team-a" {
		t.Errorf("the concurrently added label is gone: %v", n.Labels)
	}
	for _, key := range []string{"example.com/dedicated", "example.com/gpu"} {
		if !hasTaint(n, key, corev1.TaintEffectNoSchedule) {
			t.Errorf("taint %s is gone: %v", key, n.Spec.Taints)
		}
	}
	var ownsUnschedulable bool
	for _, mf := range n.ManagedFields {
		if mf.Manager == cluster.DefaultName && mf.Subresource == "" && mf.FieldsV1 != nil &&
			strings.Contains(mf.FieldsV1.GetRawString(), `"f:unschedulable"`) {
			ownsUnschedulable = true
		}
		if mf.Manager == "someone-else" && !strings.Contains(mf.FieldsV1.GetRawString(), `"f:example.com/owner"`) {
			t.Errorf("someone-else no longer owns its label: %s", mf.FieldsV1.GetRawString())
		}
	}
	if !ownsUnschedulable {
		t.Errorf("managedFields do not show %s owning spec.unschedulable: %+v", cluster.DefaultName, n.ManagedFields)
	}
}

func TestMarkFailedTwiceChangesNothingTheSecondTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := clustertest.Clientset(t)
	name := uniqueName(t, "n")
	enabledNode(name).Label(cluster.LabelStatus, "verified").Create(t, cs)

	changed, err := newNodes(t, cs).MarkFailed(ctx, name, cluster.StatusSecureBootDisabled, []string{"secure-boot"}, "r-7", "secure boot is off")
	if err != nil || !changed {
		t.Fatalf("first MarkFailed = %v, %v; want true, nil", changed, err)
	}
	before := getNode(t, cs, name)

	// A manager that restarted has no memory: a new Nodes.
	changed, err = newNodes(t, cs).MarkFailed(ctx, name, cluster.StatusSecureBootDisabled, []string{"secure-boot"}, "r-7", "secure boot is off")
	if err != nil {
		t.Fatalf("second MarkFailed: %v", err)
	}
	if changed {
		t.Error("second MarkFailed with the same state reported a change")
	}
	after := getNode(t, cs, name)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("node resourceVersion moved %s -> %s: something was patched", before.ResourceVersion, after.ResourceVersion)
	}
	if events := clustertest.NodeEvents(t, cs, name); len(events) != 1 {
		t.Errorf("%d events, want 1", len(events))
	}

	// A new report with the same verdict is news: recorded once more.
	changed, err = newNodes(t, cs).MarkFailed(ctx, name, cluster.StatusSecureBootDisabled, []string{"secure-boot"}, "r-8", "secure boot is off")
	if err != nil || !changed {
		t.Fatalf("MarkFailed with a new report = %v, %v; want true, nil", changed, err)
	}
	if events := clustertest.NodeEvents(t, cs, name); len(events) != 2 {
		t.Errorf("%d events after a new report, want 2", len(events))
	}
	n := getNode(t, cs, name)
	if n.Annotations[cluster.AnnotationCordonedBy] == "" || !n.Spec.Unschedulable {
		t.Errorf("node lost its cordon: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
}

func TestMarkFailedFinishesWhatARestartedManagerLeftHalfDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := clustertest.Clientset(t)
	name := uniqueName(t, "n")
	// Cordoned and annotated, but the taint, labels and condition never
	// made it.
	enabledNode(name).Unschedulable().Annotation(cluster.AnnotationCordonedBy, cluster.DefaultName).Create(t, cs)

	changed, err := newNodes(t, cs).MarkFailed(ctx, name, cluster.StatusAttestationFailed, []string{"pcr-4"}, "r-9", "")
	if err != nil || !changed {
		t.Fatalf("MarkFailed = %v, %v; want true, nil", changed, err)
	}
	checkNode(t, getNode(t, cs, name), nodeWant{status: "attestation-failed", unschedulable: true, cordonedByUs: true, taint: true,
		condition: corev1.ConditionFalse, reason: cluster.ReasonAttestationFailed})
	if events := clustertest.NodeEvents(t, cs, name); len(events) != 1 {
		t.Errorf("%d events, want 1", len(events))
	}
}

func TestOnboarded(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	tests := []struct {
		name string
		// operatorCordon: the node was cordoned by an operator before it
		// failed.
		operatorCordon bool
		want           nodeWant
		wantNote       string
	}{
		{
			name:     "a node we cordoned is uncordoned and untainted",
			want:     nodeWant{status: "verified", ready: true, condition: corev1.ConditionTrue, reason: cluster.ReasonVerified},
			wantNote: "uncordoned",
		},
		{
			name:           "a node an operator cordoned stays cordoned but loses our taint",
			operatorCordon: true,
			want:           nodeWant{status: "verified", ready: true, unschedulable: true, condition: corev1.ConditionTrue, reason: cluster.ReasonVerified},
			wantNote:       "left cordoned",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			name := uniqueName(t, "n")
			b := enabledNode(name).Label(cluster.LabelStatus, "verified").Taint("example.com/dedicated", "edge", corev1.TaintEffectNoSchedule)
			if tt.operatorCordon {
				b.Unschedulable()
			}
			b.Create(t, cs)
			nodes := newNodes(t, cs)
			if _, err := nodes.MarkFailed(ctx, name, cluster.StatusAttestationFailed, []string{"pcr-0"}, "r-1", ""); err != nil {
				t.Fatalf("MarkFailed: %v", err)
			}
			// The operator asks for re-onboarding.
			ns := uniqueName(t, "ns")
			clustertest.Namespace(t, cs, ns)
			requests := cluster.NewOnboardRequests(cs, ns, "tcctl")
			if err := requests.Request(ctx, name, time.Now()); err != nil {
				t.Fatalf("Request: %v", err)
			}
			if got, err := requests.List(ctx); err != nil || got[name] == "" {
				t.Fatalf("List = %v, %v; want a request of %s", got, err, name)
			}

			if err := nodes.Onboarded(ctx, name, true, "r-2"); err != nil {
				t.Fatalf("Onboarded: %v", err)
			}

			if err := requests.Done(ctx, name); err != nil {
				t.Fatalf("Done: %v", err)
			}
			if got, err := requests.List(ctx); err != nil || len(got) != 0 {
				t.Fatalf("List after Done = %v, %v; want none", got, err)
			}

			n := getNode(t, cs, name)
			checkNode(t, n, tt.want)
			if !hasTaint(n, "example.com/dedicated", corev1.TaintEffectNoSchedule) {
				t.Errorf("the node's other taint is gone: %v", n.Spec.Taints)
			}
			events := clustertest.NodeEvents(t, cs, name)
			if len(events) != 2 {
				t.Fatalf("%d events, want 2 (failed, onboarded)", len(events))
			}
			if e := events[1]; e.Type != corev1.EventTypeNormal || e.Reason != cluster.ReasonOnboarded ||
				!strings.Contains(e.Note, "r-2") || !strings.Contains(e.Note, tt.wantNote) {
				t.Errorf("last event %s/%s %q, want Normal/%s naming r-2 and %q", e.Type, e.Reason, e.Note, cluster.ReasonOnboarded, tt.wantNote)
			}

			// Done is done: again changes nothing.
			rv := n.ResourceVersion
			if err := nodes.Onboarded(ctx, name, true, "r-2"); err != nil {
				t.Fatalf("second Onboarded: %v", err)
			}
			if n := getNode(t, cs, name); n.ResourceVersion != rv {
				t.Errorf("second Onboarded patched the node")
			}
		})
	}
}

func TestPendingNeverVerifies(t *testing.T) {
	t.Parallel()
	cs := clustertest.Clientset(t)
	tests := []nodeCase{
		{
			name: "a new node becomes pending with an unknown condition",
			node: enabledNode,
			want: nodeWant{status: "pending", condition: corev1.ConditionUnknown, reason: cluster.ReasonVerifierUnreachable},
		},
		{
			name: "a verified node keeps its status and ready label but the condition turns unknown",
			node: func(name string) *clustertest.NodeBuilder {
				return verifiedNode(name).Condition(cluster.ConditionTrustedAttestation, corev1.ConditionTrue, cluster.ReasonVerified)
			},
			want: nodeWant{status: "verified", ready: true, condition: corev1.ConditionUnknown, reason: cluster.ReasonVerifierUnreachable},
		},
		{name: "a failed node stays failed, cordoned and tainted", node: failedNode, want: failedUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			name, nodes := createNode(t, cs, tt.node)
			for range 2 {
				if err := nodes.Pending(ctx, name, cluster.ReasonVerifierUnreachable, "verifier did not answer in 30s"); err != nil {
					t.Fatalf("Pending: %v", err)
				}
			}
			checkNode(t, getNode(t, cs, name), tt.want)
			events := clustertest.NodeEvents(t, cs, name)
			if len(events) != 1 {
				t.Fatalf("%d events after Pending twice, want 1", len(events))
			}
			if e := events[0]; e.Type != corev1.EventTypeWarning || e.Reason != cluster.ReasonVerifierUnreachable ||
				!strings.Contains(e.Note, "did not answer") {
				t.Errorf("event %s/%s %q, want Warning/%s saying why", e.Type, e.Reason, e.Note, cluster.ReasonVerifierUnreachable)
			}
		})
	}
}

func TestEnabledNodesAndGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := clustertest.Clientset(t)
	byAnnotation, byUUID, disabled := uniqueName(t, "a"), uniqueName(t, "b"), uniqueName(t, "c")
	verifiedNode(byAnnotation).Annotation(cluster.AnnotationHostID, " Host-ABC ").SystemUUID("1111").Create(t, cs)
	enabledNode(byUUID).SystemUUID("4C4C4544-0042-3510-8052-B7C04F4E3132").Unschedulable().Create(t, cs)
	clustertest.Node(disabled).SystemUUID("2222").Create(t, cs)

	nodes := newNodes(t, cs)
	all, err := nodes.EnabledNodes(ctx)
	if err != nil {
		t.Fatalf("EnabledNodes: %v", err)
	}
	got := map[string]cluster.NodeInfo{}
	for _, i := range all {
		got[i.Name] = i
	}
	want := map[string]cluster.NodeInfo{
		byAnnotation: {Name: byAnnotation, HostID: "host-abc", Enabled: true, Status: cluster.StatusVerified, Ready: true},
		byUUID:       {Name: byUUID, HostID: "4c4c4544-0042-3510-8052-b7c04f4e3132", Enabled: true, Status: cluster.StatusPending, Cordoned: true},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("EnabledNodes entry %s = %+v, want %+v", name, got[name], w)
		}
	}
	if _, ok := got[disabled]; ok {
		t.Errorf("EnabledNodes lists %s, which is not enabled", disabled)
	}

	info, err := nodes.Get(ctx, disabled)
	if err != nil || info.Enabled || info.HostID != "2222" {
		t.Errorf("Get(%s) = %+v, %v; want not enabled, host id 2222", disabled, info, err)
	}
	if _, err := nodes.Get(ctx, "no-such-node"); !errors.Is(err, cluster.ErrNodeNotFound) {
		t.Errorf("Get(no-such-node) error = %v, want ErrNodeNotFound", err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := clustertest.Clientset(t)
	disabled := uniqueName(t, "n")
	clustertest.Node(disabled).Create(t, cs)
	enabled := uniqueName(t, "n")
	enabledNode(enabled).Create(t, cs)
	nodes := newNodes(t, cs)

	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"a node not enabled for trusted compute is not cordoned", func() error {
			_, err := nodes.MarkFailed(ctx, disabled, cluster.StatusAttestationFailed, nil, "r", "")
			return err
		}, cluster.ErrNotEnabled},
		{"a node not enabled for trusted compute is not labelled verified", func() error {
			return nodes.MarkVerified(ctx, disabled, true, "r", "")
		}, cluster.ErrNotEnabled},
		{"pods of a node not enabled for trusted compute are not evicted", func() error {
			_, err := nodes.Evict(ctx, disabled, []string{"default"})
			return err
		}, cluster.ErrNotEnabled},
		{"a missing node is reported as such", func() error {
			return nodes.Onboarded(ctx, "no-such-node", true, "r")
		}, cluster.ErrNodeNotFound},
		{"verified is not a failure status", func() error {
			_, err := nodes.MarkFailed(ctx, enabled, cluster.StatusVerified, nil, "r", "")
			return err
		}, cluster.ErrBadStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	for _, name := range []string{disabled, enabled} {
		n := getNode(t, cs, name)
		if n.Spec.Unschedulable || hasTaint(n, cluster.TaintUntrusted, corev1.TaintEffectNoSchedule) || n.Labels[cluster.LabelStatus] != "" || cluster.TrustCondition(n) != nil {
			t.Errorf("refused node %s was changed: %+v", name, n)
		}
		if ev := clustertest.NodeEvents(t, cs, name); len(ev) != 0 {
			t.Errorf("refused node %s got %d events", name, len(ev))
		}
	}
}
