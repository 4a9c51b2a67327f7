package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' "now"; times in the store are kept to the microsecond.
var t0 = time.Date(2026, 11, 27, 8, 0, 0, 123456000, time.UTC)

// runSuite tests every method against stores made by open, each test on a
// fresh, empty database.
func runSuite(t *testing.T, open func(t *testing.T) *Store) {
	runTests(t, open, []storeTest{
		{"a new store answers a ping", testPing},
		{"a created user reads back by name, by id and in the list", testUserRoundTrip},
		{"creating a user with a taken name or id conflicts", testUserConflict},
		{"operations on an unknown user report not found", testUnknownUser},
		{"password and lock changes are stored", testUserUpdates},
		{"creating a role with a taken id or triple conflicts", testRoleConflict},
		{"role permissions are stored, replaced and sorted", testRolePermissions},
		{"roles are added to users idempotently and removed", testUserRoles},
		{"deleting a user deletes its role assignments and login failures", testDeleteUserCascades},
		{"deleting a role takes it from its users", testDeleteRole},
		{"a user's login failures are cleared from every source", testLoginFailures},
		{"secrets are created once and put many times", testSecrets},
		{"ek registrations are found by digest and deleted", testEKRegistrations},
		{"an activation challenge is consumed once before it expires", testChallenges},
		{"expired challenges are deleted", testDeleteExpiredChallenges},
		{"ak enrollments are replaced per host and found by ak name", testAKEnrollments},
		{"a transaction commits everything or nothing", testInTx},
		{"twenty concurrent writers all succeed", testConcurrentWriters},
		{"of concurrent creates of one name exactly one wins", testConcurrentConflict},
		{"of concurrent consumers of one challenge exactly one wins", testConcurrentConsume},
	})
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func user(id string) User {
	return User{ID: id, Name: "name-" + id, PasswordHash: []byte("hash-" + id), CreatedAt: t0}
}

func role(id string, perms ...string) Role {
	return Role{ID: id, Service: "hvs", Name: "role-" + id, Context: "", Permissions: perms, CreatedAt: t0}
}

func equalUser(a, b User) bool {
	return a.ID == b.ID && a.Name == b.Name && bytes.Equal(a.PasswordHash, b.PasswordHash) &&
		a.LockedUntil.Equal(b.LockedUntil) && a.CreatedAt.Equal(b.CreatedAt)
}

func equalRole(a, b Role) bool {
	return a.ID == b.ID && a.Service == b.Service && a.Name == b.Name && a.Context == b.Context &&
		slices.Equal(a.Permissions, b.Permissions) && a.CreatedAt.Equal(b.CreatedAt)
}

func roleIDs(rs []Role) []string { return fieldOf(rs, func(r Role) string { return r.ID }) }

// fieldOf is the field of each of xs, in order.
func fieldOf[T any](xs []T, field func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, field(x))
	}
	return out
}

// count counts rows of a table, bypassing the store's methods.
func count(t testing.TB, s *Store, table, where string, args ...any) int {
	t.Helper()
	var n int
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	if err := s.rdb.QueryRowContext(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func testPing(t *testing.T, s *Store) {
	must(t, "Ping", s.Ping(t.Context()))
}

func testUserRoundTrip(t *testing.T, s *Store) {
	ctx := t.Context()
	locked := user("u1")
	locked.LockedUntil = t0.Add(time.Hour)
	want := []User{locked, user("u2")}
	for _, u := range want {
		must(t, "CreateUser", s.CreateUser(ctx, u))
	}
	for _, u := range want {
		got, err := s.UserByName(ctx, u.Name)
		must(t, "UserByName", err)
		if !equalUser(got, u) {
			t.Errorf("UserByName(%q) = %+v, want %+v", u.Name, got, u)
		}
		got, err = s.UserByID(ctx, u.ID)
		must(t, "UserByID", err)
		if !equalUser(got, u) {
			t.Errorf("UserByID(%q) = %+v, want %+v", u.ID, got, u)
		}
	}
	got, err := s.ListUsers(ctx)
	must(t, "ListUsers", err)
	if !slices.EqualFunc(got, want, equalUser) {
		t.Errorf("ListUsers = %+v, want %+v", got, want)
	}

	// A zero CreatedAt is set by the store.
	before := time.Now().Add(-time.Second)
	u := user("u3")
	u.CreatedAt = time.Time{}
	must(t, "CreateUser", s.CreateUser(ctx, u))
	got3, err := s.UserByID(ctx, "u3")
	must(t, "UserByID", err)
	if got3.CreatedAt.Before(before) || got3.CreatedAt.After(time.Now()) {
		t.Errorf("CreatedAt of a user created without one = %v, want about now", got3.CreatedAt)
	}
}

func testUserConflict(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, User{ID: "u1", Name: "alice", PasswordHash: []byte("h")}))
	tests := []struct {
		name string
		user User
	}{
		{"the same name with another id", User{ID: "u2", Name: "alice"}},
		{"the same id with another name", User{ID: "u1", Name: "bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateUser(ctx, tt.user)
			wantErr(t, "CreateUser", err, ErrConflict)
			if !strings.Contains(err.Error(), tt.user.Name) {
				t.Errorf("error %q does not name the user", err)
			}
		})
	}
	if n := count(t, s, "users", ""); n != 1 {
		t.Errorf("%d users after conflicts, want 1", n)
	}
}

func testUnknownUser(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateRole", s.CreateRole(ctx, role("r1")))
	tests := []struct {
		name string
		op   func() error
	}{
		{"UserByName", func() error { _, err := s.UserByName(ctx, "nobody"); return err }},
		{"UserByID", func() error { _, err := s.UserByID(ctx, "nobody"); return err }},
		{"UpdateUserPassword", func() error { return s.UpdateUserPassword(ctx, "nobody", []byte("h")) }},
		{"SetUserLockedUntil", func() error { return s.SetUserLockedUntil(ctx, "nobody", t0) }},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, "nobody") }},
		{"AddUserRoles", func() error { return s.AddUserRoles(ctx, "nobody", []string{"r1"}) }},
		{"RemoveUserRole", func() error { return s.RemoveUserRole(ctx, "nobody", "r1") }},
		{"UserRoles", func() error { _, err := s.UserRoles(ctx, "nobody"); return err }},
		{"RecordSourceLoginFailure", func() error {
			_, err := s.RecordSourceLoginFailure(ctx, "nobody", "A", t0, t0.Add(-time.Minute))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" reports not found", func(t *testing.T) {
			wantErr(t, tt.name, tt.op(), ErrNotFound)
		})
	}
	must(t, "ClearLoginFailures(unknown user)", s.ClearLoginFailures(ctx, "nobody"))
}

func testUserUpdates(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	must(t, "UpdateUserPassword", s.UpdateUserPassword(ctx, "u1", []byte("new")))
	until := t0.Add(15 * time.Minute)
	must(t, "SetUserLockedUntil", s.SetUserLockedUntil(ctx, "u1", until))
	got, err := s.UserByID(ctx, "u1")
	must(t, "UserByID", err)
	if string(got.PasswordHash) != "new" || !got.LockedUntil.Equal(until) {
		t.Errorf("after updates got hash %q locked until %v; want %q, %v", got.PasswordHash, got.LockedUntil, "new", until)
	}
	must(t, "SetUserLockedUntil(zero)", s.SetUserLockedUntil(ctx, "u1", time.Time{}))
	got, err = s.UserByID(ctx, "u1")
	must(t, "UserByID", err)
	if !got.LockedUntil.IsZero() {
		t.Errorf("after unlocking LockedUntil = %v, want zero", got.LockedUntil)
	}
}

func testRoleConflict(t *testing.T, s *Store) {
	ctx := t.Context()
	base := Role{ID: "r1", Service: "hvs", Name: "admin", Context: "site=a", Permissions: []string{"hosts:read"}}
	must(t, "CreateRole", s.CreateRole(ctx, base))
	tests := []struct {
		name string
		role Role
		want error
	}{
		{"the same service, name and context conflicts", Role{ID: "r2", Service: "hvs", Name: "admin", Context: "site=a"}, ErrConflict},
		{"the same id conflicts", Role{ID: "r1", Service: "aas", Name: "x"}, ErrConflict},
		{"another context is a new role", Role{ID: "r3", Service: "hvs", Name: "admin", Context: "site=b"}, nil},
		{"another service is a new role", Role{ID: "r4", Service: "cms", Name: "admin", Context: "site=a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateRole(ctx, tt.role)
			if tt.want == nil {
				must(t, "CreateRole", err)
				return
			}
			wantErr(t, "CreateRole", err, tt.want)
		})
	}
	got, err := s.RoleByID(ctx, "r1")
	must(t, "RoleByID", err)
	if !slices.Equal(got.Permissions, base.Permissions) || got.Name != "admin" {
		t.Errorf("role r1 after conflicts = %+v, want %+v", got, base)
	}
}

func testRolePermissions(t *testing.T, s *Store) {
	ctx := t.Context()
	r1 := role("r1", "b:write", "a:read", "a:read")
	must(t, "CreateRole", s.CreateRole(ctx, r1))
	must(t, "CreateRole", s.CreateRole(ctx, Role{ID: "r0", Service: "aas", Name: "z", CreatedAt: t0}))
	got, err := s.RoleByID(ctx, "r1")
	must(t, "RoleByID", err)
	r1.Permissions = []string{"a:read", "b:write"}
	if !equalRole(got, r1) {
		t.Errorf("RoleByID = %+v, want %+v", got, r1)
	}

	must(t, "SetRolePermissions", s.SetRolePermissions(ctx, "r1", []string{"c:*"}))
	must(t, "SetRolePermissions(empty)", s.SetRolePermissions(ctx, "r0", nil))
	roles, err := s.ListRoles(ctx)
	must(t, "ListRoles", err)
	want := []Role{
		{ID: "r0", Service: "aas", Name: "z", CreatedAt: t0},
		{ID: "r1", Service: "hvs", Name: "role-r1", Permissions: []string{"c:*"}, CreatedAt: t0},
	}
	if !slices.EqualFunc(roles, want, equalRole) {
		t.Errorf("ListRoles = %+v, want %+v", roles, want)
	}
	wantErr(t, "SetRolePermissions(unknown role)", s.SetRolePermissions(ctx, "nope", []string{"x"}), ErrNotFound)
	_, err = s.RoleByID(ctx, "nope")
	wantErr(t, "RoleByID(unknown role)", err, ErrNotFound)
}

func testUserRoles(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	must(t, "CreateRole", s.CreateRole(ctx, role("r1", "hosts:read")))
	must(t, "CreateRole", s.CreateRole(ctx, role("r2", "hosts:write", "hosts:read")))

	roles, err := s.UserRoles(ctx, "u1")
	if err != nil || len(roles) != 0 {
		t.Fatalf("UserRoles of a user without roles = %v, %v; want none", roles, err)
	}
	must(t, "AddUserRoles", s.AddUserRoles(ctx, "u1", []string{"r1", "r2"}))
	must(t, "AddUserRoles again", s.AddUserRoles(ctx, "u1", []string{"r2", "r1"}))
	roles, err = s.UserRoles(ctx, "u1")
	must(t, "UserRoles", err)
	if !slices.Equal(roleIDs(roles), []string{"r1", "r2"}) ||
		!slices.Equal(roles[1].Permissions, []string{"hosts:read", "hosts:write"}) {
		t.Errorf("UserRoles = %+v, want r1 and r2 with their permissions", roles)
	}

	// An unknown role among known ones assigns nothing.
	must(t, "CreateRole", s.CreateRole(ctx, role("r3")))
	wantErr(t, "AddUserRoles(unknown role)", s.AddUserRoles(ctx, "u1", []string{"r3", "nope"}), ErrNotFound)
	if n := count(t, s, "user_roles", "role_id = $1", "r3"); n != 0 {
		t.Errorf("a failed AddUserRoles assigned %d roles, want 0", n)
	}

	must(t, "RemoveUserRole", s.RemoveUserRole(ctx, "u1", "r1"))
	wantErr(t, "RemoveUserRole again", s.RemoveUserRole(ctx, "u1", "r1"), ErrNotFound)
	roles, err = s.UserRoles(ctx, "u1")
	must(t, "UserRoles", err)
	if !slices.Equal(roleIDs(roles), []string{"r2"}) {
		t.Errorf("UserRoles after removing r1 = %v, want [r2]", roleIDs(roles))
	}
}

func testDeleteUserCascades(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	must(t, "CreateUser", s.CreateUser(ctx, user("u2")))
	must(t, "CreateRole", s.CreateRole(ctx, role("r1", "p")))
	for _, u := range []string{"u1", "u2"} {
		must(t, "AddUserRoles", s.AddUserRoles(ctx, u, []string{"r1"}))
		_, err := s.RecordSourceLoginFailure(ctx, u, "A", t0, t0.Add(-time.Minute))
		must(t, "RecordSourceLoginFailure", err)
	}

	must(t, "DeleteUser", s.DeleteUser(ctx, "u1"))
	if n := count(t, s, "user_roles", "user_id = $1", "u1"); n != 0 {
		t.Errorf("%d role assignments left of the deleted user", n)
	}
	if n := count(t, s, "login_failures", "user_id = $1", "u1"); n != 0 {
		t.Errorf("%d login failures left of the deleted user", n)
	}
	_, err := s.UserByID(ctx, "u1")
	wantErr(t, "UserByID(deleted)", err, ErrNotFound)
	// The other user and the role are untouched.
	roles, err := s.UserRoles(ctx, "u2")
	must(t, "UserRoles", err)
	if !slices.Equal(roleIDs(roles), []string{"r1"}) {
		t.Errorf("UserRoles(u2) = %v, want [r1]", roleIDs(roles))
	}
	if n := count(t, s, "login_failures", "user_id = $1", "u2"); n != 1 {
		t.Errorf("%d login failures of u2, want 1", n)
	}
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx, "u1"), ErrNotFound)
}

func testDeleteRole(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	must(t, "CreateRole", s.CreateRole(ctx, role("r1", "p1")))
	must(t, "CreateRole", s.CreateRole(ctx, role("r2", "p2")))
	must(t, "AddUserRoles", s.AddUserRoles(ctx, "u1", []string{"r1", "r2"}))

	must(t, "DeleteRole", s.DeleteRole(ctx, "r1"))
	roles, err := s.UserRoles(ctx, "u1")
	must(t, "UserRoles", err)
	if !slices.Equal(roleIDs(roles), []string{"r2"}) {
		t.Errorf("UserRoles after deleting r1 = %v, want [r2]", roleIDs(roles))
	}
	if n := count(t, s, "role_permissions", "role_id = $1", "r1"); n != 0 {
		t.Errorf("%d permissions left of the deleted role", n)
	}
	_, err = s.RoleByID(ctx, "r1")
	wantErr(t, "RoleByID(deleted)", err, ErrNotFound)
	wantErr(t, "DeleteRole again", s.DeleteRole(ctx, "r1"), ErrNotFound)
}

func testLoginFailures(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	must(t, "CreateUser", s.CreateUser(ctx, user("u2")))
	for _, f := range []struct{ user, source string }{{"u1", "A"}, {"u1", "B"}, {"u1", "B"}, {"u2", "A"}} {
		_, err := s.RecordSourceLoginFailure(ctx, f.user, f.source, t0, t0.Add(-time.Minute))
		must(t, "RecordSourceLoginFailure", err)
	}
	must(t, "ClearLoginFailures", s.ClearLoginFailures(ctx, "u1"))
	if n := count(t, s, "login_failures", "user_id = $1", "u1"); n != 0 {
		t.Errorf("after clearing, u1 has %d failures, want 0 from every source", n)
	}
	if n := count(t, s, "login_failures", "user_id = $1", "u2"); n != 1 {
		t.Errorf("clearing u1 left u2 with %d failures, want 1", n)
	}
}

func testSecrets(t *testing.T, s *Store) {
	ctx := t.Context()
	_, err := s.GetSecret(ctx, "ca-key")
	wantErr(t, "GetSecret(missing)", err, ErrNotFound)

	must(t, "CreateSecret", s.CreateSecret(ctx, "ca-key", []byte{0, 1, 2, 0xff}))
	wantErr(t, "CreateSecret again", s.CreateSecret(ctx, "ca-key", []byte("other")), ErrConflict)
	v, err := s.GetSecret(ctx, "ca-key")
	must(t, "GetSecret", err)
	if !bytes.Equal(v, []byte{0, 1, 2, 0xff}) {
		t.Errorf("GetSecret after a conflicting create = %x, want the first value", v)
	}

	must(t, "PutSecret(existing)", s.PutSecret(ctx, "ca-key", []byte("replaced")))
	must(t, "PutSecret(new)", s.PutSecret(ctx, "nats-operator", []byte("op")))
	must(t, "PutSecret(empty)", s.PutSecret(ctx, "empty", nil))
	for name, want := range map[string]string{"ca-key": "replaced", "nats-operator": "op", "empty": ""} {
		v, err := s.GetSecret(ctx, name)
		must(t, "GetSecret", err)
		if string(v) != want {
			t.Errorf("GetSecret(%q) = %q, want %q", name, v, want)
		}
	}
}

func testEKRegistrations(t *testing.T, s *Store) {
	ctx := t.Context()
	r1 := EKRegistration{ID: "e1", HardwareUUID: "hw-1", Description: "rack 1", EKPublicSHA256: strings.Repeat("ab", 32),
		EKPublic: []byte("spki-1"), CreatedAt: t0}
	r2 := EKRegistration{ID: "e2", HardwareUUID: "hw-2", EKPublicSHA256: strings.Repeat("cd", 32),
		EKPublic: []byte("spki-2"), CreatedAt: t0.Add(time.Second)}
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, r2))
	must(t, "CreateEKRegistration", s.CreateEKRegistration(ctx, r1))
	dup := r1
	dup.ID = "e3"
	wantErr(t, "CreateEKRegistration(same digest)", s.CreateEKRegistration(ctx, dup), ErrConflict)

	equal := func(a, b EKRegistration) bool {
		return a.ID == b.ID && a.HardwareUUID == b.HardwareUUID && a.Description == b.Description &&
			a.EKPublicSHA256 == b.EKPublicSHA256 && bytes.Equal(a.EKPublic, b.EKPublic) && a.CreatedAt.Equal(b.CreatedAt)
	}
	got, err := s.EKRegistrationByDigest(ctx, strings.ToUpper(r1.EKPublicSHA256))
	must(t, "EKRegistrationByDigest", err)
	if !equal(got, r1) {
		t.Errorf("EKRegistrationByDigest = %+v, want %+v", got, r1)
	}
	list, err := s.ListEKRegistrations(ctx)
	must(t, "ListEKRegistrations", err)
	if !slices.EqualFunc(list, []EKRegistration{r1, r2}, equal) {
		t.Errorf("ListEKRegistrations = %+v, want r1, r2 (oldest first)", list)
	}

	must(t, "DeleteEKRegistration", s.DeleteEKRegistration(ctx, "e1"))
	_, err = s.EKRegistrationByDigest(ctx, r1.EKPublicSHA256)
	wantErr(t, "EKRegistrationByDigest(deleted)", err, ErrNotFound)
	wantErr(t, "DeleteEKRegistration again", s.DeleteEKRegistration(ctx, "e1"), ErrNotFound)
}

func challenge(id string, expires time.Time) ActivationChallenge {
	return ActivationChallenge{ID: id, HostID: "host-" + id, AKPublic: []byte("akpub"), AKName: []byte("akname"),
		EKPublic: []byte("ekpub"), EKCertificate: []byte("ekcert"), SecretSHA256: []byte("digest"),
		PCRBanks: []string{"SHA256", "SHA384"}, ExpiresAt: expires, CreatedAt: t0}
}

func testChallenges(t *testing.T, s *Store) {
	ctx := t.Context()
	c := challenge("c1", t0.Add(time.Minute))
	must(t, "CreateChallenge", s.CreateChallenge(ctx, c))
	wantErr(t, "CreateChallenge(same id)", s.CreateChallenge(ctx, c), ErrConflict)
	must(t, "CreateChallenge", s.CreateChallenge(ctx, challenge("c2", t0.Add(time.Minute))))
	must(t, "CreateChallenge", s.CreateChallenge(ctx, challenge("c3", t0.Add(time.Minute))))

	got, err := s.ConsumeChallenge(ctx, "c1", t0)
	must(t, "ConsumeChallenge", err)
	if got.ID != c.ID || got.HostID != c.HostID || !bytes.Equal(got.AKPublic, c.AKPublic) ||
		!bytes.Equal(got.AKName, c.AKName) || !bytes.Equal(got.EKPublic, c.EKPublic) ||
		!bytes.Equal(got.EKCertificate, c.EKCertificate) || !bytes.Equal(got.SecretSHA256, c.SecretSHA256) ||
		!got.ExpiresAt.Equal(c.ExpiresAt) || !got.CreatedAt.Equal(c.CreatedAt) ||
		!slices.Equal(got.PCRBanks, c.PCRBanks) {
		t.Errorf("ConsumeChallenge = %+v, want %+v", got, c)
	}

	tests := []struct {
		name    string
		id      string
		now     time.Time
		want    error
		message string
	}{
		{"consuming it again is a replay", "c1", t0, ErrChallengeUsed, ""},
		{"an unknown challenge is not found", "nope", t0, ErrNotFound, ""},
		{"a challenge at its expiry time has expired", "c2", t0.Add(time.Minute), ErrNotFound, "expired"},
		{"a challenge after its expiry time has expired", "c2", t0.Add(time.Hour), ErrNotFound, "expired"},
		{"a challenge just before its expiry time is consumed", "c3", t0.Add(time.Minute - time.Microsecond), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ConsumeChallenge(ctx, tt.id, tt.now)
			if tt.want == nil {
				must(t, "ConsumeChallenge", err)
				return
			}
			wantErr(t, "ConsumeChallenge", err, tt.want)
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
			if tt.message == "" && strings.Contains(err.Error(), "expired") {
				t.Errorf("error %q says expired", err)
			}
		})
	}
}

func testDeleteExpiredChallenges(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateChallenge", s.CreateChallenge(ctx, challenge("old", t0)))
	must(t, "CreateChallenge", s.CreateChallenge(ctx, challenge("new", t0.Add(time.Minute))))
	n, err := s.DeleteExpiredChallenges(ctx, t0)
	must(t, "DeleteExpiredChallenges", err)
	if n != 1 {
		t.Errorf("DeleteExpiredChallenges deleted %d, want 1", n)
	}
	_, err = s.ConsumeChallenge(ctx, "old", t0.Add(-time.Hour))
	wantErr(t, "ConsumeChallenge(deleted)", err, ErrNotFound)
	_, err = s.ConsumeChallenge(ctx, "new", t0)
	must(t, "ConsumeChallenge(kept)", err)
}

func testAKEnrollments(t *testing.T, s *Store) {
	ctx := t.Context()
	e := AKEnrollment{HostID: "h1", AKName: []byte{0, 0xb, 1}, AKPublic: []byte("pub"), AKCertificate: []byte("cert"),
		EKCertificate: []byte("ekcert"), EKPublicSHA256: strings.Repeat("ef", 32), CreatedAt: t0,
		PCRBanks: []string{"SHA256", "SHA384"}}
	equal := func(a, b AKEnrollment) bool {
		return a.HostID == b.HostID && bytes.Equal(a.AKName, b.AKName) && bytes.Equal(a.AKPublic, b.AKPublic) &&
			bytes.Equal(a.AKCertificate, b.AKCertificate) && bytes.Equal(a.EKCertificate, b.EKCertificate) &&
			a.EKPublicSHA256 == b.EKPublicSHA256 && a.CreatedAt.Equal(b.CreatedAt) &&
			slices.Equal(a.PCRBanks, b.PCRBanks)
	}
	_, err := s.AKEnrollmentByHost(ctx, "h1")
	wantErr(t, "AKEnrollmentByHost(missing)", err, ErrNotFound)
	must(t, "PutAKEnrollment", s.PutAKEnrollment(ctx, e))
	got, err := s.AKEnrollmentByHost(ctx, "h1")
	must(t, "AKEnrollmentByHost", err)
	if !equal(got, e) {
		t.Errorf("AKEnrollmentByHost = %+v, want %+v", got, e)
	}
	got, err = s.AKEnrollmentByName(ctx, e.AKName)
	must(t, "AKEnrollmentByName", err)
	if !equal(got, e) {
		t.Errorf("AKEnrollmentByName = %+v, want %+v", got, e)
	}

	// Re-enrollment with a new AK replaces the old one.
	e2 := e
	e2.AKName, e2.AKCertificate, e2.CreatedAt = []byte{0, 0xb, 2}, []byte("cert2"), t0.Add(time.Hour)
	e2.PCRBanks = nil // an older agent that names no banks
	must(t, "PutAKEnrollment(re-enrollment)", s.PutAKEnrollment(ctx, e2))
	got, err = s.AKEnrollmentByHost(ctx, "h1")
	must(t, "AKEnrollmentByHost", err)
	if !equal(got, e2) {
		t.Errorf("AKEnrollmentByHost after re-enrollment = %+v, want %+v", got, e2)
	}
	_, err = s.AKEnrollmentByName(ctx, e.AKName)
	wantErr(t, "AKEnrollmentByName(replaced AK)", err, ErrNotFound)

	other := e2
	other.HostID, other.EKPublicSHA256 = "h2", strings.Repeat("12", 32)
	wantErr(t, "PutAKEnrollment(another host, same AK)", s.PutAKEnrollment(ctx, other), ErrConflict)
}

func testInTx(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateRole", s.CreateRole(ctx, role("r1", "p")))
	errBoom := errors.New("boom")
	err := s.InTx(ctx, func(tx *Tx) error {
		must(t, "CreateUser in tx", tx.CreateUser(ctx, user("u1")))
		must(t, "AddUserRoles in tx", tx.AddUserRoles(ctx, "u1", []string{"r1"}))
		if _, err := tx.UserByID(ctx, "u1"); err != nil {
			t.Errorf("the transaction does not see its own user: %v", err)
		}
		return errBoom
	})
	wantErr(t, "InTx", err, errBoom)
	_, err = s.UserByID(ctx, "u1")
	wantErr(t, "UserByID after rollback", err, ErrNotFound)
	if n := count(t, s, "user_roles", ""); n != 0 {
		t.Errorf("%d role assignments after rollback, want 0", n)
	}

	err = s.InTx(ctx, func(tx *Tx) error {
		if err := tx.CreateUser(ctx, user("u1")); err != nil {
			return err
		}
		return tx.AddUserRoles(ctx, "u1", []string{"r1"})
	})
	must(t, "InTx", err)
	roles, err := s.UserRoles(ctx, "u1")
	must(t, "UserRoles", err)
	if !slices.Equal(roleIDs(roles), []string{"r1"}) {
		t.Errorf("UserRoles after commit = %v, want [r1]", roleIDs(roles))
	}

	// A failing statement inside rolls back the earlier ones.
	err = s.InTx(ctx, func(tx *Tx) error {
		if err := tx.PutSecret(ctx, "k", []byte("v")); err != nil {
			return err
		}
		return tx.CreateUser(ctx, user("u1")) // conflicts
	})
	wantErr(t, "InTx", err, ErrConflict)
	_, err = s.GetSecret(ctx, "k")
	wantErr(t, "GetSecret after rollback", err, ErrNotFound)
}

func testConcurrentWriters(t *testing.T, s *Store) {
	ctx := t.Context()
	const n = 20
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("u%02d", i)
			if err := s.CreateUser(ctx, user(id)); err != nil {
				errs <- err
				return
			}
			if _, err := s.RecordSourceLoginFailure(ctx, id, "A", t0, t0.Add(-time.Minute)); err != nil {
				errs <- err
				return
			}
			if _, err := s.UserByName(ctx, "name-"+id); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent writer: %v", err)
	}
	users, err := s.ListUsers(ctx)
	must(t, "ListUsers", err)
	if len(users) != n {
		t.Errorf("%d users after %d concurrent creates", len(users), n)
	}
}

func testConcurrentConflict(t *testing.T, s *Store) {
	ctx := t.Context()
	exactlyOneWins(t, "CreateUser", ErrConflict, func(i int) error {
		return s.CreateUser(ctx, User{ID: fmt.Sprint(i), Name: "alice"})
	})
}

func testConcurrentConsume(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateChallenge", s.CreateChallenge(ctx, challenge("c1", t0.Add(time.Minute))))
	exactlyOneWins(t, "ConsumeChallenge", ErrChallengeUsed, func(int) error {
		_, err := s.ConsumeChallenge(ctx, "c1", t0)
		return err
	})
}

// exactlyOneWins makes ten calls of do at once and wants one to succeed and
// every other to fail with loser.
func exactlyOneWins(t *testing.T, what string, loser error, do func(i int) error) {
	t.Helper()
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = do(i) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			t.Errorf("%s: %v, want nil or %v", what, err, loser)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent %s calls succeeded, want 1", wins, n, what)
	}
}

// runSharedSuite tests what takes several stores on one database; newDSN
// names a fresh, empty database each time.
func runSharedSuite(t *testing.T, newDSN func(t *testing.T) string) {
	t.Run("reopening a database applies no migration twice", func(t *testing.T) {
		dsn := newDSN(t)
		s, err := Open(t.Context(), dsn)
		must(t, "Open", err)
		must(t, "CreateUser", s.CreateUser(t.Context(), user("u1")))
		must(t, "Close", s.Close())

		s = openTest(t, dsn)
		if _, err := s.UserByID(t.Context(), "u1"); err != nil {
			t.Errorf("user lost on reopen: %v", err)
		}
		checkMigrations(t, s)
	})

	t.Run("stores opened at once on a fresh database migrate it once", func(t *testing.T) {
		dsn := newDSN(t)
		const n = 4
		stores := make([]*Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dsn) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("concurrent Open: %v", errs[i])
				continue
			}
			t.Cleanup(func() { _ = stores[i].Close() })
		}
		if errs[0] == nil {
			checkMigrations(t, stores[0])
		}
	})

	t.Run("two stores on one database write at once", func(t *testing.T) {
		dsn := newDSN(t)
		a, b := openTest(t, dsn), openTest(t, dsn)
		const n = 10
		errs := make(chan error, 2*n)
		var wg sync.WaitGroup
		for i := range n {
			for j, s := range []*Store{a, b} {
				wg.Go(func() {
					id := fmt.Sprintf("s%d-u%02d", j, i)
					if err := s.InTx(t.Context(), func(tx *Tx) error {
						if err := tx.CreateUser(t.Context(), user(id)); err != nil {
							return err
						}
						return tx.PutSecret(t.Context(), "last-writer", []byte(id))
					}); err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent writer: %v", err)
		}
		users, err := b.ListUsers(t.Context())
		must(t, "ListUsers", err)
		if len(users) != 2*n {
			t.Errorf("%d users after %d concurrent creates through two stores", len(users), 2*n)
		}
	})

	t.Run("a migration file added later is applied on the next open", func(t *testing.T) {
		s := openTest(t, newDSN(t))
		fsys := withMigrations(t, map[string]string{
			"9000_later.sql": "CREATE TABLE later (id TEXT PRIMARY KEY);\nINSERT INTO later (id) VALUES ('x');",
		})
		must(t, "migrate", migrate(t.Context(), s.wdb, s.backend, fsys))
		must(t, "migrate again", migrate(t.Context(), s.wdb, s.backend, fsys))
		if n := count(t, s, "later", ""); n != 1 {
			t.Errorf("the later migration ran %d times, want once", n)
		}
		if n := count(t, s, "schema_migrations", "version = $1", 9000); n != 1 {
			t.Errorf("migration 9000 recorded %d times, want once", n)
		}
	})

	t.Run("a failing migration leaves the schema as it was", func(t *testing.T) {
		s := openTest(t, newDSN(t))
		fsys := withMigrations(t, map[string]string{
			"9000_good.sql": "CREATE TABLE good (id TEXT PRIMARY KEY);",
			"9001_bad.sql":  "CREATE TABLE bad (id TEXT PRIMARY KEY); SELECT no_such_column FROM bad;",
		})
		err := migrate(t.Context(), s.wdb, s.backend, fsys)
		if err == nil || !strings.Contains(err.Error(), "9001_bad.sql") {
			t.Fatalf("migrate with a bad migration = %v, want an error naming 9001_bad.sql", err)
		}
		if n := count(t, s, "schema_migrations", "version >= $1", 9000); n != 0 {
			t.Errorf("%d of the failed batch's migrations recorded, want 0", n)
		}
		if _, err := s.rdb.ExecContext(context.Background(), "SELECT id FROM good"); err == nil {
			t.Errorf("table of the failed batch exists")
		}
		checkMigrations(t, s)
	})
}

// checkMigrations checks that each embedded migration is recorded once.
func checkMigrations(t *testing.T, s *Store) {
	t.Helper()
	ms, err := loadMigrations(migrationFiles)
	must(t, "loadMigrations", err)
	for _, m := range ms {
		if n := count(t, s, "schema_migrations", "version = $1", m.version); n != 1 {
			t.Errorf("migration %s recorded %d times, want once", m.name, n)
		}
	}
	if n := count(t, s, "schema_migrations", "version < $1", 9000); n != len(ms) {
		t.Errorf("%d migrations recorded, want %d", n, len(ms))
	}
}
