package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Log field keys.
const (
	keyNode      = "node"
	keyReport    = "report"
	keyStatus    = "status"
	keyReason    = "reason"
	keyPod       = "pod"
	keyCordoned  = "cordoned"
	keyEvicted   = "evicted"
	keyBlocked   = "blocked"
	keyOperation = "operation"
)

// Options configure Nodes. The zero value is usable.
type Options struct {
	// Logger receives one line per change made; nil discards.
	Logger *slog.Logger
	// Name is the field manager of every patch, the reporting controller
	// of Events and the value of AnnotationCordonedBy. Default DefaultName.
	Name string
	// Instance is the Events' reporting instance (the manager's pod name).
	// Default: the host name.
	Instance string
	// Now is the clock for condition and Event times. Default time.Now.
	Now func() time.Time
}

// Nodes acts on Kubernetes Nodes. It is built from a client-go clientset,
// not a controller-runtime client: every read goes to the API server rather
// than an informer cache, so the "is this already done?" checks that make
// each method idempotent see the Node as it is now. Events are written
// synchronously through events.k8s.io/v1 (not an asynchronous recorder), so
// a failure to record one is returned to the caller.
//
// Nodes is safe for concurrent use.
type Nodes struct {
	cs       kubernetes.Interface
	log      *slog.Logger
	name     string
	instance string
	now      func() time.Time
}

// New returns Nodes acting through cs.
func New(cs kubernetes.Interface, opts Options) *Nodes {
	n := &Nodes{cs: cs, log: opts.Logger, name: opts.Name, instance: opts.Instance, now: opts.Now}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.name = cmp.Or(n.name, DefaultName)
	if n.instance == "" {
		n.instance, _ = os.Hostname()
		if n.instance == "" {
			n.instance = "unknown"
		}
	}
	if n.now == nil {
		n.now = time.Now
	}
	return n
}

// EnabledNodes lists the Nodes labelled LabelEnabled=true, by name.
func (n *Nodes) EnabledNodes(ctx context.Context) ([]NodeInfo, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelEnabled: "true"}).String()
	var out []NodeInfo
	opts := metav1.ListOptions{LabelSelector: sel, Limit: 500}
	for {
		list, err := n.cs.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list enabled nodes: %w", err)
		}
		for i := range list.Items {
			out = append(out, infoOf(&list.Items[i]))
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ClearDisabled removes the verdict labels (LabelReady, LabelStatus) from
// every Node that carries them but not LabelEnabled=true, and returns their
// names. A node may remove LabelEnabled from itself; without this it would
// leave Trusted Compute still labelled ready, a verdict nobody renews.
func (n *Nodes) ClearDisabled(ctx context.Context) ([]string, error) {
	var cleared []string
	for _, key := range []string{LabelReady, LabelStatus} {
		sel := key + "," + LabelEnabled + "!=true"
		list, err := n.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return cleared, fmt.Errorf("list disabled nodes with %s: %w", key, err)
		}
		for i := range list.Items {
			node := &list.Items[i]
			body, err := json.Marshal(map[string]any{"metadata": map[string]any{
				"labels": map[string]any{LabelReady: nil, LabelStatus: nil},
			}})
			if err != nil {
				return cleared, fmt.Errorf("encode patch: %w", err)
			}
			if _, err := n.cs.CoreV1().Nodes().Patch(ctx, node.Name, types.StrategicMergePatchType, body,
				metav1.PatchOptions{FieldManager: n.name}); err != nil && !apierrors.IsNotFound(err) {
				return cleared, fmt.Errorf("clear verdict of disabled node %s: %w", node.Name, err)
			}
			n.log.InfoContext(ctx, "verdict labels removed from a node not enabled", keyNode, node.Name)
			cleared = append(cleared, node.Name)
		}
	}
	return cleared, nil
}

// Get describes one Node, enabled or not (see NodeInfo.Enabled). A missing
// Node is ErrNodeNotFound.
func (n *Nodes) Get(ctx context.Context, name string) (NodeInfo, error) {
	node, err := n.get(ctx, name)
	if err != nil {
		return NodeInfo{}, err
	}
	return infoOf(node), nil
}

func (n *Nodes) get(ctx context.Context, name string) (*corev1.Node, error) {
	if name == "" {
		return nil, fmt.Errorf("get node: %w: empty name", ErrNodeNotFound)
	}
	node, err := n.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get node %s: %w", name, ErrNodeNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", name, err)
	}
	return node, nil
}

// getEnabled is get that refuses Nodes not selected for Trusted Compute.
func (n *Nodes) getEnabled(ctx context.Context, name string) (*corev1.Node, error) {
	node, err := n.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if node.Labels[LabelEnabled] != "true" {
		return nil, fmt.Errorf("node %s: %w (label %s=true missing)", name, ErrNotEnabled, LabelEnabled)
	}
	return node, nil
}

func infoOf(node *corev1.Node) NodeInfo {
	hostID := node.Annotations[AnnotationHostID]
	if strings.TrimSpace(hostID) == "" {
		hostID = node.Status.NodeInfo.SystemUUID
	}
	status := Status(node.Labels[LabelStatus])
	if status == "" {
		status = StatusPending
	}
	return NodeInfo{
		Name:         node.Name,
		HostID:       strings.ToLower(strings.TrimSpace(hostID)),
		Enabled:      node.Labels[LabelEnabled] == "true",
		Status:       status,
		Ready:        node.Labels[LabelReady] == "true",
		Cordoned:     node.Spec.Unschedulable,
		Tainted:      slices.ContainsFunc(node.Spec.Taints, isOurTaint),
		CordonedByUs: node.Annotations[AnnotationCordonedBy] != "",
		LastReport:   node.Annotations[AnnotationLastReport],
	}
}

// MarkVerified records a passing attestation: LabelStatus=verified,
// LabelReady=true when ready (Secure Boot and full-disk encryption on) and
// removed otherwise, AnnotationLastReport, condition TrustedAttestation=True.
// It neither uncordons nor removes the taint: only Onboarded does. A Normal
// Event "Verified" is recorded when the condition turns True.
func (n *Nodes) MarkVerified(ctx context.Context, node string, ready bool, reportID, message string) error {
	_, err := n.apply(ctx, node, "verified", func(cur *corev1.Node) (change, error) {
		var c change
		c.setLabel(cur, LabelStatus, string(StatusVerified))
		c.setReady(cur, ready)
		c.setAnnotation(cur, AnnotationLastReport, reportID)
		c.setCondition(cur, corev1.ConditionTrue, ReasonVerified, message, n.now())
		if had := TrustCondition(cur); c.condition != nil && (had == nil || had.Status != corev1.ConditionTrue) {
			c.event = &event{typ: corev1.EventTypeNormal, reason: ReasonVerified, action: "Attest",
				note: EventNote(message, "", reportID), reportID: reportID}
		}
		return c, nil
	})
	return err
}

// MarkFailed records a failed attestation (status StatusAttestationFailed or
// StatusSecureBootDisabled). It cordons the Node by patching
// spec.unschedulable (and sets AnnotationCordonedBy, unless the Node was
// already unschedulable: an operator's cordon is not claimed), adds the
// TaintUntrusted NoSchedule taint keeping the others, sets LabelStatus,
// removes LabelReady, sets AnnotationLastReport and condition
// TrustedAttestation=False, and records a Warning Event naming the failed
// parts and the report id.
//
// changed is false when the Node already said all this: then nothing is
// patched and no Event is recorded, so repeating a call, for instance after a
// manager restart, neither cordons twice nor records a second Event.
func (n *Nodes) MarkFailed(ctx context.Context, node string, status Status, parts []string, reportID, message string) (changed bool, err error) {
	reason, ok := failureReason(status)
	if !ok {
		return false, fmt.Errorf("mark node %s failed: %w: %q", node, ErrBadStatus, status)
	}
	return n.apply(ctx, node, "failed", func(cur *corev1.Node) (change, error) {
		var c change
		if !cur.Spec.Unschedulable {
			c.setUnschedulable(true)
			c.setAnnotation(cur, AnnotationCordonedBy, n.name)
		}
		c.addTaint(cur)
		c.setLabel(cur, LabelStatus, string(status))
		c.setReady(cur, false)
		c.setAnnotation(cur, AnnotationLastReport, reportID)
		c.setCondition(cur, corev1.ConditionFalse, reason, ConditionMessage(message, parts), n.now())
		if c.any() {
			c.event = &event{typ: corev1.EventTypeWarning, reason: reason, action: "Cordon",
				note: EventNote(message, strings.Join(parts, ", "), reportID), reportID: reportID}
		}
		return c, nil
	})
}

// Onboarded finishes a re-onboarding after a passing attestation: it removes
// the TaintUntrusted taint, uncordons the Node if (and only if)
// AnnotationCordonedBy says this package cordoned it, removes
// AnnotationCordonedBy (and the ignored legacy AnnotationOnboard), sets
// LabelStatus=verified,
// LabelReady as for MarkVerified, condition TrustedAttestation=True, and
// records a Normal Event "Onboarded".
func (n *Nodes) Onboarded(ctx context.Context, node string, ready bool, reportID string) error {
	_, err := n.apply(ctx, node, "onboarded", func(cur *corev1.Node) (change, error) {
		var c change
		uncordon := cur.Annotations[AnnotationCordonedBy] != ""
		if uncordon && cur.Spec.Unschedulable {
			c.setUnschedulable(false)
		}
		c.removeAnnotation(cur, AnnotationCordonedBy)
		c.removeAnnotation(cur, AnnotationOnboard)
		c.removeTaint(cur)
		c.setLabel(cur, LabelStatus, string(StatusVerified))
		c.setReady(cur, ready)
		c.setAnnotation(cur, AnnotationLastReport, reportID)
		msg := "re-onboarded after a passing attestation"
		c.setCondition(cur, corev1.ConditionTrue, ReasonVerified, msg, n.now())
		if c.any() {
			note := msg
			switch {
			case uncordon && cur.Spec.Unschedulable:
				note += "; uncordoned"
			case cur.Spec.Unschedulable:
				note += "; left cordoned: the cordon was not set by " + n.name
			}
			c.event = &event{typ: corev1.EventTypeNormal, reason: ReasonOnboarded, action: "Onboard",
				note: EventNote(note, "", reportID), reportID: reportID}
		}
		return c, nil
	})
	return err
}

// Withdraw takes back a verdict that can no longer stand, without cordoning:
// the evidence is older than the manager's maxEvidenceAge (reason
// ReasonVerifierUnreachable), or the Node's host claim was refused
// (ReasonHostClaimRefused) or changed faster than it is attested
// (ReasonHostClaimChanged). It removes LabelReady, turns LabelStatus
// verified or pending into StatusUnknown (a failure status stays, and so do
// its cordon and taint), sets condition TrustedAttestation=Unknown with the
// reason and message, and records a Warning Event when anything changed.
func (n *Nodes) Withdraw(ctx context.Context, node, reason, message string) (changed bool, err error) {
	if reason == "" {
		return false, fmt.Errorf("withdraw verdict of node %s: empty reason", node)
	}
	return n.apply(ctx, node, "withdrawn", func(cur *corev1.Node) (change, error) {
		var c change
		c.setReady(cur, false)
		switch Status(cur.Labels[LabelStatus]) {
		case StatusVerified, StatusPending, "":
			c.setLabel(cur, LabelStatus, string(StatusUnknown))
		}
		c.setCondition(cur, corev1.ConditionUnknown, reason, message, n.now())
		if c.any() {
			c.event = &event{typ: corev1.EventTypeWarning, reason: reason, action: "Withdraw", note: message}
		}
		return c, nil
	})
}

// Pending records that no attestation result can be had now (reason such as
// ReasonVerifierUnreachable): condition TrustedAttestation=Unknown and a
// Warning Event saying why. LabelStatus is left as it is, except that a Node
// without one gets StatusPending; Pending never makes a Node Verified, nor
// does it lift or set a cordon.
func (n *Nodes) Pending(ctx context.Context, node, reason, message string) error {
	if reason == "" {
		return fmt.Errorf("mark node %s pending: empty reason", node)
	}
	_, err := n.apply(ctx, node, "pending", func(cur *corev1.Node) (change, error) {
		var c change
		if cur.Labels[LabelStatus] == "" {
			c.setLabel(cur, LabelStatus, string(StatusPending))
		}
		c.setCondition(cur, corev1.ConditionUnknown, reason, message, n.now())
		if c.any() {
			c.event = &event{typ: corev1.EventTypeWarning, reason: reason, action: "Attest", note: message}
		}
		return c, nil
	})
	return err
}

// FlavorsReplaced records a Warning Event (ReasonGoldenFlavorsReplaced)
// that the node's golden flavors were replaced by the measurements of a
// boot that differed from them, as reportID says; message names what
// differed. It changes nothing on the Node.
func (n *Nodes) FlavorsReplaced(ctx context.Context, node, reportID, message string) error {
	cur, err := n.getEnabled(ctx, node)
	if err != nil {
		return err
	}
	return n.recordEvent(ctx, cur, &event{typ: corev1.EventTypeWarning, reason: ReasonGoldenFlavorsReplaced,
		action: "Rebaseline", note: message, reportID: reportID})
}

// apply reads the Node, asks plan what to change and writes it: first the
// Node (labels, annotations, spec) by one strategic-merge patch, then the
// Event, then the condition by a patch of the status subresource. The
// Event precedes the condition so that a crash in between repeats the Event
// rather than losing it. A conflict (the taint list changed under us)
// restarts from the read.
func (n *Nodes) apply(ctx context.Context, name, op string, plan func(*corev1.Node) (change, error)) (bool, error) {
	var (
		cur *corev1.Node
		c   change
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		if cur, err = n.getEnabled(ctx, name); err != nil {
			return err
		}
		if c, err = plan(cur); err != nil {
			return err
		}
		if !c.nodePatch() {
			return nil
		}
		body, err := json.Marshal(c.patchBody(cur.ResourceVersion))
		if err != nil {
			return fmt.Errorf("encode patch: %w", err)
		}
		patched, err := n.cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, body,
			metav1.PatchOptions{FieldManager: n.name})
		if err != nil {
			return err
		}
		cur = patched
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mark node %s %s: %w", name, op, err)
	}
	if !c.any() {
		return false, nil
	}
	if c.event != nil {
		if err := n.recordEvent(ctx, cur, c.event); err != nil {
			return true, fmt.Errorf("mark node %s %s: %w", name, op, err)
		}
	}
	if c.condition != nil {
		body, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{*c.condition}}})
		if err != nil {
			return true, fmt.Errorf("mark node %s %s: encode condition: %w", name, op, err)
		}
		if _, err := n.cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, body,
			metav1.PatchOptions{FieldManager: n.name}, "status"); err != nil {
			return true, fmt.Errorf("mark node %s %s: patch condition: %w", name, op, err)
		}
	}
	n.log.InfoContext(ctx, "node updated", keyNode, name, keyOperation, op,
		keyStatus, cur.Labels[LabelStatus], keyCordoned, cur.Spec.Unschedulable)
	return true, nil
}

// change is what an operation writes to one Node. Only fields that differ
// from the current Node are recorded, so an empty change means "already so".
type change struct {
	labels        map[string]*string // nil value: remove
	annotations   map[string]*string
	unschedulable *bool
	taints        []corev1.Taint // the whole new list, when taintsSet
	taintsSet     bool
	condition     *corev1.NodeCondition
	event         *event
}

func (c *change) any() bool { return c.nodePatch() || c.condition != nil }

func (c *change) nodePatch() bool {
	return len(c.labels) > 0 || len(c.annotations) > 0 || c.unschedulable != nil || c.taintsSet
}

func (c *change) setLabel(cur *corev1.Node, key, value string) {
	if v, ok := cur.Labels[key]; !ok || v != value {
		c.labels = setKey(c.labels, key, &value)
	}
}

func (c *change) setReady(cur *corev1.Node, ready bool) {
	if ready {
		c.setLabel(cur, LabelReady, "true")
	} else if _, ok := cur.Labels[LabelReady]; ok {
		c.labels = setKey(c.labels, LabelReady, nil)
	}
}

func (c *change) setAnnotation(cur *corev1.Node, key, value string) {
	if value == "" {
		return
	}
	if v, ok := cur.Annotations[key]; !ok || v != value {
		c.annotations = setKey(c.annotations, key, &value)
	}
}

func (c *change) removeAnnotation(cur *corev1.Node, key string) {
	if _, ok := cur.Annotations[key]; ok {
		c.annotations = setKey(c.annotations, key, nil)
	}
}

func (c *change) setUnschedulable(v bool) { c.unschedulable = &v }

func isOurTaint(t corev1.Taint) bool {
	return t.Key == TaintUntrusted && t.Effect == corev1.TaintEffectNoSchedule
}

func (c *change) addTaint(cur *corev1.Node) {
	if slices.ContainsFunc(cur.Spec.Taints, isOurTaint) {
		return
	}
	c.taints = append(slices.Clone(cur.Spec.Taints), corev1.Taint{Key: TaintUntrusted, Effect: corev1.TaintEffectNoSchedule})
	c.taintsSet = true
}

func (c *change) removeTaint(cur *corev1.Node) {
	if !slices.ContainsFunc(cur.Spec.Taints, isOurTaint) {
		return
	}
	c.taints = slices.DeleteFunc(slices.Clone(cur.Spec.Taints), isOurTaint)
	if c.taints == nil {
		c.taints = []corev1.Taint{}
	}
	c.taintsSet = true
}

// setCondition records the TrustedAttestation condition unless the Node
// already has it with the same status, reason and message. The transition
// time moves only when the status does.
func (c *change) setCondition(cur *corev1.Node, status corev1.ConditionStatus, reason, message string, now time.Time) {
	nowT := metav1.NewTime(now)
	want := corev1.NodeCondition{
		Type: ConditionTrustedAttestation, Status: status, Reason: reason, Message: message,
		LastHeartbeatTime: nowT, LastTransitionTime: nowT,
	}
	if have := TrustCondition(cur); have != nil {
		if have.Status == status && have.Reason == reason && have.Message == message {
			return
		}
		if have.Status == status {
			want.LastTransitionTime = have.LastTransitionTime
		}
	}
	c.condition = &want
}

// TrustCondition is the Node's TrustedAttestation condition, or nil.
func TrustCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == ConditionTrustedAttestation {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// patchBody is the strategic-merge patch for the Node. The taint list is
// replaced as a whole by a strategic merge, so when it changes the patch
// carries the resourceVersion it was computed from: a concurrent change to
// the Node then fails the patch with a conflict instead of being lost.
func (c *change) patchBody(resourceVersion string) map[string]any {
	meta := map[string]any{}
	if len(c.labels) > 0 {
		meta["labels"] = c.labels
	}
	if len(c.annotations) > 0 {
		meta["annotations"] = c.annotations
	}
	spec := map[string]any{}
	if c.unschedulable != nil {
		spec["unschedulable"] = *c.unschedulable
	}
	if c.taintsSet {
		spec["taints"] = c.taints
		meta["resourceVersion"] = resourceVersion
	}
	body := map[string]any{}
	if len(meta) > 0 {
		body["metadata"] = meta
	}
	if len(spec) > 0 {
		body["spec"] = spec
	}
	return body
}

func setKey(m map[string]*string, key string, v *string) map[string]*string {
	if m == nil {
		m = map[string]*string{}
	}
	m[key] = v
	return m
}

// ConditionMessage is the TrustedAttestation condition message of a failure:
// the message, then the failed parts.
func ConditionMessage(message string, parts []string) string {
	if len(parts) == 0 {
		return message
	}
	p := "failed: " + strings.Join(parts, ", ")
	if message == "" {
		return p
	}
	return message + " (" + p + ")"
}

// EventNote is the note of an Event about a verdict: the message, the failed
// parts, the report id.
func EventNote(message, parts, reportID string) string {
	var b []string
	if message != "" {
		b = append(b, message)
	}
	if parts != "" {
		b = append(b, "failed: "+parts)
	}
	if reportID != "" {
		b = append(b, "report "+reportID)
	}
	return strings.Join(b, "; ")
}
