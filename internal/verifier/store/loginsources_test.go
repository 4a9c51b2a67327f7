package store

import (
	"fmt"
	"testing"
	"time"
)

// Failed logins per (user, source) (migration 0017). Run on SQLite file,
// SQLite memory and PostgreSQL.

func TestLoginSources(t *testing.T) {
	t.Parallel()
	tests := []storeTest{
		{"failures are counted per user and source within the window", testSourceFailuresCount},
		{"a lock holds for its user and source only and is lifted by ClearLoginLocks", testSourceLocks},
		{"old failures and expired locks are deleted as new ones are written", testSourceStateIsPruned},
		{"failures and locks of an unknown user are refused and of a deleted user deleted", testSourceUnknownUser},
		{"failures per source, across users, are counted in windows and refuse the source", testSourceThrottle},
		{"sources whose window and refusal are over are forgotten", testSourceThrottleIsPruned},
	}
	for name, backend := range backends() {
		t.Run(name, func(t *testing.T) { t.Parallel(); runTests(t, backend(t), tests) })
	}
}

func testSourceFailuresCount(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	must(t, "CreateUser", s.CreateUser(ctx, user("u2")))
	record := func(u, src string, at time.Time) int {
		t.Helper()
		n, err := s.RecordSourceLoginFailure(ctx, u, src, at, at.Add(-5*time.Minute))
		must(t, "RecordSourceLoginFailure", err)
		return n
	}
	for i := range 3 {
		if n := record("u1", "A", t0.Add(time.Duration(i)*time.Second)); n != i+1 {
			t.Fatalf("failure %d from A counted %d", i+1, n)
		}
	}
	if n := record("u1", "B", t0.Add(3*time.Second)); n != 1 {
		t.Errorf("first failure from B counted %d, want 1: sources are not apart", n)
	}
	if n := record("u2", "A", t0.Add(3*time.Second)); n != 1 {
		t.Errorf("first failure of u2 from A counted %d, want 1: users are not apart", n)
	}
	if n := record("u1", "A", t0.Add(5*time.Minute+time.Second)); n != 3 {
		t.Errorf("a failure 5 minutes later counted %d, want 3 (the first left the window)", n)
	}
	must(t, "ClearSourceLoginFailures", s.ClearSourceLoginFailures(ctx, "u1", "A"))
	if n := record("u1", "B", t0.Add(5*time.Minute+2*time.Second)); n != 2 {
		t.Errorf("B counted %d, want 2: clearing A's failures touched B's", n)
	}
	if n := record("u1", "A", t0.Add(5*time.Minute+3*time.Second)); n != 1 {
		t.Errorf("A counted %d after its failures were cleared, want 1", n)
	}
}

func testSourceLocks(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	lockedUntil := func(src string) time.Time {
		t.Helper()
		until, err := s.LoginSourceLockedUntil(ctx, "u1", src)
		must(t, "LoginSourceLockedUntil", err)
		return until
	}
	if got := lockedUntil("A"); !got.IsZero() {
		t.Fatalf("locked until %v before any lock", got)
	}
	_, err := s.RecordSourceLoginFailure(ctx, "u1", "A", t0, t0.Add(-time.Minute))
	must(t, "RecordSourceLoginFailure", err)
	until := t0.Add(15 * time.Minute)
	must(t, "LockLoginSource", s.LockLoginSource(ctx, "u1", "A", until, t0))
	if got := lockedUntil("A"); !got.Equal(until) {
		t.Errorf("A locked until %v, want %v", got, until)
	}
	if got := lockedUntil("B"); !got.IsZero() {
		t.Errorf("B locked until %v: a lock from A locked B", got)
	}
	if n := count(t, s, "login_failures", "user_id = $1 AND source = $2", "u1", "A"); n != 0 {
		t.Errorf("%d failures from A left after its lock", n)
	}
	later := until.Add(time.Minute)
	must(t, "LockLoginSource again", s.LockLoginSource(ctx, "u1", "A", later, t0))
	if got := lockedUntil("A"); !got.Equal(later) {
		t.Errorf("A locked again until %v, want %v", got, later)
	}
	must(t, "ClearLoginLocks", s.ClearLoginLocks(ctx, "u1"))
	if got := lockedUntil("A"); !got.IsZero() {
		t.Errorf("A locked until %v after ClearLoginLocks", got)
	}
}

func testSourceStateIsPruned(t *testing.T, s *Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	for i := range 10 {
		src := string(rune('a' + i))
		_, err := s.RecordSourceLoginFailure(ctx, "u1", src, t0, t0.Add(-time.Minute))
		must(t, "RecordSourceLoginFailure", err)
		must(t, "LockLoginSource", s.LockLoginSource(ctx, "u1", src+"-locked", t0.Add(time.Minute), t0))
	}
	later := t0.Add(time.Hour)
	_, err := s.RecordSourceLoginFailure(ctx, "u1", "z", later, later.Add(-time.Minute))
	must(t, "RecordSourceLoginFailure", err)
	must(t, "LockLoginSource", s.LockLoginSource(ctx, "u1", "z", later.Add(time.Minute), later))
	if n := count(t, s, "login_failures", ""); n != 0 {
		t.Errorf("%d failures left, want 0 (old ones deleted, z's cleared by its lock)", n)
	}
	if n := count(t, s, "login_locks", ""); n != 1 {
		t.Errorf("%d locks left, want 1 (the expired ones deleted)", n)
	}
}

func testSourceUnknownUser(t *testing.T, s *Store) {
	ctx := t.Context()
	_, err := s.RecordSourceLoginFailure(ctx, "nobody", "A", t0, t0)
	wantErr(t, "RecordSourceLoginFailure(unknown user)", err, ErrNotFound)
	wantErr(t, "LockLoginSource(unknown user)", s.LockLoginSource(ctx, "nobody", "A", t0, t0), ErrNotFound)
	must(t, "CreateUser", s.CreateUser(ctx, user("u1")))
	_, err = s.RecordSourceLoginFailure(ctx, "u1", "A", t0, t0)
	must(t, "RecordSourceLoginFailure", err)
	must(t, "LockLoginSource", s.LockLoginSource(ctx, "u1", "B", t0.Add(time.Hour), t0))
	must(t, "DeleteUser", s.DeleteUser(ctx, "u1"))
	if n := count(t, s, "login_failures", ""); n != 0 {
		t.Errorf("%d failures left of the deleted user", n)
	}
	if n := count(t, s, "login_locks", ""); n != 0 {
		t.Errorf("%d locks left of the deleted user", n)
	}
}

// Failed logins per source, whatever the user (migration 0020).

func testSourceThrottle(t *testing.T, s *Store) {
	ctx := t.Context()
	const window = 5 * time.Minute
	fail := func(src string, at time.Time) int {
		t.Helper()
		n, err := s.CountLoginSourceFailure(ctx, src, at, at.Add(-window))
		must(t, "CountLoginSourceFailure", err)
		return n
	}
	for i := range 3 {
		if n := fail("A", t0.Add(time.Duration(i)*time.Minute)); n != i+1 {
			t.Fatalf("failure %d from A counted %d", i+1, n)
		}
	}
	if n := fail("B", t0.Add(3*time.Minute)); n != 1 {
		t.Errorf("first failure from B counted %d, want 1: sources are not apart", n)
	}
	// A's window started at t0: a failure at t0+5m starts the next one.
	if n := fail("A", t0.Add(window)); n != 1 {
		t.Errorf("failure from A after its window counted %d, want 1", n)
	}
	if n := fail("A", t0.Add(window+time.Minute)); n != 2 {
		t.Errorf("second failure of A's new window counted %d, want 2", n)
	}

	if until, err := s.LoginSourceRefusedUntil(ctx, "A"); err != nil || !until.IsZero() {
		t.Fatalf("LoginSourceRefusedUntil(A) before a refusal = %v, %v; want zero", until, err)
	}
	until := t0.Add(time.Hour).UTC()
	must(t, "RefuseLoginSource", s.RefuseLoginSource(ctx, "A", until, t0.Add(window+time.Minute)))
	if got, err := s.LoginSourceRefusedUntil(ctx, "A"); err != nil || !got.Equal(until) {
		t.Errorf("LoginSourceRefusedUntil(A) = %v, %v; want %v", got, err, until)
	}
	if got, err := s.LoginSourceRefusedUntil(ctx, "B"); err != nil || !got.IsZero() {
		t.Errorf("LoginSourceRefusedUntil(B) = %v, %v; want zero: refusals are per source", got, err)
	}
	if n := fail("A", t0.Add(window+2*time.Minute)); n != 1 {
		t.Errorf("first failure after the refusal counted %d, want 1: a refusal starts the count again", n)
	}
	if got, _ := s.LoginSourceRefusedUntil(ctx, "A"); !got.Equal(until) {
		t.Errorf("a failure moved the refusal to %v, want it kept at %v", got, until)
	}
	if got, err := s.LoginSourceRefusedUntil(ctx, "never-failed"); err != nil || !got.IsZero() {
		t.Errorf("LoginSourceRefusedUntil(unknown source) = %v, %v; want zero", got, err)
	}
}

func testSourceThrottleIsPruned(t *testing.T, s *Store) {
	ctx := t.Context()
	const window = 5 * time.Minute
	for i := range 50 {
		if _, err := s.CountLoginSourceFailure(ctx, fmt.Sprintf("spray-%d", i), t0, t0.Add(-window)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, "RefuseLoginSource", s.RefuseLoginSource(ctx, "refused", t0.Add(time.Hour), t0))
	later := t0.Add(window + time.Second)
	if _, err := s.CountLoginSourceFailure(ctx, "late", later, later.Add(-window)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "login_source_throttle", ""); n != 2 {
		t.Errorf("%d sources kept after their windows, want 2: the refused one and the late one", n)
	}
	if got, _ := s.LoginSourceRefusedUntil(ctx, "refused"); got.IsZero() {
		t.Error("a source still refused was forgotten")
	}
	end := t0.Add(2 * time.Hour)
	if _, err := s.CountLoginSourceFailure(ctx, "last", end, end.Add(-window)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "login_source_throttle", ""); n != 1 {
		t.Errorf("%d sources kept after every window and refusal ended, want 1", n)
	}
}
