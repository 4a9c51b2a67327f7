package manager

import (
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

// A node with root rewrites the host it claims (its own host-id
// annotation, which its identity may write) again and again, on the real
// API server. Each change used to make the manager attest the new claim at
// once: a verifier call or more and an Event each, as fast as the node
// writes. After ClaimBurst changes the claims now wait for the node's next
// turn, which still comes, and no later than its schedule; the other nodes
// are untouched.
func TestANodeChangingItsClaimAgainAndAgainIsAttestedOnceATurn(t *testing.T) {
	const flipper, other = "mgr-flipper", "mgr-steady"
	k := newKubeEnv(t, "mgr-claims", map[string]string{flipper: hostID(21), other: hostID(22)})
	k.tick()
	k.want(t, flipper, cluster.StatusVerified, true, false)
	k.want(t, other, cluster.StatusVerified, true, false)
	asFlipper := clustertest.AsNode(t, flipper)
	claim := func(i int) {
		t.Helper()
		host := hostID(21)
		if i%2 == 0 {
			host = hostID(23) // a host nobody has registered
		}
		if err := clustertest.PatchNode(asFlipper, flipper, meta("annotations", map[string]any{cluster.AnnotationHostID: host})); err != nil {
			t.Fatalf("node annotates itself: %v", err)
		}
		k.tick()
	}

	// The node's start took one turn of its burst.
	before := k.v.count("")
	for i := range ClaimBurst - 1 {
		claim(i)
	}
	burst := k.v.count("") - before
	if burst == 0 {
		t.Fatal("the node's first changes of its claim made no verifier call; the test measures nothing")
	}
	k.want(t, flipper, cluster.StatusVerified, true, false) // back on its own host
	// The first change past the burst is put off, and the verdict, about
	// the host claimed before, goes at once: a node that spent its burst
	// and then tampered with itself while it changed its claim kept ready
	// until the new claim's turn, the tamper's report going to the host it
	// no longer claimed.
	claim(ClaimBurst - 1)
	k.want(t, flipper, cluster.StatusUnknown, false, false)
	if c := k.node(t, flipper).Status.Conditions; len(c) == 0 || c[0].Reason != cluster.ReasonHostClaimChanged {
		t.Fatalf("conditions %+v, want reason %s", c, cluster.ReasonHostClaimChanged)
	}
	const flood = 20
	for i := ClaimBurst; i < ClaimBurst+flood-1; i++ {
		claim(i)
	}
	claim(1) // and last its own host again
	if extra := k.v.count("") - before - burst; extra != 0 {
		t.Fatalf("%d changes of the claim after the burst made %d verifier calls in no time, want none before the node's next turn", flood, extra)
	}
	k.want(t, other, cluster.StatusVerified, true, false)

	// The node's last claim is attested at its next turn.
	atTurn := k.v.count("")
	k.advance(ClaimInterval)
	if k.v.count("") == atTurn {
		t.Fatalf("no verifier call %s after the flood of claims: the last claim was never attested", ClaimInterval)
	}
	// It claims its own host last: Verified again.
	k.want(t, flipper, cluster.StatusVerified, true, false)
}

// The same node drops and sets its own trustedcompute.io/enabled label
// again and again: each set made it new to the manager, attested at once.
// It shares the budget of its claims.
func TestANodeReEnablingItselfAgainAndAgainIsAttestedOnceATurn(t *testing.T) {
	const toggler = "mgr-toggler"
	k := newKubeEnv(t, "mgr-enable", map[string]string{toggler: hostID(31)})
	k.tick()
	k.want(t, toggler, cluster.StatusVerified, true, false)
	asToggler := clustertest.AsNode(t, toggler)
	set := func(v any) {
		t.Helper()
		if err := clustertest.PatchNode(asToggler, toggler, meta("labels", map[string]any{cluster.LabelEnabled: v})); err != nil {
			t.Fatalf("node sets its enabled label to %v: %v", v, err)
		}
		k.tick()
	}
	// Each set makes it new to the manager; its start took one turn.
	before := k.v.count("")
	for range ClaimBurst - 1 {
		set(nil)
		set("true")
	}
	if k.v.count("") == before {
		t.Fatal("re-enabling the node made no verifier call; the test measures nothing")
	}
	afterBurst := k.v.count("")
	for range 10 {
		set(nil)
		set("true")
	}
	if extra := k.v.count("") - afterBurst; extra != 0 {
		t.Fatalf("10 more re-enables in no time made %d verifier calls, want none before the node's next turn", extra)
	}
	k.advance(ClaimInterval)
	if k.v.count("") == afterBurst {
		t.Fatalf("no verifier call %s after the re-enables: the node was never attested again", ClaimInterval)
	}
	k.want(t, toggler, cluster.StatusVerified, true, false)
}
