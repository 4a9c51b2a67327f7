package hvs

import (
	"encoding/json"
	"testing"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/store"
)

// The attack on the verified-flavor cache: once a host's flavors are
// cached, whoever can write the database rewrites the IMA flavor under
// its ID and signature to list a file the node now measures. The report
// must verify the new bytes, and fail them.
func TestAStoredFlavorRewrittenUnderItsIDIsVerifiedAgain(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	wantTrusted(t, mustReport(t, e, n.id))
	wantTrusted(t, mustReport(t, e, n.id)) // the flavors come from the cache

	fs, err := e.st.ListFlavors(t.Context(), store.FlavorFilter{HostID: n.id, Parts: []string{string(flavor.PartIMA)}})
	if err != nil || len(fs) != 1 {
		t.Fatalf("IMA flavors of the host: %d, %v", len(fs), err)
	}
	row := fs[0]
	var sf flavor.SignedFlavor
	if err := json.Unmarshal(row.Signed, &sf); err != nil {
		t.Fatal(err)
	}
	sf.Flavor.IMALogs.ImaMeasurements = append(sf.Flavor.IMALogs.ImaMeasurements,
		flavor.IMAMeasurement{File: "/usr/bin/evil", Measurement: sf.Flavor.IMALogs.ImaMeasurements[0].Measurement})
	if row.Signed, err = json.Marshal(sf); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteFlavor(t.Context(), row.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateFlavor(t.Context(), row); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, mustReport(t, e, n.id), []string{"IMA"}, "IMA:"+flavor.FaultFlavorSignatureInvalid)
}
