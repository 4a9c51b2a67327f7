package store

import (
	"context"
	"testing"
)

// Token revocation: the store moves a user's token generation on whenever the
// user loses a password, a role or a permission, so that the AAS refuses the
// user's older tokens. Run on SQLite file, SQLite memory and PostgreSQL.

func TestTokenGeneration(t *testing.T) {
	t.Parallel()
	for name, backend := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runTokenGenerationSuite(t, backend(t))
		})
	}
}

// The method the AAS codes against; this breaks the build if it drifts.
var _ interface {
	RevokeUserTokens(ctx context.Context, id string) error
} = (*Tx)(nil)

func runTokenGenerationSuite(t *testing.T, open func(t *testing.T) *Store) {
	generation := func(t *testing.T, s *Store, id string) int64 {
		t.Helper()
		u, err := s.UserByID(t.Context(), id)
		must(t, "UserByID", err)
		return u.TokenGeneration
	}
	// setup: u1 and u2 hold r1; u2 also holds r2; u3 holds nothing.
	setup := func(t *testing.T) *Store {
		s := open(t)
		ctx := t.Context()
		for _, id := range []string{"u1", "u2", "u3"} {
			must(t, "CreateUser", s.CreateUser(ctx, user(id)))
		}
		must(t, "CreateRole", s.CreateRole(ctx, role("r1", "hosts:read:*")))
		must(t, "CreateRole", s.CreateRole(ctx, role("r2", "hosts:write:*")))
		must(t, "AddUserRoles", s.AddUserRoles(ctx, "u1", []string{"r1"}))
		must(t, "AddUserRoles", s.AddUserRoles(ctx, "u2", []string{"r1", "r2"}))
		return s
	}
	tests := []struct {
		name    string
		change  func(t *testing.T, s *Store) error
		revoked []string // users whose generation moves on; the others keep 0
	}{
		{"a new user starts at generation zero", func(*testing.T, *Store) error { return nil }, nil},
		{"a password change revokes that user's tokens", func(t *testing.T, s *Store) error {
			return s.UpdateUserPassword(t.Context(), "u1", []byte("new hash"))
		}, []string{"u1"}},
		{"removing a role from a user revokes that user's tokens", func(t *testing.T, s *Store) error {
			return s.RemoveUserRole(t.Context(), "u2", "r2")
		}, []string{"u2"}},
		{"deleting a role revokes the tokens of every holder", func(t *testing.T, s *Store) error {
			return s.DeleteRole(t.Context(), "r1")
		}, []string{"u1", "u2"}},
		{"changing a role's permissions revokes the tokens of every holder", func(t *testing.T, s *Store) error {
			return s.SetRolePermissions(t.Context(), "r2", nil)
		}, []string{"u2"}},
		{"an explicit revocation moves only that user on", func(t *testing.T, s *Store) error {
			return s.RevokeUserTokens(t.Context(), "u3")
		}, []string{"u3"}},
		{"adding a role revokes nothing", func(t *testing.T, s *Store) error {
			return s.AddUserRoles(t.Context(), "u3", []string{"r2"})
		}, nil},
		{"locking an account revokes nothing", func(t *testing.T, s *Store) error {
			return s.SetUserLockedUntil(t.Context(), "u1", t0)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setup(t)
			must(t, "change", tt.change(t, s))
			for _, id := range []string{"u1", "u2", "u3"} {
				want := int64(0)
				for _, r := range tt.revoked {
					if r == id {
						want = 1
					}
				}
				if got := generation(t, s, id); got != want {
					t.Errorf("generation of %s = %d, want %d", id, got, want)
				}
			}
		})
	}
	t.Run("a failed change revokes nothing", func(t *testing.T) {
		s := setup(t)
		wantErr(t, "RemoveUserRole(role not held)", s.RemoveUserRole(t.Context(), "u1", "r2"), ErrNotFound)
		wantErr(t, "RevokeUserTokens(unknown user)", s.RevokeUserTokens(t.Context(), "nope"), ErrNotFound)
		if got := generation(t, s, "u1"); got != 0 {
			t.Errorf("generation of u1 = %d after a failed removal, want 0", got)
		}
	})
	t.Run("a user created with a generation starts at zero anyway", func(t *testing.T) {
		s := open(t)
		u := user("u9")
		u.TokenGeneration = 7
		must(t, "CreateUser", s.CreateUser(t.Context(), u))
		if got := generation(t, s, "u9"); got != 0 {
			t.Errorf("generation = %d, want 0", got)
		}
	})
}
