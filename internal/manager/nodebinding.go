package manager

import (
	"fmt"

	"trustedcompute.io/tc/internal/verifier/report"
)

// NodeBindingPolicy says whether a host's report must name the Node its
// agent runs on before the manager acts on it for a Node.
//
// The host a Node claims is the node's own word (an annotation, or its
// system UUID). The agent's host facts, bound to its quotes, say which
// Node it runs on (the chart sets it from the Downward API). A node that
// claims the host of a machine whose agent runs on another Node, one not
// registered yet, would otherwise be judged by that machine's evidence:
// Verified and ready while it is tampered with.
type NodeBindingPolicy string

// The node binding policies.
const (
	// NodeBindingReported (the default) refuses a report whose agent names
	// another Node; a report that names none is acted on, for agents run
	// outside Kubernetes and agents older than the field.
	NodeBindingReported NodeBindingPolicy = "reported"
	// NodeBindingRequired also refuses a trusted report that names no
	// Node. An untrusted one is acted on: it can only fail the node, and
	// the report of an agent that does not answer has no host facts.
	NodeBindingRequired NodeBindingPolicy = "required"
)

func (p NodeBindingPolicy) validate() error {
	switch p {
	case NodeBindingReported, NodeBindingRequired:
		return nil
	}
	return fmt.Errorf("node binding %q: want %s or %s", p, NodeBindingReported, NodeBindingRequired)
}

// boundTo refuses r for the Node named node, wrapping ErrHostClaimed,
// unless its agent runs there, or names no Node and r is untrusted or the
// policy NodeBindingReported.
func (p NodeBindingPolicy) boundTo(r *report.Report, node string) error {
	switch on := r.HostInfo.NodeName; {
	case on == node:
		return nil
	case on != "":
		return fmt.Errorf("%w: the agent of host %s runs on node %q, not on this node (report %s)", ErrHostClaimed, r.HostID, on, r.ID)
	case p == NodeBindingRequired && r.Trusted():
		return fmt.Errorf("%w: the agent of host %s does not say which node it runs on, and nodeBinding is %s: set the agent's node_name (TC_NODE_NAME) (report %s)",
			ErrHostClaimed, r.HostID, p, r.ID)
	}
	return nil
}
