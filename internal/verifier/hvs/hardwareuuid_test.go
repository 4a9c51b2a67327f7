package hvs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	const other = "0f0e0d0c-0b0a-0908-0706-050403020100"
	claimUUID(t, n, other)
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
	claimUUID(t, n, strings.ToUpper(n.uuid))
	wantTrusted(t, mustReport(t, e, n.id))
	claimUUID(t, n, n.uuid)
	wantTrusted(t, mustReport(t, e, n.id))
}

// A node without a hardware UUID yet (registered, not reported) takes the
// one its agent claims only if no other host holds it. The attack: root on
// a new node writes a trusted host's UUID before the node's first report,
// to take that host's UUID-bound flavors and its place in lookups by UUID.
func TestANewNodeCannotTakeTheHardwareUUIDAnotherHostHolds(t *testing.T) {
	a, b := newNode(t, "edge-1"), newNode(t, "edge-2")
	e := newEnv(t, []*node{a, b})
	e.baseline(t, a)
	wantTrusted(t, mustReport(t, e, a.id))
	e.register(t, b)
	holders := func(uuid string) []string {
		t.Helper()
		hs, err := e.st.ListHosts(t.Context(), store.HostFilter{HardwareUUID: uuid})
		if err != nil {
			t.Fatal(err)
		}
		return fieldOf(hs, func(h store.Host) string { return h.ID })
	}
	wantInUse := func(err error) {
		t.Helper()
		var ee *EvidenceError
		if !errors.As(err, &ee) || !slices.ContainsFunc(ee.Faults, func(f appraise.Fault) bool { return f.Name == FaultHardwareUUIDInUse }) {
			t.Errorf("FlavorsFromHost with a taken UUID = %v, want an *EvidenceError with %s", err, FaultHardwareUUIDInUse)
		}
	}

	for _, claim := range []string{a.uuid, strings.ToUpper(a.uuid)} {
		claimUUID(t, b, claim)
		_, err := e.svc.FlavorsFromHost(t.Context(), b.id, DefaultRebaselineParts(), nil)
		wantInUse(err)
		r := mustReport(t, e, b.id)
		wantUntrusted(t, r, nil, FaultHardwareUUIDInUse)
		if r.HostInfo.HardwareUUID != "" {
			t.Errorf("the report names hardware UUID %q, want none", r.HostInfo.HardwareUUID)
		}
		if got := holders(a.uuid); !slices.Equal(got, []string{a.id}) {
			t.Errorf("hosts holding %s's UUID = %v, want only %s", a.id, got, a.id)
		}
		if h, err := e.st.HostByID(t.Context(), b.id); err != nil || h.HardwareUUID != "" {
			t.Errorf("%s holds hardware UUID %q (%v), want none", b.id, h.HardwareUUID, err)
		}
	}
	wantTrusted(t, mustReport(t, e, a.id))

	// Its own UUID it takes.
	claimUUID(t, b, b.uuid)
	if _, err := e.svc.FlavorsFromHost(t.Context(), b.id, DefaultRebaselineParts(), nil); err != nil {
		t.Fatal(err)
	}
	wantTrusted(t, mustReport(t, e, b.id))
	if got := holders(b.uuid); !slices.Equal(got, []string{b.id}) {
		t.Errorf("hosts holding %s's UUID = %v, want %s", b.id, got, b.id)
	}
}

// When an operator registered a host's EK with a hardware UUID, that UUID
// is the host's from its first report: the agent's claim of another one
// (root on the node writes it, the TPM is the registered one) is a fault
// and is not taken.
func TestAHostWithARegisteredEKHoldsTheRegisteredHardwareUUID(t *testing.T) {
	a, b := newNode(t, "edge-1"), newNode(t, "edge-2")
	e := newEnv(t, []*node{a, b})
	e.baseline(t, a)
	e.register(t, b)
	ctx := t.Context()
	ek := strings.Repeat("e1", 32)
	if err := e.st.CreateEKRegistration(ctx, store.EKRegistration{ID: "ek-b", HardwareUUID: b.uuid,
		EKPublicSHA256: ek, EKPublic: []byte("ek"), CreatedAt: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutAKEnrollment(ctx, store.AKEnrollment{HostID: b.id, AKName: []byte("ak-b"), AKPublic: []byte("ak"),
		AKCertificate: []byte("cert"), EKPublicSHA256: ek, CreatedAt: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	held := func() string {
		t.Helper()
		h, err := e.st.HostByID(ctx, b.id)
		if err != nil {
			t.Fatal(err)
		}
		return h.HardwareUUID
	}

	const unheld = "0f0e0d0c-0b0a-0908-0706-050403020100"
	for _, other := range []string{unheld, a.uuid} {
		claimUUID(t, b, other)
		var ee *EvidenceError
		if _, err := e.svc.FlavorsFromHost(ctx, b.id, DefaultRebaselineParts(), nil); !errors.As(err, &ee) ||
			!slices.ContainsFunc(ee.Faults, func(f appraise.Fault) bool { return f.Name == FaultHardwareUUIDNotRegistered }) {
			t.Errorf("FlavorsFromHost claiming %s = %v, want an *EvidenceError with %s", other, err, FaultHardwareUUIDNotRegistered)
		}
		wantUntrusted(t, mustReport(t, e, b.id), nil, FaultHardwareUUIDNotRegistered)
		if got := held(); got != "" {
			t.Fatalf("claiming %s made the host hold %q, want none", other, got)
		}
	}

	claimUUID(t, b, strings.ToUpper(b.uuid))
	if _, err := e.svc.FlavorsFromHost(ctx, b.id, DefaultRebaselineParts(), nil); err != nil {
		t.Fatal(err)
	}
	wantTrusted(t, mustReport(t, e, b.id))
	if got := held(); got != b.uuid {
		t.Errorf("the host holds %q, want the registered %q", got, b.uuid)
	}
}

// claimUUID has n's agent claim uuid: it reads, and binds into the quote,
// the hardware UUID from a file root on the node can write.
func claimUUID(t *testing.T, n *node, uuid string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.root.Dir, sandbox.UUIDPath), []byte(uuid+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
