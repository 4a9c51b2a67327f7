package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/cluster"
)

// Registry is the sandbox's stand-in for the Kubernetes Nodes: it keeps, per
// node, the labels, annotations, cordon, taints, TrustedAttestation condition
// and Events that internal/cluster.Nodes would write, and records every
// change as an Action. Its methods have the signatures and the semantics of
// cluster.Nodes (idempotent, nothing uncordons but Onboarded), so the
// attestation manager can act on either.
//
// Registry is safe for concurrent use.
type Registry struct {
	name string
	now  func() time.Time

	mu      sync.Mutex
	nodes   map[string]*regNode
	actions []Action
}

// regNode is one node as the Kubernetes API would hold it.
type regNode struct {
	labels        map[string]string
	annotations   map[string]string
	unschedulable bool
	taints        []string // "key:Effect"
	cond          *Condition
}

// Condition is the TrustedAttestation condition of a node.
type Condition struct {
	Status             string // True, False, Unknown
	Reason, Message    string
	LastTransitionTime time.Time
}

// Action kinds a Registry records.
const (
	ActionLabel      = "label"
	ActionAnnotation = "annotation"
	ActionCordon     = "cordon"
	ActionUncordon   = "uncordon"
	ActionTaint      = "taint"
	ActionUntaint    = "untaint"
	ActionCondition  = "condition"
	ActionEvent      = "event"
)

// Action is one change the Kubernetes adapter would have made.
type Action struct {
	Time time.Time
	Node string
	Kind string
	// Key and Value describe a label, annotation or taint; Value is empty
	// for a removal. For a condition, Key is its status and Value its reason.
	Key, Value string
	// Event is set for ActionEvent.
	Event *Event
}

// Event is a Kubernetes Event recorded on a node.
type Event struct {
	Type     string // Normal or Warning
	Reason   string
	Action   string
	Note     string
	ReportID string
}

func (a Action) String() string {
	switch a.Kind {
	case ActionEvent:
		return fmt.Sprintf("%s event %s %s: %s", a.Node, a.Event.Type, a.Event.Reason, a.Event.Note)
	case ActionCordon, ActionUncordon:
		return a.Node + " " + a.Kind
	}
	if a.Value == "" {
		return fmt.Sprintf("%s %s -%s", a.Node, a.Kind, a.Key)
	}
	return fmt.Sprintf("%s %s %s=%s", a.Node, a.Kind, a.Key, a.Value)
}

// NewRegistry returns an empty registry; now is its clock (nil: time.Now).
func NewRegistry(now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{name: cluster.DefaultName, now: now, nodes: map[string]*regNode{}}
}

// Add registers a node enabled for Trusted Compute whose host in the
// verifier is hostID, as an operator labels and annotates a Node.
func (r *Registry) Add(node, hostID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[node] = &regNode{
		labels:      map[string]string{cluster.LabelEnabled: "true"},
		annotations: map[string]string{cluster.AnnotationHostID: hostID},
	}
}

// RequestOnboard sets the onboard annotation, as an operator does to ask for
// re-onboarding after fixing a node.
func (r *Registry) RequestOnboard(node string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[node]
	if !ok {
		return fmt.Errorf("request onboard of %s: %w", node, cluster.ErrNodeNotFound)
	}
	r.setAnnotation(node, n, cluster.AnnotationOnboard, "true")
	return nil
}

// EnabledNodes lists the enabled nodes by name.
func (r *Registry) EnabledNodes(_ context.Context) ([]cluster.NodeInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cluster.NodeInfo
	for name, n := range r.nodes {
		if n.labels[cluster.LabelEnabled] == "true" {
			out = append(out, infoOf(name, n))
		}
	}
	slices.SortFunc(out, func(a, b cluster.NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get describes one node; a missing one is cluster.ErrNodeNotFound.
func (r *Registry) Get(_ context.Context, name string) (cluster.NodeInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[name]
	if !ok {
		return cluster.NodeInfo{}, fmt.Errorf("get node %s: %w", name, cluster.ErrNodeNotFound)
	}
	return infoOf(name, n), nil
}

// Condition returns the node's TrustedAttestation condition, if any.
func (r *Registry) Condition(name string) (Condition, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[name]
	if !ok || n.cond == nil {
		return Condition{}, false
	}
	return *n.cond, true
}

// Taints returns the node's taints as "key:Effect".
func (r *Registry) Taints(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nodes[name]; ok {
		return slices.Clone(n.taints)
	}
	return nil
}

// Actions returns the recorded actions, oldest first; with node set, only
// that node's.
func (r *Registry) Actions(node string) []Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Action
	for _, a := range r.actions {
		if node == "" || a.Node == node {
			out = append(out, a)
		}
	}
	return out
}

// Events returns the Events recorded on node, oldest first.
func (r *Registry) Events(node string) []Event {
	var out []Event
	for _, a := range r.Actions(node) {
		if a.Kind == ActionEvent {
			out = append(out, *a.Event)
		}
	}
	return out
}

func infoOf(name string, n *regNode) cluster.NodeInfo {
	status := cluster.Status(n.labels[cluster.LabelStatus])
	if status == "" {
		status = cluster.StatusPending
	}
	return cluster.NodeInfo{
		Name:             name,
		HostID:           strings.ToLower(strings.TrimSpace(n.annotations[cluster.AnnotationHostID])),
		Enabled:          n.labels[cluster.LabelEnabled] == "true",
		Status:           status,
		Ready:            n.labels[cluster.LabelReady] == "true",
		Cordoned:         n.unschedulable,
		CordonedByUs:     n.annotations[cluster.AnnotationCordonedBy] != "",
		OnboardRequested: n.annotations[cluster.AnnotationOnboard] != "",
		LastReport:       n.annotations[cluster.AnnotationLastReport],
	}
}

// MarkVerified is cluster.Nodes.MarkVerified: status verified, ready label,
// last report, condition True, a Normal Event "Verified" when the condition
// turns True. It neither uncordons nor removes the taint.
func (r *Registry) MarkVerified(_ context.Context, node string, ready bool, reportID, message string) error {
	_, err := r.apply(node, "verified", func(n *regNode) bool {
		wasTrue := n.cond != nil && n.cond.Status == "True"
		changed := r.setLabel(node, n, cluster.LabelStatus, string(cluster.StatusVerified))
		changed = r.setReady(node, n, ready) || changed
		changed = r.setAnnotation(node, n, cluster.AnnotationLastReport, reportID) || changed
		condChanged := r.setCondition(node, n, "True", cluster.ReasonVerified, message)
		if condChanged && !wasTrue {
			r.event(node, Event{Type: "Normal", Reason: cluster.ReasonVerified, Action: "Attest", Note: cluster.EventNote(message, "", reportID), ReportID: reportID})
		}
		return changed || condChanged
	})
	return err
}

// MarkFailed is cluster.Nodes.MarkFailed: cordon (claimed unless an operator
// had cordoned), the untrusted NoSchedule taint, the status label, no ready
// label, last report, condition False and a Warning Event naming the failed
// parts. changed is false when the node already said all this.
func (r *Registry) MarkFailed(_ context.Context, node string, status cluster.Status, parts []string, reportID, message string) (bool, error) {
	var reason string
	switch status {
	case cluster.StatusAttestationFailed:
		reason = cluster.ReasonAttestationFailed
	case cluster.StatusSecureBootDisabled:
		reason = cluster.ReasonSecureBootDisabled
	default:
		return false, fmt.Errorf("mark node %s failed: %w: %q", node, cluster.ErrBadStatus, status)
	}
	return r.apply(node, "failed", func(n *regNode) bool {
		changed := false
		if !n.unschedulable {
			n.unschedulable = true
			r.record(Action{Node: node, Kind: ActionCordon})
			r.setAnnotation(node, n, cluster.AnnotationCordonedBy, r.name)
			changed = true
		}
		changed = r.addTaint(node, n) || changed
		changed = r.setLabel(node, n, cluster.LabelStatus, string(status)) || changed
		changed = r.setReady(node, n, false) || changed
		changed = r.setAnnotation(node, n, cluster.AnnotationLastReport, reportID) || changed
		changed = r.setCondition(node, n, "False", reason, cluster.ConditionMessage(message, parts)) || changed
		if changed {
			r.event(node, Event{Type: "Warning", Reason: reason, Action: "Cordon", Note: cluster.EventNote(message, strings.Join(parts, ", "), reportID), ReportID: reportID})
		}
		return changed
	})
}

// Onboarded is cluster.Nodes.Onboarded: after a passing attestation of a node
// an operator asked to re-onboard, it lifts the taint and the cordon this
// package set, removes the onboard annotation, marks the node verified and
// records a Normal Event "Onboarded".
func (r *Registry) Onboarded(_ context.Context, node string, ready bool, reportID string) error {
	_, err := r.apply(node, "onboarded", func(n *regNode) bool {
		changed := false
		uncordon := n.annotations[cluster.AnnotationCordonedBy] != ""
		wasCordoned := n.unschedulable
		if uncordon && n.unschedulable {
			n.unschedulable = false
			r.record(Action{Node: node, Kind: ActionUncordon})
			changed = true
		}
		changed = r.removeAnnotation(node, n, cluster.AnnotationCordonedBy) || changed
		changed = r.removeAnnotation(node, n, cluster.AnnotationOnboard) || changed
		changed = r.removeTaint(node, n) || changed
		changed = r.setLabel(node, n, cluster.LabelStatus, string(cluster.StatusVerified)) || changed
		changed = r.setReady(node, n, ready) || changed
		changed = r.setAnnotation(node, n, cluster.AnnotationLastReport, reportID) || changed
		msg := "re-onboarded after a passing attestation"
		changed = r.setCondition(node, n, "True", cluster.ReasonVerified, msg) || changed
		if changed {
			note := msg
			switch {
			case uncordon && wasCordoned:
				note += "; uncordoned"
			case wasCordoned:
				note += "; left cordoned: the cordon was not set by " + r.name
			}
			r.event(node, Event{Type: "Normal", Reason: cluster.ReasonOnboarded, Action: "Onboard", Note: cluster.EventNote(note, "", reportID), ReportID: reportID})
		}
		return changed
	})
	return err
}

// Pending is cluster.Nodes.Pending: condition Unknown with reason and a
// Warning Event; the status label only set when absent; no cordon change.
func (r *Registry) Pending(_ context.Context, node, reason, message string) error {
	if reason == "" {
		return fmt.Errorf("mark node %s pending: empty reason", node)
	}
	_, err := r.apply(node, "pending", func(n *regNode) bool {
		changed := false
		if n.labels[cluster.LabelStatus] == "" {
			changed = r.setLabel(node, n, cluster.LabelStatus, string(cluster.StatusPending))
		}
		changed = r.setCondition(node, n, "Unknown", reason, message) || changed
		if changed {
			r.event(node, Event{Type: "Warning", Reason: reason, Action: "Attest", Note: message})
		}
		return changed
	})
	return err
}

// apply runs plan on the enabled node under the lock.
func (r *Registry) apply(name, op string, plan func(*regNode) bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.nodes[name]
	if !ok {
		return false, fmt.Errorf("mark node %s %s: %w", name, op, cluster.ErrNodeNotFound)
	}
	if n.labels[cluster.LabelEnabled] != "true" {
		return false, fmt.Errorf("mark node %s %s: %w", name, op, cluster.ErrNotEnabled)
	}
	return plan(n), nil
}

func (r *Registry) record(a Action) {
	a.Time = r.now()
	r.actions = append(r.actions, a)
}

func (r *Registry) event(node string, e Event) {
	r.record(Action{Node: node, Kind: ActionEvent, Event: &e})
}

func (r *Registry) setLabel(node string, n *regNode, key, value string) bool {
	if v, ok := n.labels[key]; ok && v == value {
		return false
	}
	n.labels[key] = value
	r.record(Action{Node: node, Kind: ActionLabel, Key: key, Value: value})
	return true
}

func (r *Registry) setReady(node string, n *regNode, ready bool) bool {
	if ready {
		return r.setLabel(node, n, cluster.LabelReady, "true")
	}
	if _, ok := n.labels[cluster.LabelReady]; !ok {
		return false
	}
	delete(n.labels, cluster.LabelReady)
	r.record(Action{Node: node, Kind: ActionLabel, Key: cluster.LabelReady})
	return true
}

func (r *Registry) setAnnotation(node string, n *regNode, key, value string) bool {
	if value == "" {
		return false
	}
	if v, ok := n.annotations[key]; ok && v == value {
		return false
	}
	n.annotations[key] = value
	r.record(Action{Node: node, Kind: ActionAnnotation, Key: key, Value: value})
	return true
}

func (r *Registry) removeAnnotation(node string, n *regNode, key string) bool {
	if _, ok := n.annotations[key]; !ok {
		return false
	}
	delete(n.annotations, key)
	r.record(Action{Node: node, Kind: ActionAnnotation, Key: key})
	return true
}

const untrustedTaint = cluster.TaintUntrusted + ":NoSchedule"

func (r *Registry) addTaint(node string, n *regNode) bool {
	if slices.Contains(n.taints, untrustedTaint) {
		return false
	}
	n.taints = append(n.taints, untrustedTaint)
	r.record(Action{Node: node, Kind: ActionTaint, Key: cluster.TaintUntrusted, Value: "NoSchedule"})
	return true
}

func (r *Registry) removeTaint(node string, n *regNode) bool {
	if !slices.Contains(n.taints, untrustedTaint) {
		return false
	}
	n.taints = slices.DeleteFunc(n.taints, func(t string) bool { return t == untrustedTaint })
	r.record(Action{Node: node, Kind: ActionUntaint, Key: cluster.TaintUntrusted})
	return true
}

func (r *Registry) setCondition(node string, n *regNode, status, reason, message string) bool {
	if c := n.cond; c != nil && c.Status == status && c.Reason == reason && c.Message == message {
		return false
	}
	c := Condition{Status: status, Reason: reason, Message: message, LastTransitionTime: r.now()}
	if n.cond != nil && n.cond.Status == status {
		c.LastTransitionTime = n.cond.LastTransitionTime
	}
	n.cond = &c
	r.record(Action{Node: node, Kind: ActionCondition, Key: status, Value: reason})
	return true
}
