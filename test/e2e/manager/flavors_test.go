package manager_test

import (
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/manager"
)

// TestAReportMadeBeforeTheHostsFlavorsIsNotActedOn plays, against the real
// verifier, the race the replicas failover test found (docs/scaling.md):
// the verifier attests a newly registered host before it has flavors (its
// refresh, or an agent event), that report is the latest when the manager
// first reads the node, and the operator imported the flavors meanwhile
// (goldenFlavors provided). The node must not fail on a report that never
// met its flavors; a host that truly has none must still fail, on a report
// made after that one.
func TestAReportMadeBeforeTheHostsFlavorsIsNotActedOn(t *testing.T) {
	for name, flavors := range map[string]bool{
		"flavors imported after the verifier's first report: the node is Verified": true,
		"no flavors at all: the node fails on a fresh report":                      false,
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, manager.Provided)
			hc := w.mgrDeps.Verifier.(manager.HVSVerifier).Client
			ctx := t.Context()
			if _, err := hc.RegisterHost(ctx, w.nodeName, hostID); err != nil {
				t.Fatal(err)
			}
			early, err := hc.CreateReport(ctx, hostID)
			if err != nil {
				t.Fatal(err)
			}
			if early.Trusted() || !slices.Equal(early.FailedParts(), []string{"OS", "PLATFORM"}) || len(early.Faults) > 0 {
				t.Fatalf("the report before any flavor: trusted %v, failed parts %v, faults %+v; want OS and PLATFORM missing only",
					early.Trusted(), early.FailedParts(), early.Faults)
			}
			if flavors {
				// As the operator's import of the host's flavors does.
				if err := hc.Rebaseline(ctx, hostID, manager.BaselineParts); err != nil {
					t.Fatal(err)
				}
			}
			if latest, err := hc.LatestReport(ctx, hostID); err != nil || latest.ID != early.ID {
				t.Fatalf("the latest report is not the one made before the flavors (%v): the race is not played", err)
			}

			n := w.attest(t)
			if flavors {
				mustVerified(t, n, true)
			} else {
				mustCordoned(t, n, "attestation-failed")
			}
			if got := n.Annotations[cluster.AnnotationLastReport]; got == early.ID || got == "" {
				t.Fatalf("the node names report %q; want one made after %s", got, early.ID)
			}
			if flavors {
				if ev := w.events(t, cluster.ReasonAttestationFailed); len(ev) != 0 {
					t.Fatalf("failure events %q, want none", ev)
				}
				return
			}
			if ev := w.events(t, cluster.ReasonAttestationFailed); len(ev) != 1 || !strings.Contains(ev[0], "OS, PLATFORM") {
				t.Fatalf("failure events %q, want one naming OS and PLATFORM", ev)
			}
		})
	}
}
