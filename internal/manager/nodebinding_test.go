package manager

import (
	"errors"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/flavor"
)

// Root on a node that is new to Trusted Compute (its name bound to no host
// yet) claims the host of another new machine (its own annotation) before
// that machine's Node is enabled: the first registration binds a host to
// the first node name that claims it. The other machine's agent answered
// the quotes, so the node was judged by that machine's healthy evidence:
// Verified and ready, whatever ran on it. The agent's host facts, bound to
// its quotes, name the Node it runs on, and a report for another Node is
// now refused.
func TestANodeClaimingAHostWhoseAgentRunsOnAnotherNodeIsRefused(t *testing.T) {
	const evil, newcomer, honest = "mgr-claimer", "mgr-newcomer", "mgr-honest"
	k := newKubeEnv(t, "mgr-binding", map[string]string{evil: hostID(62), honest: hostID(63)})
	k.v.set(hostID(62), func(h *simHost) { h.agentNode = newcomer })
	k.v.set(hostID(63), func(h *simHost) { h.agentNode = honest })
	k.tick()
	k.want(t, honest, cluster.StatusVerified, true, false)
	k.want(t, evil, cluster.StatusUnknown, false, false)
	c := k.node(t, evil).Status.Conditions
	if len(c) == 0 || c[0].Reason != cluster.ReasonHostClaimRefused || !strings.Contains(c[0].Message, `runs on node "`+newcomer+`"`) {
		t.Fatalf("conditions %+v, want reason %s naming node %s", c, cluster.ReasonHostClaimRefused, newcomer)
	}
	for _, m := range k.sink.all() {
		if strings.HasPrefix(m, hostID(62)) {
			t.Fatalf("the EIM was told about the claimed host: %q", m)
		}
	}
	// The other machine's golden flavors are not this node's to set.
	if n := k.v.rebaselines[hostID(62)]; n != 0 {
		t.Fatalf("the claim re-baselined the other machine's host %d times", n)
	}
	// Still refused at its next turns.
	k.advance(DefaultPollDuration)
	k.want(t, evil, cluster.StatusUnknown, false, false)
	k.want(t, honest, cluster.StatusVerified, true, false)
}

func TestNodeBindingPolicies(t *testing.T) {
	on := func(node string, trusted bool) *reportBuilder {
		b := newReport(hostID(1))
		b.r.HostInfo.NodeName = node
		if !trusted {
			b.failPart(flavor.PartIMA)
		}
		return b
	}
	tests := []struct {
		policy  NodeBindingPolicy
		agent   string
		trusted bool
		ok      bool
	}{
		{NodeBindingReported, "edge-1", true, true},
		{NodeBindingReported, "", true, true},
		{NodeBindingReported, "edge-2", true, false},
		{NodeBindingReported, "edge-2", false, false},
		{NodeBindingReported, "Edge-1", true, false},
		{NodeBindingRequired, "edge-1", true, true},
		{NodeBindingRequired, "", true, false},
		// An agent that does not answer sends no facts: its report fails
		// the node, as it must.
		{NodeBindingRequired, "", false, true},
		{NodeBindingRequired, "edge-2", true, false},
		{NodeBindingRequired, "edge-2", false, false},
	}
	for _, tt := range tests {
		err := tt.policy.boundTo(on(tt.agent, tt.trusted).build(), "edge-1")
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrHostClaimed)) {
			t.Errorf("%s, agent on %q, trusted %v, node edge-1: %v, want ok %v (refusals wrap ErrHostClaimed)", tt.policy, tt.agent, tt.trusted, err, tt.ok)
		}
	}
	if err := NodeBindingPolicy("strict").validate(); err == nil {
		t.Error(`node binding "strict" validates`)
	}
}
