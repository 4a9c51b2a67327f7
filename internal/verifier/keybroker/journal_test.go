package keybroker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/keybroker"
)

// TestDecisionsRecordEveryReleaseAndRefusal plays a node that gets a
// secret, is then found untrusted and asks again (refused), and checks that
// the broker's journal, which the dashboard shows, holds both decisions,
// newest first. (A pushed revocation is journaled too; it needs the bus.)
func TestDecisionsRecordEveryReleaseAndRefusal(t *testing.T) {
	a := newNode(t, "node-a")
	e := newEnv(t, a)
	e.createSecret(t, "volume-key", "the volume key", restapi.SecretPolicy{HostIDs: []string{"node-a"}, BindPCRs: true})
	e.addReport(verified(t, a, "r1", time.Minute))
	if _, err := e.broker.Release(t.Context(), "node-a", "volume-key"); err != nil {
		t.Fatal(err)
	}
	bad := verified(t, a, "r2", 0)
	bad.TrustInformation.Overall = false
	e.addReport(bad)
	if _, err := e.broker.Release(t.Context(), "node-a", "volume-key"); reason(err) != keybroker.ReasonNotVerified {
		t.Fatalf("release after the tamper: %v, want refused for %s", err, keybroker.ReasonNotVerified)
	}

	got := e.broker.Decisions("node-a")
	type row struct{ outcome, reason, report string }
	var rows []row
	for _, d := range got {
		if d.HostID != "node-a" || d.Name != "volume-key" || !d.At.Equal(now) {
			t.Errorf("decision %+v: want host node-a, secret volume-key, at %v", d, now)
		}
		rows = append(rows, row{d.Outcome, d.Reason, d.ReportID})
	}
	want := []row{
		{keybroker.OutcomeRefused, keybroker.ReasonNotVerified, "r2"},
		{keybroker.OutcomeReleased, "", "r1"},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("decisions %+v, want %+v", rows, want)
	}
	if rel := got[1]; rel.SecretID == "" || rel.Version != 1 || !slices.Equal(rel.PCRs, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("the release names secret %q version %d sealed to PCRs %v, want the secret's id, version 1, PCRs 0-7", rel.SecretID, rel.Version, rel.PCRs)
	}
	if got[0].Detail == "" {
		t.Error("the refusal has no detail")
	}
	if other := e.broker.Decisions("node-b"); len(other) != 0 {
		t.Errorf("another host shows %d decisions of node-a", len(other))
	}
}

func TestDecisionsKeepTheLatestFiftyOfAHost(t *testing.T) {
	e := newEnv(t)
	for i := range 60 {
		// Unknown secrets: refused before anything else is read.
		_, _ = e.broker.Release(t.Context(), "node-a", fmt.Sprintf("secret-%02d", i))
	}
	got := e.broker.Decisions("node-a")
	if len(got) != 50 || got[0].Name != "secret-59" || got[49].Name != "secret-10" {
		var names []string
		for _, d := range got {
			names = append(names, d.Name)
		}
		t.Fatalf("kept %d decisions %v, want the latest 50, newest first", len(got), names)
	}
}
