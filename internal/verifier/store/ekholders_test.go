package store

import (
	"slices"
	"strings"
	"testing"
)

// HostsEnrolledWithEK names the registered hosts other than the one asking
// that are enrolled with an EK, whatever the case of its digest, and not the
// hosts deleted since (package enroll refuses an EK another host holds).
func TestHostsEnrolledWithEKNamesTheOtherRegisteredHosts(t *testing.T) {
	const ek = "ab12"
	runOnBackends(t, []storeTest{{
		name: "the hosts enrolled with the ek are named, but the one asking and deleted ones",
		test: func(t *testing.T, s *Store) {
			// One EK enrolls one host (migration 0019): h3's goes with it.
			for i, h := range []struct{ id, digest string }{{"h1", ek}, {"h2", "cd34"}, {"h3", "ef56"}} {
				if err := s.CreateHost(t.Context(), Host{ID: h.id, Name: "node-" + h.id}); err != nil {
					t.Fatal(err)
				}
				if err := s.PutAKEnrollment(t.Context(), AKEnrollment{HostID: h.id, AKName: []byte{0, 0x0b, byte(i)},
					AKPublic: []byte{1}, AKCertificate: []byte{2}, EKPublicSHA256: h.digest}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteHost(t.Context(), "h3"); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				host, digest string
				want         []string
			}{
				{"h2", ek, []string{"h1"}},
				{"h5", "AB12", []string{"h1"}},
				{"h1", ek, nil},
				{"h2", "ef56", nil},
				{"h1", "9999", nil},
			} {
				got, err := s.HostsEnrolledWithEK(t.Context(), tt.host, tt.digest)
				if err != nil || !slices.Equal(got, tt.want) {
					t.Errorf("HostsEnrolledWithEK(%s, %s) = %v, %v; want %v", tt.host, tt.digest, got, err, tt.want)
				}
			}
		},
	}})
}

// Enrollment asks for the hosts enrolled with an EK twice: on SQLite the
// query must search the enrollments by their EK digest's index, not scan
// every enrollment of the fleet.
func TestHostsEnrolledWithEKSearchesTheEKIndexOnSQLite(t *testing.T) {
	plan := sqlitePlan(t, hostsEnrolledWithEKQuery, "ab12", "h1")
	if !slices.ContainsFunc(plan, func(d string) bool {
		return strings.HasPrefix(d, "SEARCH e USING INDEX "+ekUniqueIndex)
	}) {
		t.Fatalf("plan %q does not search the enrollments by the index %s", plan, ekUniqueIndex)
	}
}
