package store

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"
	"time"
)

// TestIMAPolicies runs the IMA runtime policies (migration 0011) through
// every backend: SQLite file, SQLite memory and PostgreSQL
// (TC_TEST_POSTGRES_URL).
func TestIMAPolicies(t *testing.T) {
	t.Parallel()
	runOnBackends(t, []storeTest{
		{"a created policy reads back by id, by name, in the list and with its document", testIMAPolicyRoundTrip},
		{"creating a policy with a taken name or id conflicts and stores nothing", testIMAPolicyConflict},
		{"an update is the next version and older versions stay readable", testIMAPolicyVersions},
		{"an update from a stale version conflicts and changes nothing", testIMAPolicyStaleUpdate},
		{"a host's own policy wins over its groups' and a group without one has none", testHostIMAPolicies},
		{"assigning to an unknown host or group assigns nothing", testIMAPolicyAssignUnknown},
		{"unassigning leaves another policy's assignment alone", testIMAPolicyUnassign},
		{"an assigned policy is deleted only when forced", testIMAPolicyDeleteAssigned},
		{"deleting a host or a group deletes its assignment", testIMAPolicyAssignmentCascades},
		{"operations on an unknown policy report not found", testUnknownIMAPolicy},
	})
}

// hostsIn creates a flavor group and hosts in it.
func hostsIn(t *testing.T, s *Store, groupID string, hostIDs ...string) {
	t.Helper()
	group(t, s, groupID)
	for _, h := range hostIDs {
		must(t, "CreateHost", s.CreateHost(t.Context(), host(h, groupID)))
	}
}

func imaPolicy(id string) IMAPolicy {
	return IMAPolicy{ID: id, Name: "name-" + id, Description: "d-" + id, CreatedAt: t0}
}

func imaPolicyVersion(id string, version int64, doc string) IMAPolicyVersion {
	return IMAPolicyVersion{PolicyID: id, Version: version, Document: []byte(doc), Signature: "sig-" + doc,
		CreatedAt: t0.Add(time.Duration(version) * time.Minute)}
}

func createIMAPolicy(t *testing.T, s *Store, id string) {
	t.Helper()
	must(t, "CreateIMAPolicy", s.CreateIMAPolicy(t.Context(), imaPolicy(id), imaPolicyVersion(id, 1, `{"doc":"`+id+`"}`)))
}

func sum(doc string) []byte {
	d := sha256.Sum256([]byte(doc))
	return d[:]
}

func testIMAPolicyRoundTrip(t *testing.T, s *Store) {
	ctx := t.Context()
	createIMAPolicy(t, s, "p2")
	createIMAPolicy(t, s, "p1")
	for _, get := range []func() (IMAPolicy, error){
		func() (IMAPolicy, error) { return s.IMAPolicyByID(ctx, "p1") },
		func() (IMAPolicy, error) { return s.IMAPolicyByName(ctx, "name-p1") },
	} {
		p, err := get()
		must(t, "read policy", err)
		if p.ID != "p1" || p.Name != "name-p1" || p.Description != "d-p1" || p.LatestVersion != 1 ||
			!bytes.Equal(p.LatestSHA256, sum(`{"doc":"p1"}`)) || !p.CreatedAt.Equal(t0) || !p.UpdatedAt.Equal(t0) {
			t.Errorf("policy %+v", p)
		}
	}
	list, err := s.ListIMAPolicies(ctx)
	must(t, "ListIMAPolicies", err)
	if len(list) != 2 || list[0].ID != "p1" || list[1].ID != "p2" {
		t.Fatalf("list %+v, want p1, p2 by name", list)
	}
	v, err := s.IMAPolicyVersion(ctx, "p1", 0)
	must(t, "IMAPolicyVersion", err)
	if v.Version != 1 || string(v.Document) != `{"doc":"p1"}` || v.Signature != `sig-{"doc":"p1"}` ||
		!bytes.Equal(v.SHA256, sum(`{"doc":"p1"}`)) || !v.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("version %+v", v)
	}
}

func testIMAPolicyConflict(t *testing.T, s *Store) {
	ctx := t.Context()
	createIMAPolicy(t, s, "p1")
	sameName := imaPolicy("p2")
	sameName.Name = "name-p1"
	wantErr(t, "same name", s.CreateIMAPolicy(ctx, sameName, imaPolicyVersion("p2", 1, "{}")), ErrConflict)
	wantErr(t, "same id", s.CreateIMAPolicy(ctx, imaPolicy("p1"), imaPolicyVersion("p1", 1, "{}")), ErrConflict)
	if n := count(t, s, "ima_policy_versions", ""); n != 1 {
		t.Errorf("%d versions stored, want 1", n)
	}
	if err := s.CreateIMAPolicy(ctx, imaPolicy("p3"), imaPolicyVersion("p3", 2, "{}")); err == nil {
		t.Error("a policy created at version 2 was stored")
	}
}

func testIMAPolicyVersions(t *testing.T, s *Store) {
	ctx := t.Context()
	createIMAPolicy(t, s, "p1")
	desc := "new description"
	must(t, "AddIMAPolicyVersion", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("p1", 2, `{"v":2}`), &desc))
	must(t, "AddIMAPolicyVersion", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("p1", 3, `{"v":3}`), nil))
	p, err := s.IMAPolicyByID(ctx, "p1")
	must(t, "IMAPolicyByID", err)
	if p.LatestVersion != 3 || p.Description != desc || !bytes.Equal(p.LatestSHA256, sum(`{"v":3}`)) ||
		!p.UpdatedAt.Equal(t0.Add(3*time.Minute)) || !p.CreatedAt.Equal(t0) {
		t.Errorf("policy %+v", p)
	}
	for version, doc := range map[int64]string{0: `{"v":3}`, 1: `{"doc":"p1"}`, 2: `{"v":2}`, 3: `{"v":3}`} {
		v, err := s.IMAPolicyVersion(ctx, "p1", version)
		must(t, "IMAPolicyVersion", err)
		if string(v.Document) != doc {
			t.Errorf("version %d: document %s, want %s", version, v.Document, doc)
		}
	}
	_, err = s.IMAPolicyVersion(ctx, "p1", 4)
	wantErr(t, "version 4", err, ErrNotFound)
}

func testIMAPolicyStaleUpdate(t *testing.T, s *Store) {
	ctx := t.Context()
	createIMAPolicy(t, s, "p1")
	must(t, "AddIMAPolicyVersion", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("p1", 2, `{"v":2}`), nil))
	for _, version := range []int64{2, 4, 1} {
		wantErr(t, "stale update", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("p1", version, `{"stale":1}`), nil), ErrConflict)
	}
	if n := count(t, s, "ima_policy_versions", "policy_id = $1", "p1"); n != 2 {
		t.Errorf("%d versions stored, want 2", n)
	}
	p, err := s.IMAPolicyByID(ctx, "p1")
	must(t, "IMAPolicyByID", err)
	if p.LatestVersion != 2 {
		t.Errorf("latest version %d, want 2", p.LatestVersion)
	}
}

func testHostIMAPolicies(t *testing.T, s *Store) {
	ctx := t.Context()
	for _, g := range []string{"g1", "g2", "g3"} {
		group(t, s, g)
	}
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1", "g2", "g3")))
	must(t, "CreateHost", s.CreateHost(ctx, host("h2", "g1")))
	createIMAPolicy(t, s, "host-policy")
	createIMAPolicy(t, s, "group-policy")
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "group-policy", IMAPolicyAssignments{GroupIDs: []string{"g1", "g2"}}))
	must(t, "AddIMAPolicyVersion", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("group-policy", 2, `{"v":2}`), nil))

	got, err := s.HostIMAPolicies(ctx, "h1")
	must(t, "HostIMAPolicies", err)
	if got.Host != nil {
		t.Errorf("h1 has its own policy %+v, want none", got.Host)
	}
	for _, g := range []string{"g1", "g2"} {
		ref, ok := got.For(g)
		if !ok || ref.PolicyID != "group-policy" || ref.Version != 2 || !bytes.Equal(ref.SHA256, sum(`{"v":2}`)) {
			t.Errorf("group %s: policy %+v %v, want group-policy version 2", g, ref, ok)
		}
	}
	if ref, ok := got.For("g3"); ok {
		t.Errorf("group g3 has policy %+v, want none", ref)
	}

	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "host-policy", IMAPolicyAssignments{HostIDs: []string{"h1"}}))
	got, err = s.HostIMAPolicies(ctx, "h1")
	must(t, "HostIMAPolicies", err)
	for _, g := range []string{"g1", "g2", "g3"} {
		if ref, ok := got.For(g); !ok || ref.PolicyID != "host-policy" || ref.Version != 1 {
			t.Errorf("group %s of h1: policy %+v, want the host's own", g, ref)
		}
	}
	other, err := s.HostIMAPolicies(ctx, "h2")
	must(t, "HostIMAPolicies", err)
	if ref, ok := other.For("g1"); other.Host != nil || !ok || ref.PolicyID != "group-policy" {
		t.Errorf("h2: %+v, want the policy of g1", other)
	}

	// A second assignment replaces the first.
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "group-policy", IMAPolicyAssignments{HostIDs: []string{"h1"}}))
	a, err := s.IMAPolicyAssignmentsOf(ctx, "group-policy")
	must(t, "IMAPolicyAssignmentsOf", err)
	if !slices.Equal(a.HostIDs, []string{"h1"}) || !slices.Equal(a.GroupIDs, []string{"g1", "g2"}) {
		t.Errorf("assignments %+v", a)
	}
	if a, _ := s.IMAPolicyAssignmentsOf(ctx, "host-policy"); len(a.HostIDs)+len(a.GroupIDs) != 0 {
		t.Errorf("host-policy still assigned: %+v", a)
	}
}

func testIMAPolicyAssignUnknown(t *testing.T, s *Store) {
	ctx := t.Context()
	hostsIn(t, s, "g1", "h1")
	createIMAPolicy(t, s, "p1")
	wantErr(t, "unknown host", s.AssignIMAPolicy(ctx, "p1", IMAPolicyAssignments{HostIDs: []string{"h1", "nope"}}), ErrNotFound)
	wantErr(t, "unknown group", s.AssignIMAPolicy(ctx, "p1", IMAPolicyAssignments{GroupIDs: []string{"g1", "nope"}}), ErrNotFound)
	wantErr(t, "unknown policy", s.AssignIMAPolicy(ctx, "nope", IMAPolicyAssignments{HostIDs: []string{"h1"}}), ErrNotFound)
	if n := count(t, s, "ima_policy_hosts", "") + count(t, s, "ima_policy_groups", ""); n != 0 {
		t.Errorf("%d assignments stored, want none", n)
	}
}

func testIMAPolicyUnassign(t *testing.T, s *Store) {
	ctx := t.Context()
	hostsIn(t, s, "g1", "h1", "h2")
	createIMAPolicy(t, s, "p1")
	createIMAPolicy(t, s, "p2")
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "p1", IMAPolicyAssignments{HostIDs: []string{"h1"}, GroupIDs: []string{"g1"}}))
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "p2", IMAPolicyAssignments{HostIDs: []string{"h2"}}))
	n, err := s.UnassignIMAPolicy(ctx, "p1", IMAPolicyAssignments{HostIDs: []string{"h1", "h2"}, GroupIDs: []string{"g1"}})
	must(t, "UnassignIMAPolicy", err)
	if n != 2 {
		t.Errorf("%d assignments removed, want 2", n)
	}
	got, err := s.HostIMAPolicies(ctx, "h2")
	must(t, "HostIMAPolicies", err)
	if got.Host == nil || got.Host.PolicyID != "p2" {
		t.Errorf("h2 lost its policy p2: %+v", got)
	}
}

func testIMAPolicyDeleteAssigned(t *testing.T, s *Store) {
	ctx := t.Context()
	hostsIn(t, s, "g1", "h1")
	for _, a := range []IMAPolicyAssignments{{HostIDs: []string{"h1"}}, {GroupIDs: []string{"g1"}}} {
		createIMAPolicy(t, s, "p1")
		must(t, "AddIMAPolicyVersion", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("p1", 2, `{"v":2}`), nil))
		must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "p1", a))
		wantErr(t, "delete assigned", s.DeleteIMAPolicy(ctx, "p1", false), ErrConflict)
		if _, err := s.IMAPolicyByID(ctx, "p1"); err != nil {
			t.Fatalf("refused delete lost the policy: %v", err)
		}
		must(t, "forced delete", s.DeleteIMAPolicy(ctx, "p1", true))
		_, err := s.IMAPolicyByID(ctx, "p1")
		wantErr(t, "deleted policy", err, ErrNotFound)
		for _, table := range []string{"ima_policy_versions", "ima_policy_hosts", "ima_policy_groups"} {
			if n := count(t, s, table, ""); n != 0 {
				t.Errorf("%s: %d rows left", table, n)
			}
		}
	}
	createIMAPolicy(t, s, "free")
	must(t, "delete unassigned", s.DeleteIMAPolicy(ctx, "free", false))
}

func testIMAPolicyAssignmentCascades(t *testing.T, s *Store) {
	ctx := t.Context()
	group(t, s, "g1")
	group(t, s, "g2")
	must(t, "CreateHost", s.CreateHost(ctx, host("h1", "g1")))
	createIMAPolicy(t, s, "p1")
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "p1", IMAPolicyAssignments{HostIDs: []string{"h1"}, GroupIDs: []string{"g2"}}))
	must(t, "DeleteHost", s.DeleteHost(ctx, "h1"))
	must(t, "DeleteFlavorGroup", s.DeleteFlavorGroup(ctx, "g2"))
	a, err := s.IMAPolicyAssignmentsOf(ctx, "p1")
	must(t, "IMAPolicyAssignmentsOf", err)
	if len(a.HostIDs)+len(a.GroupIDs) != 0 {
		t.Errorf("assignments %+v left", a)
	}
	must(t, "delete unassigned", s.DeleteIMAPolicy(ctx, "p1", false))
}

func testUnknownIMAPolicy(t *testing.T, s *Store) {
	ctx := t.Context()
	_, err := s.IMAPolicyByID(ctx, "nope")
	wantErr(t, "IMAPolicyByID", err, ErrNotFound)
	_, err = s.IMAPolicyByName(ctx, "nope")
	wantErr(t, "IMAPolicyByName", err, ErrNotFound)
	_, err = s.IMAPolicyVersion(ctx, "nope", 0)
	wantErr(t, "IMAPolicyVersion", err, ErrNotFound)
	wantErr(t, "AddIMAPolicyVersion", s.AddIMAPolicyVersion(ctx, imaPolicyVersion("nope", 2, "{}"), nil), ErrNotFound)
	wantErr(t, "DeleteIMAPolicy", s.DeleteIMAPolicy(ctx, "nope", true), ErrNotFound)
	got, err := s.HostIMAPolicies(ctx, "no-host")
	must(t, "HostIMAPolicies", err)
	if got.Host != nil || len(got.Groups) != 0 {
		t.Errorf("unknown host has policies %+v", got)
	}
}
