package hvs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Root on a node claims another host's hardware UUID in its host info.
// The claim must neither change the host's UUID (which binds flavors and
// finds the host for a report by hardware UUID) nor pass.
func TestANodeCannotRebindItselfToAnotherHardwareUUID(t *testing.T) {
	e, n := newBaselinedEnv(t)
	wantTrusted(t, mustReport(t, e, n.id))
	host := func() store.Host {
		t.Helper()
		h, err := e.st.HostByID(t.Context(), n.id)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if got := host().HardwareUUID; got != n.uuid {
		t.Fatalf("the first report stored hardware UUID %q, want the node's %q", got, n.uuid)
	}

	// The agent reads the UUID it reports, and binds it into the quote,
	// from a file root on the node can write.
	claim := func(uuid string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(n.root.Dir, sandbox.UUIDPath), []byte(uuid+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const other = "0f0e0d0c-0b0a-0908-0706-050403020100"
	claim(other)
	r := mustReport(t, e, n.id)
	wantUntrusted(t, r, nil, FaultHardwareUUIDChanged)
	if r.HostInfo.HardwareUUID != n.uuid {
		t.Errorf("the report names hardware UUID %q, want the host's %q", r.HostInfo.HardwareUUID, n.uuid)
	}
	if got := host().HardwareUUID; got != n.uuid {
		t.Errorf("the claim rebound the host to hardware UUID %q", got)
	}
	if hs, err := e.st.ListHosts(t.Context(), store.HostFilter{HardwareUUID: other}); err != nil || len(hs) != 0 {
		t.Errorf("hosts with the claimed UUID = %v, %v; want none", hs, err)
	}
	var ee *EvidenceError
	if _, err := e.svc.FlavorsFromHost(t.Context(), n.id, DefaultRebaselineParts(), nil); !errors.As(err, &ee) ||
		!slices.ContainsFunc(ee.Faults, func(f appraise.Fault) bool { return f.Name == FaultHardwareUUIDChanged }) {
		t.Errorf("FlavorsFromHost with a changed claim = %v, want an *EvidenceError with %s", err, FaultHardwareUUIDChanged)
	}

	// The same UUID in other letters is the same UUID.
	claim(strings.ToUpper(n.uuid))
	wantTrusted(t, mustReport(t, e, n.id))
	claim(n.uuid)
	wantTrusted(t, mustReport(t, e, n.id))
}
