package clustertest

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeBuilder builds a Node for a test.
type NodeBuilder struct{ node corev1.Node }

// Node starts a Node named name, with nothing set.
func Node(name string) *NodeBuilder {
	return &NodeBuilder{node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}}
}

// Label sets a label.
func (b *NodeBuilder) Label(key, value string) *NodeBuilder {
	setKey(&b.node.Labels, key, value)
	return b
}

// Annotation sets an annotation.
func (b *NodeBuilder) Annotation(key, value string) *NodeBuilder {
	setKey(&b.node.Annotations, key, value)
	return b
}

// Unschedulable cordons the Node, as an operator's kubectl cordon would.
func (b *NodeBuilder) Unschedulable() *NodeBuilder {
	b.node.Spec.Unschedulable = true
	return b
}

// Taint adds a taint.
func (b *NodeBuilder) Taint(key, value string, effect corev1.TaintEffect) *NodeBuilder {
	b.node.Spec.Taints = append(b.node.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	return b
}

// SystemUUID sets status.nodeInfo.systemUUID (a Node's status may be set on
// create).
func (b *NodeBuilder) SystemUUID(uuid string) *NodeBuilder {
	b.node.Status.NodeInfo.SystemUUID = uuid
	return b
}

// Condition adds a status condition.
func (b *NodeBuilder) Condition(typ corev1.NodeConditionType, status corev1.ConditionStatus, reason string) *NodeBuilder {
	b.node.Status.Conditions = append(b.node.Status.Conditions, corev1.NodeCondition{
		Type: typ, Status: status, Reason: reason, LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now(),
	})
	return b
}

// Build returns a copy of the Node.
func (b *NodeBuilder) Build() *corev1.Node { return b.node.DeepCopy() }

// Create creates the Node through cs and returns it as stored.
func (b *NodeBuilder) Create(t testing.TB, cs kubernetes.Interface) *corev1.Node {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Create(context.Background(), b.Build(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", b.node.Name, err)
	}
	return n
}

// PodBuilder builds a Pod for a test. There is no scheduler or kubelet in
// the test control plane: the builder binds the Pod to its Node itself and
// Create reports it Running and Ready.
type PodBuilder struct{ pod corev1.Pod }

// Pod starts a Pod with one container.
func Pod(namespace, name string) *PodBuilder {
	return &PodBuilder{pod: corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
		},
	}}
}

// OnNode binds the Pod to a Node (spec.nodeName).
func (b *PodBuilder) OnNode(node string) *PodBuilder {
	b.pod.Spec.NodeName = node
	return b
}

// Label sets a label.
func (b *PodBuilder) Label(key, value string) *PodBuilder {
	setKey(&b.pod.Labels, key, value)
	return b
}

// Annotation sets an annotation.
func (b *PodBuilder) Annotation(key, value string) *PodBuilder {
	setKey(&b.pod.Annotations, key, value)
	return b
}

// OwnedBy makes the Pod controlled by an object of kind (e.g. DaemonSet).
func (b *PodBuilder) OwnedBy(apiVersion, kind, name string) *PodBuilder {
	yes := true
	b.pod.OwnerReferences = append(b.pod.OwnerReferences, metav1.OwnerReference{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: "00000000-0000-0000-0000-000000000001", Controller: &yes,
	})
	return b
}

// Build returns a copy of the Pod.
func (b *PodBuilder) Build() *corev1.Pod { return b.pod.DeepCopy() }

// Create creates the Pod and sets its status to Running and Ready, as a
// kubelet would (PodDisruptionBudgets only guard ready pods).
func (b *PodBuilder) Create(t testing.TB, cs kubernetes.Interface) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p, err := cs.CoreV1().Pods(b.pod.Namespace).Create(ctx, b.Build(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", b.pod.Namespace, b.pod.Name, err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	p, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set pod %s/%s running: %v", b.pod.Namespace, b.pod.Name, err)
	}
	return p
}

// Namespace creates a namespace (there is no namespace controller in the
// test control plane, so it is never removed: use a fresh name per test).
func Namespace(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// setKey sets key in the map *m, making the map when there is none.
func setKey(m *map[string]string, key, value string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[key] = value
}

// NodeEvents lists the Events about the named Node, in any namespace,
// oldest first.
func NodeEvents(t testing.TB, cs kubernetes.Interface, node string) []eventsv1.Event {
	t.Helper()
	list, err := cs.EventsV1().Events(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	out := slices.DeleteFunc(list.Items, func(e eventsv1.Event) bool { return e.Regarding.Kind != "Node" || e.Regarding.Name != node })
	slices.SortStableFunc(out, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	return out
}

// EventNotes lists the notes of the Events of reason about the named Node,
// oldest first.
func EventNotes(t testing.TB, cs kubernetes.Interface, node, reason string) []string {
	t.Helper()
	var notes []string
	for _, e := range NodeEvents(t, cs, node) {
		if e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}
