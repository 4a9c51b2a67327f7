package aas

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAWrongPasswordAndAnUnknownUserLookTheSame(t *testing.T) {
	f := newFixture(t)
	wrong := f.login(t, "admin", "not the password at all")
	unknown := f.login(t, "nobody", "not the password at all")
	if wrong.Code != http.StatusUnauthorized || unknown.Code != http.StatusUnauthorized {
		t.Fatalf("status %d and %d, want 401", wrong.Code, unknown.Code)
	}
	if wrong.Body.String() != unknown.Body.String() {
		t.Errorf("bodies differ: %q vs %q", wrong.Body, unknown.Body)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t)
	bad := func() int { return f.login(t, "admin", "wrong password 123").Code }
	good := func() int { return f.login(t, "admin", adminPassword).Code }
	locked := func() bool {
		u, err := f.store.UserByName(t.Context(), "admin")
		if err != nil {
			t.Fatal(err)
		}
		until, err := f.store.LoginSourceLockedUntil(t.Context(), u.ID, "192.0.2.1") // httptest's peer
		if err != nil {
			t.Fatal(err)
		}
		return f.clock.Now().Before(until)
	}

	for i := range 4 {
		if c := bad(); c != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, c)
		}
		f.clock.Advance(time.Second)
	}
	if locked() {
		t.Fatal("locked after 4 failures")
	}
	if c := bad(); c != http.StatusUnauthorized || !locked() {
		t.Fatalf("5th failure: status %d, locked %v; want 401 and locked", c, locked())
	}
	lockedBody := f.login(t, "admin", adminPassword)
	if lockedBody.Code != http.StatusUnauthorized {
		t.Fatalf("right password while locked: status %d, want 401", lockedBody.Code)
	}
	if wrong := f.login(t, "nobody", "x"); wrong.Body.String() != lockedBody.Body.String() {
		t.Errorf("a locked account answers %q, an unknown user %q; they must look the same", lockedBody.Body, wrong.Body)
	}
	f.clock.Advance(14 * time.Minute)
	if c := good(); c != http.StatusUnauthorized {
		t.Fatalf("right password after 14 minutes: status %d, want 401", c)
	}
	f.clock.Advance(time.Minute)
	if c := good(); c != http.StatusOK {
		t.Fatalf("right password after 15 minutes: status %d, want 200", c)
	}
}

func TestFailuresOutsideTheWindowDoNotLock(t *testing.T) {
	f := newFixture(t)
	for range 10 {
		f.login(t, "admin", "wrong password 123")
		f.clock.Advance(76 * time.Second) // 4 failures per 5 minutes at most
	}
	if c := f.login(t, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("status %d, want 200", c)
	}
}

func TestASuccessfulLoginClearsTheFailures(t *testing.T) {
	f := newFixture(t)
	for range 4 {
		f.login(t, "admin", "wrong password 123")
	}
	if c := f.login(t, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("status %d", c)
	}
	for range 4 {
		f.login(t, "admin", "wrong password 123")
	}
	if c := f.login(t, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("locked after 4+4 failures split by a success: status %d", c)
	}
}

func TestLockoutLimitsComeFromTheConfig(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LockoutFailures = 2; c.LockoutDuration = time.Minute })
	f.login(t, "admin", "wrong password 123")
	f.login(t, "admin", "wrong password 123")
	if c := f.login(t, "admin", adminPassword).Code; c != http.StatusUnauthorized {
		t.Fatalf("status %d, want locked", c)
	}
	f.clock.Advance(time.Minute)
	if c := f.login(t, "admin", adminPassword).Code; c != http.StatusOK {
		t.Fatalf("status %d, want unlocked", c)
	}
}

func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from the file, long enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      func(*Config)
		existing bool
		wantErr  error
		loginPW  string
	}{
		{name: "the admin password comes from the file without its trailing newline",
			cfg: func(c *Config) { c.AdminPassword = ""; c.AdminPasswordFile = file }, loginPW: "from the file, long enough"},
		{name: "the admin password comes from the value", cfg: func(*Config) {}, loginPW: adminPassword},
		{name: "no user and no password is refused",
			cfg: func(c *Config) { c.AdminPassword = "" }, wantErr: ErrNoAdminPassword},
		{name: "a password of only a newline is refused",
			cfg: func(c *Config) { c.AdminPassword = "\n" }, wantErr: ErrNoAdminPassword},
		{name: "a short admin password is refused",
			cfg: func(c *Config) { c.AdminPassword = "short" }, wantErr: ErrWeakPassword},
		{name: "a missing password file is refused",
			cfg: func(c *Config) { c.AdminPassword = ""; c.AdminPasswordFile = filepath.Join(dir, "none") }, wantErr: os.ErrNotExist},
		{name: "existing users need no password",
			cfg: func(c *Config) { c.AdminPassword = "" }, existing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			cfg := testConfig(clock)
			tt.cfg(&cfg)
			store := newFakeStore()
			if tt.existing {
				if err := store.CreateUser(t.Context(), User{ID: "1", Name: "someone"}); err != nil {
					t.Fatal(err)
				}
			}
			a, err := New(context.Background(), cfg, store, newFakeCA(t, clock.Now), &fakeCreds{}, discardLogger())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New: %v, want %v", err, tt.wantErr)
				}
				if users, _ := store.ListUsers(t.Context()); len(users) != 0 {
					t.Errorf("a refused bootstrap created users: %v", users)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tt.loginPW != "" {
				if _, err := a.Login(t.Context(), "admin", tt.loginPW); err != nil {
					t.Fatalf("admin login: %v", err)
				}
			}
			if tt.existing {
				if _, err := store.UserByName(t.Context(), "admin"); !errors.Is(err, ErrNotFound) {
					t.Errorf("an admin was created although users exist: %v", err)
				}
			}
		})
	}
}

func TestTheSigningKeySurvivesARestart(t *testing.T) {
	clock := newFakeClock()
	store := newFakeStore()
	var kids []string
	for range 2 {
		a, err := New(context.Background(), testConfig(clock), store, newFakeCA(t, clock.Now), &fakeCreds{}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, a.KeyID())
	}
	if kids[0] != kids[1] {
		t.Fatalf("kid changed across restarts: %v", kids)
	}
	if users, _ := store.ListUsers(t.Context()); len(users) != 1 {
		t.Errorf("%d users after two starts, want 1", len(users))
	}
}

func TestConfigProblemsAreReportedTogether(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(clock)
	cfg.TokenValidity = -time.Second
	cfg.LockoutFailures = -1
	cfg.AdminPasswordFile = "/x"
	_, err := New(context.Background(), cfg, newFakeStore(), newFakeCA(t, clock.Now), &fakeCreds{}, discardLogger())
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"token validity", "lockout failures", "both as a file and as a value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPasswordHashes(t *testing.T) {
	p := Argon2Params{Memory: 64, Time: 1, Threads: 1}
	h, err := hashPassword("a long enough password", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(h), "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string", h)
	}
	tests := []struct {
		name   string
		pw     string
		hash   string
		want   bool
		wantEr error
	}{
		{"the right password matches", "a long enough password", string(h), true, nil},
		{"a wrong password does not match", "a long enough passwore", string(h), false, nil},
		{"a bcrypt hash is refused", "x", "$2a$10$abcdefghijklmnopqrstuu", false, ErrBadHash},
		{"a huge memory cost is refused", "x", "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43), false, ErrBadHash},
		{"argon2i is refused", "x", strings.Replace(string(h), "argon2id", "argon2i", 1), false, ErrBadHash},
		{"an empty hash is refused", "x", "", false, ErrBadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := verifyPassword(tt.pw, []byte(tt.hash))
			if ok != tt.want || !errors.Is(err, tt.wantEr) {
				t.Fatalf("verifyPassword = %v, %v; want %v, %v", ok, err, tt.want, tt.wantEr)
			}
		})
	}
}
