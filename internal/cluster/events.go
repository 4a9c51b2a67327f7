package cluster

import (
	"context"
	"fmt"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationReport is set on the Events this package records with the id of
// the trust report they are about, so tools can link an Event to its report
// without parsing the note.
const AnnotationReport = "trustedcompute.io/report"

// noteLimit is the API server's limit on an Event note, in bytes.
const noteLimit = 1024

// event is an Event to record on a Node.
type event struct {
	typ, reason, action, note, reportID string
}

// recordEvent writes an events.k8s.io/v1 Event about node. Events about
// cluster-scoped objects live in the default namespace, as kubectl expects.
func (n *Nodes) recordEvent(ctx context.Context, node *corev1.Node, e *event) error {
	note := e.note
	if note == "" {
		note = e.reason
	}
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: node.Name + ".trust-",
			Namespace:    metav1.NamespaceDefault,
		},
		EventTime:           metav1.NewMicroTime(n.now()),
		ReportingController: n.name,
		ReportingInstance:   n.instance,
		Action:              e.action,
		Reason:              e.reason,
		Regarding: corev1.ObjectReference{
			APIVersion: "v1",
			Kind:       "Node",
			Name:       node.Name,
			UID:        node.UID,
		},
		Note: truncate(note, noteLimit),
		Type: e.typ,
	}
	if e.reportID != "" {
		ev.Annotations = map[string]string{AnnotationReport: e.reportID}
	}
	if _, err := n.cs.EventsV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{FieldManager: n.name}); err != nil {
		return fmt.Errorf("record event %s: %w", e.reason, err)
	}
	return nil
}

// truncate cuts s to at most limit bytes without splitting a character.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "..."
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
