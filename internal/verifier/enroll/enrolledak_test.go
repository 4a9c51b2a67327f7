package enroll

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
	"trustedcompute.io/tc/internal/verifier/store"
)

// A report reads the host's enrollment row with the host
// (store.Store.HostForReport) and hands it to VerifyEnrolledAK, which
// accepts what VerifyAK accepts of that row and keeps nothing a new row
// could be served from: a re-enrolled host's new AK is verified anew, and a
// row rewritten to another host's AK is refused.
func TestAnEnrollmentReadWithItsHostIsVerifiedAsVerifyAKVerifiesIt(t *testing.T) {
	st := openStore(t)
	e := newEnroller(t, Config{}, st, failingAgent{})
	ctx := t.Context()
	for _, h := range []string{"edge-1", "edge-2"} {
		if err := st.CreateHost(ctx, store.Host{ID: h, Name: h}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(host string) *store.AKEnrollment {
		t.Helper()
		rh, err := st.HostForReport(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		return rh.Enrollment
	}
	if enr := read("edge-1"); enr != nil {
		t.Fatalf("a host that never enrolled has enrollment %+v", enr)
	}
	_, first := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
	_, other := enrollSoftAK(t, e, st, "edge-2", time.Now(), time.Hour)
	accepted := func(what, host string, enr store.AKEnrollment, want []byte) {
		t.Helper()
		got, _, err := e.VerifyEnrolledAK(host, enr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: VerifyEnrolledAK = %x, %v; want the enrolled AK", what, got, err)
		}
	}
	refused := func(what, host string, enr store.AKEnrollment) {
		t.Helper()
		var akErr *AKError
		if got, _, err := e.VerifyEnrolledAK(host, enr); !errors.As(err, &akErr) {
			t.Fatalf("%s: VerifyEnrolledAK = %x, %v; want an AKError", what, got, err)
		}
	}
	accepted("the row read with the host", "edge-1", *read("edge-1"), first.AKPublic)
	wantVerifications(t, e, 1)
	accepted("the same row again, from the verified chains", "edge-1", *read("edge-1"), first.AKPublic)
	wantVerifications(t, e, 1)
	refused("another host's row", "edge-1", *read("edge-2"))

	_, renewed := enrollSoftAK(t, e, st, "edge-1", time.Now(), time.Hour)
	accepted("the row of the host enrolled again", "edge-1", *read("edge-1"), renewed.AKPublic)

	// The AK and certificate of edge-2, whose chain was verified; the AK
	// name stays edge-1's, as the name is unique.
	rewritten := other
	rewritten.HostID, rewritten.AKName, rewritten.EKPublicSHA256 = "edge-1", renewed.AKName, renewed.EKPublicSHA256
	if err := st.PutAKEnrollment(ctx, rewritten); err != nil {
		t.Fatal(err)
	}
	refused("the host's row rewritten to another host's verified AK", "edge-1", *read("edge-1"))
	wantVerifications(t, e, 3)
}

// BenchmarkVerifyEnrolledAK is BenchmarkVerifyAK for a report that read
// the enrollment row with its host: the check without the row's read.
//
//	go test -run '^$' -bench 'VerifyAK|VerifyEnrolledAK' -count 3 ./internal/verifier/enroll
func BenchmarkVerifyEnrolledAK(b *testing.B) {
	e, enr := benchEnroller(b)
	b.ResetTimer()
	cpu := benchfloor.Start()
	for b.Loop() {
		if _, _, err := e.VerifyEnrolledAK("edge-1", enr); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b)
	benchfloor.ReportRatio(b)
}

// benchEnroller is an Enroller on an SQLite file with host edge-1's AK
// enrolled, and its enrollment.
func benchEnroller(b *testing.B) (*Enroller, store.AKEnrollment) {
	b.Helper()
	st, err := store.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	e := newEnroller(b, Config{}, st, failingAgent{})
	_, enr := enrollSoftAK(b, e, st, "edge-1", time.Now(), time.Hour)
	return e, enr
}
