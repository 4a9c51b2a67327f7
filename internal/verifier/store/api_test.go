package store

import (
	"context"
	"time"
)

// The services code against these exact signatures; this breaks the build if
// one drifts.
var _ interface {
	Close() error
	Ping(ctx context.Context) error
	InTx(ctx context.Context, fn func(tx *Tx) error) error

	CreateUser(ctx context.Context, u User) error
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	UpdateUserPassword(ctx context.Context, id string, hash []byte) error
	SetUserLockedUntil(ctx context.Context, id string, t time.Time) error
	DeleteUser(ctx context.Context, id string) error
	CreateRole(ctx context.Context, r Role) error
	RoleByID(ctx context.Context, id string) (Role, error)
	ListRoles(ctx context.Context) ([]Role, error)
	DeleteRole(ctx context.Context, id string) error
	SetRolePermissions(ctx context.Context, roleID string, perms []string) error
	AddUserRoles(ctx context.Context, userID string, roleIDs []string) error
	RemoveUserRole(ctx context.Context, userID, roleID string) error
	UserRoles(ctx context.Context, userID string) ([]Role, error)
	ClearLoginFailures(ctx context.Context, userID string) error

	GetSecret(ctx context.Context, name string) ([]byte, error)
	CreateSecret(ctx context.Context, name string, value []byte) error
	PutSecret(ctx context.Context, name string, value []byte) error

	CreateEKRegistration(ctx context.Context, r EKRegistration) error
	EKRegistrationByDigest(ctx context.Context, digest string) (EKRegistration, error)
	ListEKRegistrations(ctx context.Context) ([]EKRegistration, error)
	DeleteEKRegistration(ctx context.Context, id string) error
	CreateChallenge(ctx context.Context, c ActivationChallenge) error
	ConsumeChallenge(ctx context.Context, id string, now time.Time) (ActivationChallenge, error)
	PutAKEnrollment(ctx context.Context, e AKEnrollment) error
	AKEnrollmentByHost(ctx context.Context, hostID string) (AKEnrollment, error)
	AKEnrollmentByName(ctx context.Context, akName []byte) (AKEnrollment, error)
} = (*Store)(nil)
