// Package aasstore adapts the verifier's store to aas.Store. It lives apart
// from package aas so that the processes that only verify tokens (the
// attestation manager, tcctl) do not link the SQL drivers.
package aasstore

import (
	"context"
	"errors"
	"time"

	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Store is an aas.Store over a *store.Store.
type Store struct{ s *store.Store }

var _ aas.Store = (*Store)(nil)

// New returns the adapter.
func New(s *store.Store) *Store { return &Store{s: s} }

// translated keeps the store's message and makes errors.Is see both the
// store's sentinel and the aas one.
type translated struct{ err, sentinel error }

func (t translated) Error() string   { return t.err.Error() }
func (t translated) Unwrap() []error { return []error{t.err, t.sentinel} }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return translated{err, aas.ErrNotFound}
	case errors.Is(err, store.ErrConflict):
		return translated{err, aas.ErrConflict}
	}
	return err
}

func toUser(u store.User) aas.User {
	return aas.User{ID: u.ID, Name: u.Name, PasswordHash: u.PasswordHash, LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt,
		TokenGeneration: u.TokenGeneration}
}

func toRole(r store.Role) aas.Role {
	return aas.Role{ID: r.ID, Service: r.Service, Name: r.Name, Context: r.Context, Permissions: r.Permissions, CreatedAt: r.CreatedAt}
}

func roles(rs []store.Role, err error) ([]aas.Role, error) { return convertAll(rs, err, toRole) }

// convertAll converts the result of a store listing.
func convertAll[S, T any](xs []S, err error, convert func(S) T) ([]T, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = convert(x)
	}
	return out, nil
}

// CreateUser implements aas.Store.
func (a *Store) CreateUser(ctx context.Context, u aas.User) error {
	return mapErr(a.s.CreateUser(ctx, store.User{ID: u.ID, Name: u.Name, PasswordHash: u.PasswordHash, LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt}))
}

// UserByName implements aas.Store.
func (a *Store) UserByName(ctx context.Context, name string) (aas.User, error) {
	u, err := a.s.UserByName(ctx, name)
	return toUser(u), mapErr(err)
}

// UserByID implements aas.Store.
func (a *Store) UserByID(ctx context.Context, id string) (aas.User, error) {
	u, err := a.s.UserByID(ctx, id)
	return toUser(u), mapErr(err)
}

// ListUsers implements aas.Store.
func (a *Store) ListUsers(ctx context.Context) ([]aas.User, error) {
	us, err := a.s.ListUsers(ctx)
	return convertAll(us, err, toUser)
}

// UpdateUserPassword implements aas.Store.
func (a *Store) UpdateUserPassword(ctx context.Context, id string, hash []byte) error {
	return mapErr(a.s.UpdateUserPassword(ctx, id, hash))
}

// SetUserLockedUntil implements aas.Store.
func (a *Store) SetUserLockedUntil(ctx context.Context, id string, t time.Time) error {
	return mapErr(a.s.SetUserLockedUntil(ctx, id, t))
}

// DeleteUser implements aas.Store.
func (a *Store) DeleteUser(ctx context.Context, id string) error {
	return mapErr(a.s.DeleteUser(ctx, id))
}

// CreateRole implements aas.Store.
func (a *Store) CreateRole(ctx context.Context, r aas.Role) error {
	return mapErr(a.s.CreateRole(ctx, store.Role{ID: r.ID, Service: r.Service, Name: r.Name, Context: r.Context, Permissions: r.Permissions, CreatedAt: r.CreatedAt}))
}

// RoleByID implements aas.Store.
func (a *Store) RoleByID(ctx context.Context, id string) (aas.Role, error) {
	r, err := a.s.RoleByID(ctx, id)
	return toRole(r), mapErr(err)
}

// ListRoles implements aas.Store.
func (a *Store) ListRoles(ctx context.Context) ([]aas.Role, error) { return roles(a.s.ListRoles(ctx)) }

// DeleteRole implements aas.Store.
func (a *Store) DeleteRole(ctx context.Context, id string) error {
	return mapErr(a.s.DeleteRole(ctx, id))
}

// SetRolePermissions implements aas.Store.
func (a *Store) SetRolePermissions(ctx context.Context, roleID string, perms []string) error {
	return mapErr(a.s.SetRolePermissions(ctx, roleID, perms))
}

// AddUserRoles implements aas.Store.
func (a *Store) AddUserRoles(ctx context.Context, userID string, roleIDs []string) error {
	return mapErr(a.s.AddUserRoles(ctx, userID, roleIDs))
}

// RemoveUserRole implements aas.Store.
func (a *Store) RemoveUserRole(ctx context.Context, userID, roleID string) error {
	return mapErr(a.s.RemoveUserRole(ctx, userID, roleID))
}

// UserRoles implements aas.Store.
func (a *Store) UserRoles(ctx context.Context, userID string) ([]aas.Role, error) {
	return roles(a.s.UserRoles(ctx, userID))
}

// RecordSourceLoginFailure implements aas.Store.
func (a *Store) RecordSourceLoginFailure(ctx context.Context, userID, source string, at, since time.Time) (int, error) {
	n, err := a.s.RecordSourceLoginFailure(ctx, userID, source, at, since)
	return n, mapErr(err)
}

// LockLoginSource implements aas.Store.
func (a *Store) LockLoginSource(ctx context.Context, userID, source string, until, now time.Time) error {
	return mapErr(a.s.LockLoginSource(ctx, userID, source, until, now))
}

// LoginSourceLockedUntil implements aas.Store.
func (a *Store) LoginSourceLockedUntil(ctx context.Context, userID, source string) (time.Time, error) {
	t, err := a.s.LoginSourceLockedUntil(ctx, userID, source)
	return t, mapErr(err)
}

// ClearSourceLoginFailures implements aas.Store.
func (a *Store) ClearSourceLoginFailures(ctx context.Context, userID, source string) error {
	return mapErr(a.s.ClearSourceLoginFailures(ctx, userID, source))
}

// CountLoginSourceFailure implements aas.Store.
func (a *Store) CountLoginSourceFailure(ctx context.Context, source string, at, since time.Time) (int, error) {
	n, err := a.s.CountLoginSourceFailure(ctx, source, at, since)
	return n, mapErr(err)
}

// RefuseLoginSource implements aas.Store.
func (a *Store) RefuseLoginSource(ctx context.Context, source string, until, now time.Time) error {
	return mapErr(a.s.RefuseLoginSource(ctx, source, until, now))
}

// LoginSourceRefusedUntil implements aas.Store.
func (a *Store) LoginSourceRefusedUntil(ctx context.Context, source string) (time.Time, error) {
	t, err := a.s.LoginSourceRefusedUntil(ctx, source)
	return t, mapErr(err)
}

// ClearLoginLocks implements aas.Store.
func (a *Store) ClearLoginLocks(ctx context.Context, userID string) error {
	return mapErr(a.s.ClearLoginLocks(ctx, userID))
}

// ClearLoginFailures implements aas.Store.
func (a *Store) ClearLoginFailures(ctx context.Context, userID string) error {
	return mapErr(a.s.ClearLoginFailures(ctx, userID))
}

// GetSecret implements aas.Store.
func (a *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	v, err := a.s.GetSecret(ctx, name)
	return v, mapErr(err)
}

// CreateSecret implements aas.Store.
func (a *Store) CreateSecret(ctx context.Context, name string, value []byte) error {
	return mapErr(a.s.CreateSecret(ctx, name, value))
}
