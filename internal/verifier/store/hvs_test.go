package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// The HVS methods HVS codes against; this breaks the build if one drifts.
var _ interface {
	CreateHost(ctx context.Context, h Host) error
	HostByID(ctx context.Context, id string) (Host, error)
	HostByName(ctx context.Context, name string) (Host, error)
	ListHosts(ctx context.Context, f HostFilter) ([]Host, error)
	UpdateHost(ctx context.Context, h Host) error
	SetHostHardwareUUID(ctx context.Context, id, uuid string) error
	SetHostStatus(ctx context.Context, id, status string, at time.Time, connected bool) error
	SetHostBoot(ctx context.Context, id string, b HostBoot) error
	DeleteHost(ctx context.Context, id string) error
	CreateFlavorGroup(ctx context.Context, g FlavorGroup) error
	FlavorGroupByID(ctx context.Context, id string) (FlavorGroup, error)
	FlavorGroupByName(ctx context.Context, name string) (FlavorGroup, error)
	ListFlavorGroups(ctx context.Context) ([]FlavorGroup, error)
	UpdateFlavorGroup(ctx context.Context, g FlavorGroup) error
	DeleteFlavorGroup(ctx context.Context, id string) error
	CreateFlavor(ctx context.Context, f Flavor) error
	FlavorByID(ctx context.Context, id string) (Flavor, error)
	ListFlavors(ctx context.Context, f FlavorFilter) ([]Flavor, error)
	HostFlavors(ctx context.Context, groupID, hostID, hardwareUUID string) ([]Flavor, error)
	DeleteFlavor(ctx context.Context, id string) error
	DeleteHostFlavors(ctx context.Context, hostID string, parts []string) (int64, error)
	CreateReport(ctx context.Context, r Report) error
	ReportByID(ctx context.Context, id string) (Report, error)
	ListReports(ctx context.Context, f ReportFilter) ([]Report, error)
	ClaimHostsToRefresh(ctx context.Context, replica string, expiresBefore, now, until time.Time, limit int) ([]string, error)
	DeleteReportsBefore(ctx context.Context, before time.Time, batch int) (int64, error)
} = (*Tx)(nil)

// TestHVS runs the HVS tables through every backend: SQLite file, SQLite
// memory and PostgreSQL (TC_TEST_POSTGRES_URL).
func TestHVS(t *testing.T) {
	t.Parallel()
	runOnBackends(t, []storeTest{
		{"a created host reads back by id, by name and in the list", testHostRoundTrip},
		{"a host with a taken id or name conflicts and one with an unknown group is not stored", testHostConflicts},
		{"host status, boot and hardware uuid updates are stored", testHostUpdates},
		{"hosts are searched by name, hardware uuid and the trust of their latest report", testHostSearch},
		{"deleting a host deletes its reports and bound flavors", testDeleteHost},
		{"deleting a host deletes its enrollment so that its ak enrolls under a new host id", testDeleteHostDeletesItsEnrollment},
		{"deleting an ek registration deletes the enrollments without an ek certificate of its ek", testDeleteEKRegistrationDeletesItsEnrollments},
		{"migration 0016 deletes the enrollments of deleted hosts and of deleted registrations", testEnrollmentOrphansMigration},
		{"an enrollment a registration vouches for is not stored while the registration is being deleted", testPutRegisteredAKEnrollmentWaitsForADeletion},
		{"one ek enrolls one host, whatever the reads before the write said", testOneEKEnrollsOneHost},
		{"migration 0019 deletes the enrollments that share an ek", testOneEKMigration},
		{"flavor groups are created once, updated, and not deleted while a host uses them", testFlavorGroups},
		{"flavors are listed by id, group and part", testFlavorList},
		{"a host's flavors are the group's unbound ones and those bound to it", testHostFlavors},
		{"deleting a host's flavors in a failed transaction keeps them", testRebaselineAtomic},
		{"reports are paged newest first with a keyset", testReportPaging},
		{"reports are filtered by host, time and latest per host", testReportFilters},
		{"hosts whose latest report expires are due for a refresh", testHostsToRefresh},
		{"concurrent reports of many hosts are all stored", testConcurrentReports},
		{"old reports are deleted in batches and new ones and each host's newest are kept", testDeleteReportsBefore},
		{"deleting old reports touches no host, group or flavor", testDeleteReportsKeepsTheRest},
		{"two replicas deleting old reports at once delete each once and keep each host's newest", testDeleteReportsConcurrently},
	})
}

func group(t *testing.T, s *Store, id string) {
	t.Helper()
	must(t, "CreateFlavorGroup", s.CreateFlavorGroup(t.Context(), FlavorGroup{ID: id, Name: "name-" + id, Policies: []byte(`{"p":1}`), CreatedAt: t0}))
}

func host(id string, groups ...string) Host {
	return Host{ID: id, Name: "host-" + id, ConnectionString: "nats://" + id, Description: "d", Status: "UNKNOWN",
		FlavorGroupIDs: groups, CreatedAt: t0}
}

func flavorRec(id, part, hostID, hwUUID string, groups ...string) Flavor {
	return Flavor{ID: id, Part: part, Label: "l", HostID: hostID, HardwareUUID: hwUUID,
		Signed: []byte(`{"id":"` + id + `"}`), GroupIDs: groups, CreatedAt: t0}
}

func report(id, hostID string, trusted bool, created time.Time) Report {
	return Report{ID: id, HostID: hostID, HostName: "host-" + hostID, Trusted: trusted, CreatedAt: created,
		ExpiresAt: created.Add(time.Hour), JSON: []byte(`{"id":"` + id + `"}`), JWS: "jws-" + id}
}

func flavorIDs(fs []Flavor) []string { return fieldOf(fs, func(f Flavor) string { return f.ID }) }

func reportIDs(rs []Report) []string { return fieldOf(rs, func(r Report) string { return r.ID }) }

func testHostRoundTrip(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	group(t, s, "g2")
	want := host("h1", "g2", "g1")
	want.HardwareUUID = "uuid-1"
	must(t, "CreateHost", s.CreateHost(ctx, want))
	want.FlavorGroupIDs = []string{"g1", "g2"}
	for name, get := range map[string]func() (Host, error){
		"HostByID":   func() (Host, error) { return s.HostByID(ctx, "h1") },
		"HostByName": func() (Host, error) { return s.HostByName(ctx, "host-h1") },
	} {
		got, err := get()
		must(t, name, err)
		if got.ID != want.ID || got.Name != want.Name || got.ConnectionString != want.ConnectionString ||
			got.HardwareUUID != want.HardwareUUID || got.Status != want.Status || !got.CreatedAt.Equal(t0) ||
			!slices.Equal(got.FlavorGroupIDs, want.FlavorGroupIDs) || got.Boot.Known {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	hs, err := s.ListHosts(ctx, HostFilter{})
	must(t, "ListHosts", err)
	if len(hs) != 1 || !slices.Equal(hs[0].FlavorGroupIDs, want.FlavorGroupIDs) {
		t.Errorf("ListHosts = %+v", hs)
	}
	_, err = s.HostByID(ctx, "nope")
	wantErr(t, "HostByID(unknown)", err, ErrNotFound)
}

func testHostConflicts(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	other := host("h2")
	other.Name = "host-h1"
	wantErr(t, "CreateHost(same name)", s.CreateHost(ctx, other), ErrConflict)
	wantErr(t, "CreateHost(same id)", s.CreateHost(ctx, host("h1")), ErrConflict)
	wantErr(t, "CreateHost(unknown group)", s.CreateHost(ctx, host("h3", "nope")), ErrNotFound)
	if n := count(t, s, "hosts", ""); n != 1 {
		t.Errorf("%d hosts after failed creates, want 1", n)
	}
	renamed := host("h4")
	must(t, "CreateHost", s.CreateHost(ctx, renamed))
	renamed.Name = "host-h1"
	wantErr(t, "UpdateHost(taken name)", s.UpdateHost(ctx, renamed), ErrConflict)
	wantErr(t, "UpdateHost(unknown)", s.UpdateHost(ctx, host("nope")), ErrNotFound)
}

func testHostUpdates(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	group(t, s, "g2")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	at := t0.Add(time.Minute)
	must(t, "SetHostStatus", s.SetHostStatus(ctx, "h1", "CONNECTED", at, true))
	must(t, "SetHostStatus", s.SetHostStatus(ctx, "h1", "CONNECTION_TIMEOUT", at.Add(time.Minute), false))
	boot := HostBoot{Known: true, ResetCount: 7, RebootedAt: at, State: []byte(`{"ima_offset":3}`)}
	must(t, "SetHostBoot", s.SetHostBoot(ctx, "h1", boot))
	must(t, "SetHostHardwareUUID", s.SetHostHardwareUUID(ctx, "h1", "uuid-x"))
	h := host("h1", "g2")
	h.Description = "new"
	must(t, "UpdateHost", s.UpdateHost(ctx, h))
	got, err := s.HostByID(ctx, "h1")
	must(t, "HostByID", err)
	if got.Status != "CONNECTION_TIMEOUT" || !got.StatusAt.Equal(at.Add(time.Minute)) || !got.LastConnected.Equal(at) {
		t.Errorf("status %s at %v, last connected %v; want CONNECTION_TIMEOUT at %v, last connected %v",
			got.Status, got.StatusAt, got.LastConnected, at.Add(time.Minute), at)
	}
	if !got.Boot.Known || got.Boot.ResetCount != 7 || !got.Boot.RebootedAt.Equal(at) || string(got.Boot.State) != `{"ima_offset":3}` {
		t.Errorf("boot = %+v, want %+v", got.Boot, boot)
	}
	if got.Description != "new" || !slices.Equal(got.FlavorGroupIDs, []string{"g2"}) || got.HardwareUUID != "" {
		t.Errorf("after update: %+v", got)
	}
	wantErr(t, "SetHostStatus(unknown)", s.SetHostStatus(ctx, "nope", "CONNECTED", at, true), ErrNotFound)
	wantErr(t, "SetHostBoot(unknown)", s.SetHostBoot(ctx, "nope", boot), ErrNotFound)
}

func testHostSearch(t *testing.T, s *Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		h := host(id)
		h.HardwareUUID = "uuid-" + id
		must(t, "CreateHost", s.CreateHost(ctx, h))
	}
	must(t, "CreateReport", s.CreateReport(ctx, report("r1", "a", false, t0)))
	must(t, "CreateReport", s.CreateReport(ctx, report("r2", "a", true, t0.Add(time.Second))))
	must(t, "CreateReport", s.CreateReport(ctx, report("r3", "b", true, t0)))
	must(t, "CreateReport", s.CreateReport(ctx, report("r4", "b", false, t0.Add(time.Second))))
	yes, no := true, false
	tests := []struct {
		name   string
		filter HostFilter
		want   []string
	}{
		{"no filter selects every host", HostFilter{}, []string{"a", "b", "c"}},
		{"a name selects its host", HostFilter{Name: "host-b"}, []string{"b"}},
		{"a hardware uuid selects its host", HostFilter{HardwareUUID: "uuid-c"}, []string{"c"}},
		{"trusted selects hosts whose latest report is trusted", HostFilter{Trusted: &yes}, []string{"a"}},
		{"untrusted selects hosts whose latest report is untrusted", HostFilter{Trusted: &no}, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := s.ListHosts(ctx, tt.filter)
			must(t, "ListHosts", err)
			var ids []string
			for _, h := range hs {
				ids = append(ids, h.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ListHosts(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		})
	}
}

func testDeleteHost(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("bound", "PLATFORM", "h1", "", "g1")))
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("fleet", "PLATFORM", "", "", "g1")))
	must(t, "CreateReport", s.CreateReport(ctx, report("r1", "h1", true, t0)))
	must(t, "DeleteHost", s.DeleteHost(ctx, "h1"))
	wantErr(t, "DeleteHost again", s.DeleteHost(ctx, "h1"), ErrNotFound)
	if n := count(t, s, "reports", ""); n != 0 {
		t.Errorf("%d reports after deleting their host", n)
	}
	fs, err := s.ListFlavors(ctx, FlavorFilter{})
	must(t, "ListFlavors", err)
	if !slices.Equal(flavorIDs(fs), []string{"fleet"}) {
		t.Errorf("flavors after deleting the host: %v, want [fleet]", flavorIDs(fs))
	}
	if n := count(t, s, "host_flavor_groups", ""); n != 0 {
		t.Errorf("%d group memberships after deleting the host", n)
	}
	wantErr(t, "CreateReport(unknown host)", s.CreateReport(ctx, report("r2", "h1", true, t0)), ErrNotFound)
}

func testFlavorGroups(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	wantErr(t, "CreateFlavorGroup(same id)", s.CreateFlavorGroup(ctx, FlavorGroup{ID: "g1", Name: "other"}), ErrConflict)
	wantErr(t, "CreateFlavorGroup(same name)", s.CreateFlavorGroup(ctx, FlavorGroup{ID: "g9", Name: "name-g1"}), ErrConflict)
	must(t, "UpdateFlavorGroup", s.UpdateFlavorGroup(ctx, FlavorGroup{ID: "g1", Name: "renamed", Policies: []byte(`{"p":2}`)}))
	g, err := s.FlavorGroupByName(ctx, "renamed")
	must(t, "FlavorGroupByName", err)
	if g.ID != "g1" || string(g.Policies) != `{"p":2}` || !g.CreatedAt.Equal(t0) {
		t.Errorf("group after update = %+v", g)
	}
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	wantErr(t, "DeleteFlavorGroup(in use)", s.DeleteFlavorGroup(ctx, "g1"), ErrConflict)
	if _, err := s.FlavorGroupByID(ctx, "g1"); err != nil {
		t.Errorf("group in use was deleted: %v", err)
	}
	must(t, "DeleteHost", s.DeleteHost(ctx, "h1"))
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("f1", "OS", "", "", "g1")))
	must(t, "DeleteFlavorGroup", s.DeleteFlavorGroup(ctx, "g1"))
	wantErr(t, "DeleteFlavorGroup again", s.DeleteFlavorGroup(ctx, "g1"), ErrNotFound)
	f, err := s.FlavorByID(ctx, "f1")
	must(t, "FlavorByID", err)
	if len(f.GroupIDs) != 0 {
		t.Errorf("flavor still in deleted group: %v", f.GroupIDs)
	}
	gs, err := s.ListFlavorGroups(ctx)
	must(t, "ListFlavorGroups", err)
	if len(gs) != 0 {
		t.Errorf("ListFlavorGroups = %+v, want none", gs)
	}
}

func testFlavorList(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	group(t, s, "g2")
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("p1", "PLATFORM", "", "", "g1")))
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("o1", "OS", "", "", "g1", "g2")))
	must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("i1", "IMA", "", "", "g2")))
	wantErr(t, "CreateFlavor(same id)", s.CreateFlavor(ctx, flavorRec("p1", "OS", "", "")), ErrConflict)
	wantErr(t, "CreateFlavor(unknown group)", s.CreateFlavor(ctx, flavorRec("x1", "OS", "", "", "nope")), ErrNotFound)
	if _, err := s.FlavorByID(ctx, "x1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a flavor whose group is unknown was stored: %v", err)
	}
	tests := []struct {
		name   string
		filter FlavorFilter
		want   []string
	}{
		{"no filter lists all", FlavorFilter{}, []string{"i1", "o1", "p1"}},
		{"an id selects one", FlavorFilter{ID: "o1"}, []string{"o1"}},
		{"a group selects its flavors", FlavorFilter{GroupID: "g2"}, []string{"i1", "o1"}},
		{"parts select flavors of those parts", FlavorFilter{Parts: []string{"PLATFORM", "IMA"}}, []string{"i1", "p1"}},
		{"group and part combine", FlavorFilter{GroupID: "g1", Parts: []string{"OS"}}, []string{"o1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := s.ListFlavors(ctx, tt.filter)
			must(t, "ListFlavors", err)
			got := flavorIDs(fs)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListFlavors(%+v) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
	f, err := s.FlavorByID(ctx, "o1")
	must(t, "FlavorByID", err)
	if !slices.Equal(f.GroupIDs, []string{"g1", "g2"}) || string(f.Signed) != `{"id":"o1"}` {
		t.Errorf("FlavorByID = %+v", f)
	}
	must(t, "DeleteFlavor", s.DeleteFlavor(ctx, "o1"))
	wantErr(t, "DeleteFlavor again", s.DeleteFlavor(ctx, "o1"), ErrNotFound)
}

func testHostFlavors(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	group(t, s, "g2")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	must(t, "CreateHost", s.CreateHost(ctx, host("h2", "g1")))
	for _, f := range []Flavor{
		flavorRec("fleet", "PLATFORM", "", "", "g1"),
		flavorRec("mine", "OS", "h1", "uuid-1", "g1"),
		flavorRec("theirs", "OS", "h2", "uuid-2", "g1"),
		flavorRec("unique-mine", "HOST_UNIQUE", "", "uuid-1", "g1"),
		flavorRec("other-group", "OS", "h1", "uuid-1", "g2"),
	} {
		must(t, "CreateFlavor", s.CreateFlavor(ctx, f))
	}
	fs, err := s.HostFlavors(ctx, "g1", "h1", "uuid-1")
	must(t, "HostFlavors", err)
	got := flavorIDs(fs)
	slices.Sort(got)
	if want := []string{"fleet", "mine", "unique-mine"}; !slices.Equal(got, want) {
		t.Errorf("HostFlavors(h1) = %v, want %v", got, want)
	}
	fs, err = s.HostFlavors(ctx, "g1", "h1", "uuid-other")
	must(t, "HostFlavors", err)
	if got := flavorIDs(fs); !slices.Equal(got, []string{"fleet"}) {
		t.Errorf("HostFlavors(h1 with another hardware uuid) = %v, want [fleet]", got)
	}
}

func testRebaselineAtomic(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	for _, f := range []Flavor{
		flavorRec("p-old", "PLATFORM", "h1", "", "g1"),
		flavorRec("o-old", "OS", "h1", "", "g1"),
		flavorRec("u-old", "HOST_UNIQUE", "h1", "", "g1"),
		flavorRec("p-other", "PLATFORM", "h2", "", "g1"),
	} {
		must(t, "CreateFlavor", s.CreateFlavor(ctx, f))
	}
	failed := errors.New("signing failed")
	err := s.InTx(ctx, func(tx *Tx) error {
		if n, err := tx.DeleteHostFlavors(ctx, "h1", []string{"PLATFORM", "OS", "IMA"}); err != nil || n != 2 {
			return fmt.Errorf("DeleteHostFlavors = %d, %w; want 2", n, err)
		}
		if err := tx.CreateFlavor(ctx, flavorRec("p-new", "PLATFORM", "h1", "", "g1")); err != nil {
			return err
		}
		return failed
	})
	wantErr(t, "rebaseline", err, failed)
	fs, err := s.ListFlavors(ctx, FlavorFilter{HostID: "h1"})
	must(t, "ListFlavors", err)
	got := flavorIDs(fs)
	slices.Sort(got)
	if want := []string{"o-old", "p-old", "u-old"}; !slices.Equal(got, want) {
		t.Errorf("flavors after a failed rebaseline = %v, want %v", got, want)
	}
	must(t, "rebaseline", s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.DeleteHostFlavors(ctx, "h1", []string{"PLATFORM", "OS", "IMA"}); err != nil {
			return err
		}
		return tx.CreateFlavor(ctx, flavorRec("p-new", "PLATFORM", "h1", "", "g1"))
	}))
	fs, err = s.ListFlavors(ctx, FlavorFilter{HostID: "h1"})
	must(t, "ListFlavors", err)
	got = flavorIDs(fs)
	slices.Sort(got)
	if want := []string{"p-new", "u-old"}; !slices.Equal(got, want) {
		t.Errorf("flavors after a rebaseline = %v, want %v", got, want)
	}
}

func testReportPaging(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateHost", s.CreateHost(ctx, host("h1")))
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("r%02d", i)
		must(t, "CreateReport", s.CreateReport(ctx, report(id, "h1", i%2 == 0, t0.Add(time.Duration(i)*time.Second))))
		want = append([]string{id}, want...)
	}
	wantErr(t, "CreateReport(same id)", s.CreateReport(ctx, report("r00", "h1", true, t0)), ErrConflict)
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatalf("paging does not end: %v", got)
		}
		rs, err := s.ListReports(ctx, ReportFilter{HostID: "h1", Limit: 3, AfterID: after})
		must(t, "ListReports", err)
		if len(rs) == 0 {
			break
		}
		got = append(got, reportIDs(rs)...)
		after = rs[len(rs)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged reports = %v, want %v", got, want)
	}
	r, err := s.ReportByID(ctx, "r03")
	must(t, "ReportByID", err)
	if r.Trusted || r.JWS != "jws-r03" || string(r.JSON) != `{"id":"r03"}` || !r.CreatedAt.Equal(t0.Add(3*time.Second)) ||
		!r.ExpiresAt.Equal(t0.Add(3*time.Second+time.Hour)) || r.HostName != "host-h1" {
		t.Errorf("ReportByID = %+v", r)
	}
	_, err = s.ReportByID(ctx, "nope")
	wantErr(t, "ReportByID(unknown)", err, ErrNotFound)
}

func testReportFilters(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateHost", s.CreateHost(ctx, host("a")))
	must(t, "CreateHost", s.CreateHost(ctx, host("b")))
	for i, r := range []Report{
		report("r1", "a", true, t0),
		report("r2", "b", true, t0.Add(time.Minute)),
		report("r3", "a", false, t0.Add(2*time.Minute)),
		report("r4", "b", true, t0.Add(3*time.Minute)),
	} {
		must(t, fmt.Sprintf("CreateReport %d", i), s.CreateReport(ctx, r))
	}
	tests := []struct {
		name   string
		filter ReportFilter
		want   []string
	}{
		{"no filter lists all newest first", ReportFilter{}, []string{"r4", "r3", "r2", "r1"}},
		{"a host id selects its reports", ReportFilter{HostID: "a"}, []string{"r3", "r1"}},
		{"a host name selects its reports", ReportFilter{HostName: "host-b"}, []string{"r4", "r2"}},
		{"latest per host keeps one per host", ReportFilter{LatestPerHost: true}, []string{"r4", "r3"}},
		{"latest per host of one host", ReportFilter{LatestPerHost: true, HostName: "host-a"}, []string{"r3"}},
		{"from and to bound the creation time", ReportFilter{From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute)}, []string{"r3", "r2"}},
		{"a limit keeps the newest", ReportFilter{Limit: 1}, []string{"r4"}},
		{"an unknown host name selects nothing", ReportFilter{HostName: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.ListReports(ctx, tt.filter)
			must(t, "ListReports", err)
			if got := reportIDs(rs); !slices.Equal(got, tt.want) {
				t.Errorf("ListReports(%+v) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func testHostsToRefresh(t *testing.T, s *Store) {
	ctx := t.Context()
	for _, id := range []string{"fresh", "stale", "new"} {
		must(t, "CreateHost", s.CreateHost(ctx, host(id)))
	}
	must(t, "CreateReport", s.CreateReport(ctx, report("r1", "stale", true, t0.Add(-2*time.Hour))))
	must(t, "CreateReport", s.CreateReport(ctx, report("r2", "stale", true, t0.Add(-30*time.Minute))))
	must(t, "CreateReport", s.CreateReport(ctx, report("r3", "fresh", true, t0)))
	got, err := s.ClaimHostsToRefresh(ctx, "replica", t0.Add(40*time.Minute), t0, t0.Add(time.Minute), 10)
	must(t, "ClaimHostsToRefresh", err)
	slices.Sort(got)
	if want := []string{"new", "stale"}; !slices.Equal(got, want) {
		t.Errorf("ClaimHostsToRefresh = %v, want %v", got, want)
	}
}

func testConcurrentReports(t *testing.T, s *Store) {
	ctx := t.Context()
	const hosts, each = 5, 8
	for i := range hosts {
		must(t, "CreateHost", s.CreateHost(ctx, host(fmt.Sprint(i))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, hosts*each)
	for i := range hosts {
		for j := range each {
			wg.Go(func() {
				errs <- s.InTx(ctx, func(tx *Tx) error {
					id := fmt.Sprint(i)
					if err := tx.CreateReport(ctx, report(fmt.Sprintf("r-%d-%02d", i, j), id, true, t0)); err != nil {
						return err
					}
					return tx.SetHostBoot(ctx, id, HostBoot{Known: true, ResetCount: uint32(j)})
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent report: %v", err)
		}
	}
	if n := count(t, s, "reports", ""); n != hosts*each {
		t.Errorf("%d reports stored, want %d", n, hosts*each)
	}
}
