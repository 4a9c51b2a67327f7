package store

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The deletions that take AK enrollments with them, a host's and an EK
// registration's of the enrollments it alone vouched for, run in TestHVS
// on every backend.

var (
	ekDigestA = strings.Repeat("a1", 32)
	ekDigestB = strings.Repeat("b2", 32)
	ekDigestC = strings.Repeat("c3", 32)
	ekDigestD = strings.Repeat("d4", 32)
)

// akName is a TPM name (SHA-256) whose digest is 32 bytes of b.
func akName(b byte) []byte { return append([]byte{0, 0x0b}, bytes.Repeat([]byte{b}, 32)...) }

// putEnrollment stores an enrollment of host with the AK name akName(b),
// the EK digest ek and, unless nil, the EK certificate ekCert.
func putEnrollment(t *testing.T, s *Store, host string, b byte, ek string, ekCert []byte) {
	t.Helper()
	must(t, "PutAKEnrollment", s.PutAKEnrollment(t.Context(), AKEnrollment{HostID: host, AKName: akName(b),
		AKPublic: []byte("ak"), AKCertificate: []byte("ak cert"), EKCertificate: ekCert, EKPublicSHA256: ek, CreatedAt: t0}))
}

func wantEnrolled(t *testing.T, s *Store, host string, want bool) {
	t.Helper()
	_, err := s.AKEnrollmentByHost(t.Context(), host)
	switch {
	case want && err != nil:
		t.Errorf("the enrollment of %s: %v, want it kept", host, err)
	case !want && err == nil:
		t.Errorf("%s is still enrolled, want its enrollment deleted", host)
	case !want:
		wantErr(t, "AKEnrollmentByHost("+host+")", err, ErrNotFound)
	}
}

func testDeleteEKRegistrationDeletesItsEnrollments(t *testing.T, s *Store) {
	ctx := t.Context()
	for _, id := range []string{"h-registered", "h-certified", "h-other"} {
		must(t, "CreateHost", s.CreateHost(ctx, Host{ID: id, Name: "name-" + id, CreatedAt: t0}))
	}
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, EKRegistration{ID: "reg-a", HardwareUUID: "u",
		EKPublicSHA256: strings.ToUpper(ekDigestA), EKPublic: []byte("ek"), CreatedAt: t0}))
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, EKRegistration{ID: "reg-b", HardwareUUID: "v",
		EKPublicSHA256: ekDigestB, EKPublic: []byte("ek b"), CreatedAt: t0}))
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, EKRegistration{ID: "reg-c", HardwareUUID: "w",
		EKPublicSHA256: ekDigestC, EKPublic: []byte("ek c"), CreatedAt: t0}))
	putEnrollment(t, s, "h-registered", 1, ekDigestA, nil)
	putEnrollment(t, s, "h-certified", 2, ekDigestC, []byte("ek cert")) // registered too, and certified
	putEnrollment(t, s, "h-other", 3, ekDigestB, nil)
	if rh, err := s.HostForReport(ctx, "h-registered"); err != nil || rh.Enrollment == nil {
		t.Fatalf("HostForReport before the deletion: %+v, %v; want the enrollment", rh.Enrollment, err)
	}

	must(t, "DeleteEKRegistration", s.DeleteEKRegistration(ctx, "reg-a"))
	must(t, "DeleteEKRegistration", s.DeleteEKRegistration(ctx, "reg-c"))
	wantEnrolled(t, s, "h-registered", false)
	wantEnrolled(t, s, "h-certified", true)
	wantEnrolled(t, s, "h-other", true)
	rh, err := s.HostForReport(ctx, "h-registered")
	if err != nil || rh.Enrollment != nil {
		t.Errorf("HostForReport after the deletion: %+v, %v; want the host without an enrollment", rh.Enrollment, err)
	}
	wantErr(t, "DeleteEKRegistration(again)", s.DeleteEKRegistration(ctx, "reg-a"), ErrNotFound)
	wantEnrolled(t, s, "h-other", true)
	if _, err := s.EKRegistrationByDigest(ctx, ekDigestB); err != nil {
		t.Errorf("the other registration: %v", err)
	}
}

func testDeleteHostDeletesItsEnrollment(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h-old", Name: "edge-1", CreatedAt: t0}))
	must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h-kept", Name: "edge-2", CreatedAt: t0}))
	putEnrollment(t, s, "h-old", 1, ekDigestA, []byte("ek cert"))
	putEnrollment(t, s, "h-kept", 2, ekDigestB, []byte("ek cert b"))

	must(t, "DeleteHost", s.DeleteHost(ctx, "h-old"))
	wantEnrolled(t, s, "h-old", false)
	wantEnrolled(t, s, "h-kept", true)
	if _, err := s.AKEnrollmentByName(ctx, akName(1)); err == nil {
		t.Error("the deleted host's AK name is still enrolled")
	}
	// The same machine (same AK) registered again under a new host id.
	must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h-new", Name: "edge-1", CreatedAt: t0}))
	putEnrollment(t, s, "h-new", 1, ekDigestA, []byte("ek cert"))
	wantEnrolled(t, s, "h-new", true)
	// A host registered again under the deleted id has no enrollment.
	must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h-old", Name: "edge-3", CreatedAt: t0}))
	wantEnrolled(t, s, "h-old", false)
}

// testEnrollmentOrphansMigration plays the rows deletions left before
// migration 0016 and runs its SQL again.
func testEnrollmentOrphansMigration(t *testing.T, s *Store) {
	ctx := t.Context()
	sqlText, err := migrationFiles.ReadFile("migrations/0016_enrollment_orphans.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"h-registered", "h-certified", "h-revoked"} {
		must(t, "CreateHost", s.CreateHost(ctx, Host{ID: id, Name: "name-" + id, CreatedAt: t0}))
	}
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, EKRegistration{ID: "reg-a", HardwareUUID: "u",
		EKPublicSHA256: ekDigestA, EKPublic: []byte("ek"), CreatedAt: t0}))
	putEnrollment(t, s, "h-registered", 1, ekDigestA, nil)
	putEnrollment(t, s, "h-certified", 2, ekDigestB, []byte("ek cert"))
	putEnrollment(t, s, "h-revoked", 3, ekDigestD, nil) // its registration was deleted
	putEnrollment(t, s, "h-deleted", 4, ekDigestC, []byte("ek cert"))

	if _, err := s.wdb.ExecContext(ctx, string(sqlText)); err != nil {
		t.Fatalf("migration 0016: %v", err)
	}
	wantEnrolled(t, s, "h-registered", true)
	wantEnrolled(t, s, "h-certified", true)
	wantEnrolled(t, s, "h-revoked", false)
	wantEnrolled(t, s, "h-deleted", false)
}

// testOneEKEnrollsOneHost plays two replicas that enroll two hosts with
// one TPM at the same instant: both read that no host holds the EK
// (HostsEnrolledWithEK), then both put. The second put is refused.
func testOneEKEnrollsOneHost(t *testing.T, s *Store) {
	ctx := t.Context()
	for _, id := range []string{"h1", "h2"} {
		must(t, "CreateHost", s.CreateHost(ctx, Host{ID: id, Name: "name-" + id, CreatedAt: t0}))
	}
	for _, id := range []string{"h1", "h2"} {
		if holders, err := s.HostsEnrolledWithEK(ctx, id, ekDigestA); err != nil || len(holders) != 0 {
			t.Fatalf("HostsEnrolledWithEK(%s) = %v, %v; want none", id, holders, err)
		}
	}
	putEnrollment(t, s, "h1", 1, ekDigestA, []byte("ek cert"))
	for _, digest := range []string{ekDigestA, strings.ToUpper(ekDigestA)} {
		err := s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h2", AKName: akName(2), AKPublic: []byte("ak"),
			AKCertificate: []byte("ak cert"), EKCertificate: []byte("ek cert"), EKPublicSHA256: digest, CreatedAt: t0})
		wantErr(t, "PutAKEnrollment(h2, the ek h1 holds, "+digest[:4]+")", err, ErrEKInUse)
	}
	wantEnrolled(t, s, "h2", false)
	// h1 enrolls again, with another AK under the same EK.
	putEnrollment(t, s, "h1", 3, ekDigestA, []byte("ek cert"))
	if e, err := s.AKEnrollmentByHost(ctx, "h1"); err != nil || !bytes.Equal(e.AKName, akName(3)) {
		t.Errorf("h1 after enrolling again: %v, %v; want the new ak", e.AKName, err)
	}
	// An AK name another host holds is still the conflict it was.
	putEnrollment(t, s, "h2", 4, ekDigestB, []byte("ek cert b"))
	err := s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h2", AKName: akName(3), AKPublic: []byte("ak"),
		AKCertificate: []byte("ak cert"), EKCertificate: []byte("ek cert b"), EKPublicSHA256: ekDigestB, CreatedAt: t0})
	wantErr(t, "PutAKEnrollment(h2, h1's ak name)", err, ErrConflict)
	// Once h1 is deleted, its EK enrolls another host.
	must(t, "DeleteHost", s.DeleteHost(ctx, "h1"))
	must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h3", Name: "name-h3", CreatedAt: t0}))
	putEnrollment(t, s, "h3", 5, ekDigestA, []byte("ek cert"))
}

// testOneEKMigration plays enrollments that share an EK, as a race or a
// version before the check left them, and runs migration 0019 again: they
// are all deleted, and the others kept.
func testOneEKMigration(t *testing.T, s *Store) {
	ctx := t.Context()
	sqlText, err := migrationFiles.ReadFile("migrations/0019_ak_enrollments_one_per_ek.sql")
	if err != nil {
		t.Fatal(err)
	}
	// The index as migration 0018 left it.
	if _, err := s.wdb.ExecContext(ctx, `DROP INDEX ak_enrollments_one_per_ek`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.ExecContext(ctx, `CREATE INDEX ak_enrollments_ek_public_sha256 ON ak_enrollments (ek_public_sha256)`); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"h-a1", "h-a2", "h-a3", "h-b", "h-c"} {
		must(t, "CreateHost", s.CreateHost(ctx, Host{ID: id, Name: "name-" + id, CreatedAt: t0}))
	}
	putEnrollment(t, s, "h-a1", 1, ekDigestA, []byte("ek cert"))
	putEnrollment(t, s, "h-a2", 2, ekDigestA, []byte("ek cert"))
	putEnrollment(t, s, "h-b", 3, ekDigestB, []byte("ek cert b"))
	putEnrollment(t, s, "h-c", 4, ekDigestC, nil)
	// An upper-case digest stored by an older version: the same EK.
	if _, err := s.wdb.ExecContext(ctx, `UPDATE ak_enrollments SET ek_public_sha256 = $1 WHERE host_id = $2`,
		strings.ToUpper(ekDigestC), "h-c"); err != nil {
		t.Fatal(err)
	}
	putEnrollment(t, s, "h-a3", 5, ekDigestC, nil)

	if _, err := s.wdb.ExecContext(ctx, string(sqlText)); err != nil {
		t.Fatalf("migration 0019: %v", err)
	}
	for host, kept := range map[string]bool{"h-a1": false, "h-a2": false, "h-b": true, "h-c": false, "h-a3": false} {
		wantEnrolled(t, s, host, kept)
	}
	putEnrollment(t, s, "h-a2", 6, ekDigestA, []byte("ek cert"))
	err = s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h-a1", AKName: akName(7), AKPublic: []byte("ak"),
		AKCertificate: []byte("ak cert"), EKCertificate: []byte("ek cert"), EKPublicSHA256: ekDigestA, CreatedAt: t0})
	wantErr(t, "PutAKEnrollment after the migration", err, ErrEKInUse)
}

// testPutRegisteredAKEnrollmentWaitsForADeletion plays an enrollment
// stored while the registration that vouched for it is being deleted: the
// deletion's transaction is open when the enrollment is put. The put waits
// and stores nothing; stored first, the deletion would miss it.
func testPutRegisteredAKEnrollmentWaitsForADeletion(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h1", Name: "edge-1", CreatedAt: t0}))
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, EKRegistration{ID: "reg-a", HardwareUUID: "u",
		EKPublicSHA256: ekDigestA, EKPublic: []byte("ek"), CreatedAt: t0}))
	enr := AKEnrollment{HostID: "h1", AKName: akName(1), AKPublic: []byte("ak"), AKCertificate: []byte("ak cert"),
		EKPublicSHA256: ekDigestB, CreatedAt: t0}
	wantErr(t, "PutRegisteredAKEnrollment(unregistered ek)", s.PutRegisteredAKEnrollment(ctx, enr), ErrNotFound)
	wantEnrolled(t, s, "h1", false)

	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `DELETE FROM ek_registrations WHERE id = $1`, "reg-a"); err != nil {
		t.Fatal(err)
	}
	enr.EKPublicSHA256 = strings.ToUpper(ekDigestA)
	done := make(chan error, 1)
	go func() { done <- s.PutRegisteredAKEnrollment(ctx, enr) }()
	select {
	case err := <-done:
		t.Fatalf("the enrollment was put while the deletion was open: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	must(t, "commit the deletion", tx.Commit())
	wantErr(t, "PutRegisteredAKEnrollment(deleted registration)", <-done, ErrNotFound)
	wantEnrolled(t, s, "h1", false)

	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, EKRegistration{ID: "reg-a2", HardwareUUID: "u",
		EKPublicSHA256: ekDigestA, EKPublic: []byte("ek"), CreatedAt: t0}))
	must(t, "PutRegisteredAKEnrollment", s.PutRegisteredAKEnrollment(ctx, enr))
	wantEnrolled(t, s, "h1", true)
}
