package aas

import (
	"context"
	"errors"
	"time"
)

// The store package of the verifier did not exist when this package was
// written, so the records and sentinels the AAS needs are declared here; the
// composition root adapts the real store to Store (its methods have the same
// names and shapes; only the record types and sentinels differ).

// User is a stored user. PasswordHash is an argon2id PHC string and never
// leaves this package in a response.
type User struct {
	ID           string
	Name         string
	PasswordHash []byte
	LockedUntil  time.Time // zero: not locked
	CreatedAt    time.Time
	// TokenGeneration is carried in the user's tokens ("ugen"); the store
	// moves it on when the password changes or a role or permission is
	// taken away, which revokes the tokens issued before (see revoke.go).
	TokenGeneration int64
}

// Role is a stored role {service, name, context} with its permission rules.
type Role struct {
	ID          string
	Service     string
	Name        string
	Context     string
	Permissions []string
	CreatedAt   time.Time
}

// ErrNotFound and ErrConflict are the sentinels Store errors wrap (errors.Is).
// An adapter over the real store translates its sentinels into these.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// UserStore keeps users.
type UserStore interface {
	CreateUser(ctx context.Context, u User) error
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	UpdateUserPassword(ctx context.Context, id string, hash []byte) error
	SetUserLockedUntil(ctx context.Context, id string, t time.Time) error
	DeleteUser(ctx context.Context, id string) error
}

// RoleStore keeps roles, their permissions and their assignment to users.
type RoleStore interface {
	CreateRole(ctx context.Context, r Role) error
	RoleByID(ctx context.Context, id string) (Role, error)
	ListRoles(ctx context.Context) ([]Role, error)
	DeleteRole(ctx context.Context, id string) error
	SetRolePermissions(ctx context.Context, roleID string, perms []string) error
	AddUserRoles(ctx context.Context, userID string, roleIDs []string) error
	RemoveUserRole(ctx context.Context, userID, roleID string) error
	UserRoles(ctx context.Context, userID string) ([]Role, error)
}

// LoginFailureStore counts failed logins per (user, source) and locks a
// user out for one source, and counts them per source across users and
// refuses a source (see lockout.go). Replicas share it.
type LoginFailureStore interface {
	// RecordSourceLoginFailure notes a failure at at, forgets every failure
	// before since and returns the user's failures from source since then.
	RecordSourceLoginFailure(ctx context.Context, userID, source string, at, since time.Time) (int, error)
	// LockLoginSource locks the user out for source until until and clears
	// the user's failures from source; it forgets the locks expired at now.
	LockLoginSource(ctx context.Context, userID, source string, until, now time.Time) error
	// LoginSourceLockedUntil is the zero time when there is no lock.
	LoginSourceLockedUntil(ctx context.Context, userID, source string) (time.Time, error)
	ClearSourceLoginFailures(ctx context.Context, userID, source string) error
	ClearLoginFailures(ctx context.Context, userID string) error // every source
	ClearLoginLocks(ctx context.Context, userID string) error    // every source

	// CountLoginSourceFailure notes a failed login from source, of any
	// user or none, and returns the source's failures in its window (one
	// that started at or before since is over; this failure starts the
	// next).
	CountLoginSourceFailure(ctx context.Context, source string, at, since time.Time) (int, error)
	// RefuseLoginSource refuses every login from source until until and
	// starts its count again.
	RefuseLoginSource(ctx context.Context, source string, until, now time.Time) error
	// LoginSourceRefusedUntil is the zero time when the source is not refused.
	LoginSourceRefusedUntil(ctx context.Context, source string) (time.Time, error)
}

// SecretStore keeps named secrets (the token signing key).
type SecretStore interface {
	GetSecret(ctx context.Context, name string) ([]byte, error)
	CreateSecret(ctx context.Context, name string, value []byte) error
}

// Store is everything the AAS keeps. It is the union of the small interfaces
// above so that a part can be faked alone.
type Store interface {
	UserStore
	RoleStore
	LoginFailureStore
	SecretStore
}
