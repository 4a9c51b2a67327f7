package clustertest

import (
	"context"
	"slices"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

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
