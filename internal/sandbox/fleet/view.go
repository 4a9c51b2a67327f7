package fleet

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"trustedcompute.io/tc/internal/cluster"
)

// NodeRow is one node as the views show it, read from its Node object.
type NodeRow struct {
	// Number is the node's number (node 1 first), as the keys take it.
	Number     int       `json:"number"`
	Node       string    `json:"node"`
	Status     string    `json:"status"`
	Cordoned   bool      `json:"cordoned"`
	Tainted    bool      `json:"tainted"`
	Ready      bool      `json:"ready"`
	LastReport string    `json:"last_report"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message"`
	Since      time.Time `json:"since"`
}

// Event is an Event the Kubernetes adapter recorded on a sandbox node.
type Event struct {
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Type     string    `json:"type"` // Normal or Warning
	Reason   string    `json:"reason"`
	Note     string    `json:"note"`
	ReportID string    `json:"report_id,omitempty"`
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %s: %s", e.Node, e.Type, e.Reason, e.Note)
}

// statusTitle is the product's wording of a status.
func statusTitle(s cluster.Status) string {
	switch s {
	case cluster.StatusVerified:
		return "Verified"
	case cluster.StatusAttestationFailed:
		return "Attestation Failed"
	case cluster.StatusSecureBootDisabled:
		return "Secure Boot Disabled"
	case cluster.StatusUnknown:
		return "Unknown"
	}
	return "Pending"
}

// statusOrder is the order the summaries count the statuses in.
var statusOrder = []cluster.Status{cluster.StatusVerified, cluster.StatusAttestationFailed,
	cluster.StatusSecureBootDisabled, cluster.StatusUnknown, cluster.StatusPending}

// Rows describes every sandbox node as its Node object says, node 1
// first, from one list of the Nodes.
func (f *Fleet) Rows(ctx context.Context) ([]NodeRow, error) {
	list, err := f.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	byName := make(map[string]*corev1.Node, len(list.Items))
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	rows := make([]NodeRow, 0, len(f.nodes))
	for i, m := range f.nodes {
		name, _ := m.id()
		node, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("node %s: %w", name, cluster.ErrNodeNotFound)
		}
		in := cluster.InfoOf(node)
		row := NodeRow{Number: i + 1, Node: name, Status: statusTitle(in.Status), Cordoned: in.Cordoned, Tainted: in.Tainted,
			Ready: in.Ready, LastReport: in.LastReport}
		if c := cluster.TrustCondition(node); c != nil {
			row.Reason, row.Message, row.Since = c.Reason, c.Message, c.LastTransitionTime.Time
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// StatusCount is how many nodes have a status.
type StatusCount struct {
	Status string
	Count  int
}

// summarize counts rows per status, in statusOrder, leaving out the
// statuses no node has.
func summarize(rows []NodeRow) []StatusCount {
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Status]++
	}
	var out []StatusCount
	for _, s := range statusOrder {
		if c := counts[statusTitle(s)]; c > 0 {
			out = append(out, StatusCount{statusTitle(s), c})
		}
	}
	return out
}

// summaryLine is the counts in a sentence: "10000 nodes: 9998 Verified, 2
// Attestation Failed (2 cordoned)".
func summaryLine(rows []NodeRow) string {
	parts := make([]string, 0, len(statusOrder))
	for _, c := range summarize(rows) {
		parts = append(parts, fmt.Sprintf("%d %s", c.Count, c.Status))
	}
	cordoned := 0
	for _, r := range rows {
		if r.Cordoned {
			cordoned++
		}
	}
	return fmt.Sprintf("%d nodes: %s (%d cordoned)", len(rows), strings.Join(parts, ", "), cordoned)
}

// attentionFirst is at most limit rows: those not Verified first, then the
// Verified ones, each in node order.
func attentionFirst(rows []NodeRow, limit int) []NodeRow {
	out := make([]NodeRow, 0, min(limit, len(rows)))
	for _, verified := range []bool{false, true} {
		for _, r := range rows {
			if len(out) == limit {
				return out
			}
			if (r.Status == statusTitle(cluster.StatusVerified)) == verified {
				out = append(out, r)
			}
		}
	}
	return out
}

// viewRows is how many nodes the terminal view lists; a larger fleet is
// summarised, the nodes that need attention listed first.
const viewRows = 20

// Events returns the Events the Kubernetes adapter recorded on the sandbox's
// nodes (on node only, when set), oldest first.
func (f *Fleet) Events(ctx context.Context, node string) ([]Event, error) {
	list, err := f.kube.EventsV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	var out []Event
	for _, e := range list.Items {
		name := e.Regarding.Name
		if e.Regarding.Kind != "Node" || e.ReportingController != cluster.DefaultName || (node != "" && name != node) {
			continue
		}
		if _, err := f.node(name); err != nil {
			continue // another Node of a real cluster
		}
		out = append(out, Event{Time: e.EventTime.Time, Node: name, Type: e.Type, Reason: e.Reason, Note: e.Note,
			ReportID: e.Annotations[cluster.AnnotationReport]})
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// renderTable writes the node table (a summary and the nodes that need
// attention, for a large fleet) and the last Events.
func (f *Fleet) renderTable(ctx context.Context, w io.Writer, now time.Time) {
	rows, err := f.Rows(ctx)
	if err != nil {
		_, _ = fmt.Fprintf(w, "reading the nodes: %v\n", err)
		return
	}
	shown := rows
	if len(rows) > viewRows {
		shown = attentionFirst(rows, viewRows)
		_, _ = fmt.Fprintf(w, "%s\nthe %d listed: those not Verified first (the web page pages through all)\n\n", summaryLine(rows), len(shown))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "#\tNODE\tSTATUS\tSCHEDULING\tREADY\tLAST REPORT\tSTATUS SINCE\tREASON")
	for _, row := range shown {
		since := "-"
		if !row.Since.IsZero() {
			since = now.Sub(row.Since).Round(time.Second).String() + " ago"
		}
		last := "-"
		if row.LastReport != "" {
			last = short(row.LastReport)
			if t, ok := reportTime(row.LastReport); ok {
				last += " (" + now.Sub(t).Round(time.Second).String() + " ago)"
			}
		}
		_, _ = fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", row.Number, row.Node, row.Status, row.Scheduling(), row.Ready, last, since, row.Why())
	}
	_ = tw.Flush()
	events, _ := f.Events(ctx, "")
	if len(events) > 8 {
		events = events[len(events)-8:]
	}
	_, _ = fmt.Fprintln(w, "\nlast events of the attestation manager on the Nodes:")
	for _, e := range events {
		_, _ = fmt.Fprintf(w, "  %s  %s\n", e.Time.Format("15:04:05"), e)
	}
}

// Scheduling says whether the node takes new workloads: schedulable or
// cordoned, and tainted.
func (r NodeRow) Scheduling() string {
	sched := "schedulable"
	if r.Cordoned {
		sched = "cordoned"
	}
	if r.Tainted {
		sched += "+tainted"
	}
	return sched
}

// Why is the condition's reason and message.
func (r NodeRow) Why() string {
	if r.Message != "" {
		return r.Reason + ": " + r.Message
	}
	return r.Reason
}

// signature changes when a node's state or the Events change, not with
// every new report, so that a non-terminal view prints only real changes.
func (f *Fleet) signature(ctx context.Context) string {
	var b strings.Builder
	rows, _ := f.Rows(ctx)
	for _, row := range rows {
		fmt.Fprintf(&b, "%s %s %v %v %v %s %s\n", row.Node, row.Status, row.Cordoned, row.Tainted, row.Ready, row.Reason, row.Message)
	}
	events, _ := f.Events(ctx, "")
	fmt.Fprintf(&b, "%d", len(events))
	return b.String()
}

// reportTime is the creation time of a report, from its UUIDv7 id.
func reportTime(id string) (time.Time, bool) {
	hexMS := strings.ReplaceAll(id, "-", "")
	if len(hexMS) != 32 || hexMS[12] != '7' {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(hexMS[:12], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// untrustedTaint is the failed node's taint, as kubectl shows it.
const untrustedTaint = cluster.TaintUntrusted + ":NoSchedule"

// condition is the node's TrustedAttestation condition (empty when it has
// none).
func (f *Fleet) condition(ctx context.Context, node string) (corev1.NodeCondition, error) {
	n, err := f.kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return corev1.NodeCondition{}, fmt.Errorf("get node %s: %w", node, err)
	}
	if c := cluster.TrustCondition(n); c != nil {
		return *c, nil
	}
	return corev1.NodeCondition{}, nil
}
