package hvs

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"trustedcompute.io/tc/internal/verifier/store"
)

// rowEnroller is fakeEnroller with VerifyEnrolledAK: it accepts the AK of
// the enrollment row a report read with its host, and records the rows.
type rowEnroller struct {
	*fakeEnroller
	mu   sync.Mutex
	rows []store.AKEnrollment
	// reads counts VerifyAK, which reads the row itself.
	reads int
}

func (e *rowEnroller) VerifyEnrolledAK(_ string, enr store.AKEnrollment) ([]byte, []string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rows = append(e.rows, enr)
	return enr.AKPublic, enr.PCRBanks, nil
}

func (e *rowEnroller) VerifyAK(ctx context.Context, hostID string) ([]byte, []string, error) {
	e.mu.Lock()
	e.reads++
	e.mu.Unlock()
	return e.fakeEnroller.VerifyAK(ctx, hostID)
}

// A report verifies the AK of the enrollment row it read with its host,
// at every report: a host enrolled again with another AK is held to that
// AK at its next report, not to the one verified before.
func TestAReportVerifiesTheEnrollmentItReadWithItsHost(t *testing.T) {
	n, other := newNode(t, "edge-1"), newNode(t, "edge-2")
	var enr *rowEnroller
	e := newEnv(t, []*node{n, other}, func(_ *Config, deps *Deps) {
		enr = &rowEnroller{fakeEnroller: deps.Enroller.(*fakeEnroller)}
		deps.Enroller = enr
	})
	e.baseline(t, n)
	ctx := t.Context()
	enroll := func(n *node) store.AKEnrollment {
		t.Helper()
		info, err := n.tpm.KeyInfo()
		if err != nil {
			t.Fatal(err)
		}
		row := store.AKEnrollment{HostID: "edge-1", AKName: info.AKName, AKPublic: info.AKPublic, PCRBanks: info.PCRBanks}
		if err := e.st.PutAKEnrollment(ctx, row); err != nil {
			t.Fatal(err)
		}
		return row
	}
	first := enroll(n)
	enr.rows, enr.reads = nil, 0 // the baseline's own (FlavorsFromHost reads the row itself)
	r, err := e.svc.CreateReport(ctx, n.id)
	if err != nil || !r.Trusted() {
		t.Fatalf("report with the enrolled AK: %v, trusted %v, faults %v", err, r != nil && r.Trusted(), faultNames(r))
	}
	if len(enr.rows) != 1 || !bytes.Equal(enr.rows[0].AKPublic, first.AKPublic) || enr.reads != 0 {
		t.Fatalf("the report verified %d rows and read %d itself; want the host's row, read with it", len(enr.rows), enr.reads)
	}

	enroll(other) // edge-1 enrolled again, with edge-2's AK
	r, err = e.svc.CreateReport(ctx, n.id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Trusted() || !slices.Contains(faultNames(r), "AKMismatch") {
		t.Errorf("a quote by the AK enrolled before: trusted %v, faults %v; want AKMismatch", r.Trusted(), faultNames(r))
	}
}
