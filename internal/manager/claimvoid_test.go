package manager

import (
	"errors"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/cluster/clustertest"
)

// A Verified and ready node rewrites the host it claims so that the new
// claim cannot be attested: it drops the claim, names an id the verifier
// refuses, or changes it while the verifier is down. Its verdict was about
// the host it claimed before, whose reports no longer reach it (a host's
// reports go to the node that claims it), so root on the node could then
// tamper with it and stay ready. The verdict now goes at once. It stayed:
// for good after a dropped claim (Pending left the labels as they were),
// and until maxEvidenceAge (two polls by default) after a refused id or
// during an outage, which the manager took for the verifier's.
func TestANodeWhoseNewClaimCannotBeAttestedLosesItsVerdictAtOnce(t *testing.T) {
	const dropper, invalid, outage, other = "mgr-dropper", "mgr-invalid", "mgr-outage", "mgr-bystander"
	k := newKubeEnv(t, "mgr-void", map[string]string{dropper: hostID(41), invalid: hostID(42), outage: hostID(43), other: hostID(44)})
	k.tick()
	for _, n := range []string{dropper, invalid, outage, other} {
		k.want(t, n, cluster.StatusVerified, true, false)
	}
	claim := func(node string, host any) {
		t.Helper()
		if err := clustertest.PatchNode(clustertest.AsNode(t, node), node, meta("annotations", map[string]any{cluster.AnnotationHostID: host})); err != nil {
			t.Fatalf("node %s annotates itself: %v", node, err)
		}
		k.tick()
	}
	wantReason := func(node, reason string) {
		t.Helper()
		if c := k.node(t, node).Status.Conditions; len(c) == 0 || c[0].Reason != reason {
			t.Fatalf("node %s conditions %+v, want reason %s", node, c, reason)
		}
	}
	// The EIM said VERIFIED for the node's host; it is told that verdict
	// is stale, once, and nothing of the host the node now claims.
	wantEIMTold := func(host string, others ...string) {
		t.Helper()
		n := 0
		for _, m := range k.sink.all() {
			if strings.HasPrefix(m, host+" FAILED Attestation stale: the node no longer claims this host") {
				n++
			}
			for _, o := range others {
				if strings.HasPrefix(m, o+" ") {
					t.Errorf("the EIM was told of %s, the host the node now claims: %q", o, m)
				}
			}
		}
		if n != 1 {
			t.Fatalf("the EIM was told %d times that the verdict of %s is stale, want once: %q", n, host, k.sink.all())
		}
	}

	t.Run("a node that drops its claim", func(t *testing.T) {
		// No annotation, and no system UUID either (the test's Nodes have
		// none; a kubelet writes its own Node's status).
		claim(dropper, nil)
		k.want(t, dropper, cluster.StatusUnknown, false, false)
		wantReason(dropper, ReasonHostIDMissing)
		k.advance(ClaimInterval)
		wantEIMTold(hostID(41))
	})

	t.Run("a node that claims an id the verifier refuses", func(t *testing.T) {
		const bad = "../4c4c4544.*"
		before := k.v.count("")
		claim(invalid, bad)
		k.want(t, invalid, cluster.StatusUnknown, false, false)
		wantReason(invalid, ReasonHostIDInvalid)
		wantEIMTold(hostID(42))
		if n := k.v.count("") - before; n != 0 {
			t.Fatalf("a claim of %q made %d verifier calls, want none: it is refused before", bad, n)
		}
	})

	t.Run("a node that changes its claim while the verifier is down", func(t *testing.T) {
		k.v.setDown(errors.New("connection refused"))
		claim(outage, hostID(45))
		k.want(t, outage, cluster.StatusUnknown, false, false)
		wantReason(outage, cluster.ReasonHostClaimChanged)
		wantEIMTold(hostID(43), hostID(45))
		// An outage alone takes nothing from a node whose evidence is
		// fresh.
		k.want(t, other, cluster.StatusVerified, true, false)
		k.v.setDown(nil)
	})

	// Each claims its own host again and is Verified at its next turn.
	claim(dropper, hostID(41))
	claim(invalid, hostID(42))
	claim(outage, hostID(43))
	k.advance(ClaimInterval)
	for _, n := range []string{dropper, invalid, outage, other} {
		k.want(t, n, cluster.StatusVerified, true, false)
	}
}
