package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// User is an AAS user. ID is chosen by the caller (a UUID string).
type User struct {
	ID, Name     string
	PasswordHash []byte
	LockedUntil  time.Time // zero: not locked
	CreatedAt    time.Time
	// TokenGeneration is carried in the user's tokens; the store moves it on
	// when the password changes or a role or permission is taken away, which
	// revokes every token issued before. CreateUser ignores it (starts at 0).
	TokenGeneration int64
}

// Role is an AAS role: a name within a service, optionally narrowed by a
// context, granting permissions.
type Role struct {
	ID, Service, Name, Context string
	Permissions                []string // sorted, without duplicates
	CreatedAt                  time.Time
}

// CreateUser stores a new user; ErrConflict if the ID or name is taken.
func (q *queries) CreateUser(ctx context.Context, u User) error {
	_, err := q.w.ExecContext(ctx,
		`INSERT INTO users (id, name, password_hash, locked_until, created_at) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Name, dbBytes(u.PasswordHash), dbTime(u.LockedUntil), createdAt(u.CreatedAt))
	return created(err, fmt.Sprintf("user %q", u.Name))
}

const userColumns = `id, name, password_hash, locked_until, created_at, token_generation`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var (
		u                   User
		lockedUntil, create sql.NullInt64
	)
	if err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &lockedUntil, &create, &u.TokenGeneration); err != nil {
		return User{}, err
	}
	u.LockedUntil = fromDBTime(lockedUntil)
	u.CreatedAt = fromDBTime(create)
	return u, nil
}

// UserByName returns the user called name; ErrNotFound if there is none.
func (q *queries) UserByName(ctx context.Context, name string) (User, error) {
	return queryOne(ctx, q.r, fmt.Sprintf("user %q", name), scanUser, `SELECT `+userColumns+` FROM users WHERE name = $1`, name)
}

// UserByID returns the user with the ID; ErrNotFound if there is none.
func (q *queries) UserByID(ctx context.Context, id string) (User, error) {
	return queryOne(ctx, q.r, fmt.Sprintf("user id %q", id), scanUser, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// ListUsers returns all users ordered by name.
func (q *queries) ListUsers(ctx context.Context) ([]User, error) {
	us, err := queryAll(ctx, q.r, "list users", scanUser, `SELECT `+userColumns+` FROM users`)
	if err != nil {
		return nil, err
	}
	// Sorted here, not by ORDER BY, so both backends agree whatever the collation.
	slices.SortFunc(us, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return us, nil
}

// UpdateUserPassword replaces the user's password hash and revokes the
// user's tokens (moves TokenGeneration on); ErrNotFound for an unknown user.
func (q *queries) UpdateUserPassword(ctx context.Context, id string, hash []byte) error {
	res, err := q.w.ExecContext(ctx,
		`UPDATE users SET password_hash = $2, token_generation = token_generation + 1 WHERE id = $1`, id, dbBytes(hash))
	return oneRow(res, err, fmt.Sprintf("update password of user id %q", id))
}

// SetUserLockedUntil locks the user until t; the zero t unlocks.
// ErrNotFound for an unknown user.
func (q *queries) SetUserLockedUntil(ctx context.Context, id string, t time.Time) error {
	res, err := q.w.ExecContext(ctx, `UPDATE users SET locked_until = $2 WHERE id = $1`, id, dbTime(t))
	return oneRow(res, err, fmt.Sprintf("lock user id %q", id))
}

// DeleteUser deletes the user with its role assignments and login failures;
// ErrNotFound for an unknown user.
func (q *queries) DeleteUser(ctx context.Context, id string) error {
	res, err := q.w.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
	return oneRow(res, err, fmt.Sprintf("delete user id %q", id))
}

// oneRow turns the result of a statement that must touch a row into nil,
// an ErrNotFound or a wrapped error; what describes the operation.
func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// CreateRole stores a new role with its permissions; ErrConflict if the ID or
// the (service, name, context) triple is taken.
func (q *queries) CreateRole(ctx context.Context, r Role) error {
	return q.atomic(ctx, func(q *queries) error {
		_, err := q.w.ExecContext(ctx,
			`INSERT INTO roles (id, service, name, context, created_at) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, r.Service, r.Name, r.Context, createdAt(r.CreatedAt))
		if err = classify(err); errors.Is(err, errUnique) {
			return fmt.Errorf("role %s/%s (context %q): %w", r.Service, r.Name, r.Context, ErrConflict)
		} else if err != nil {
			return fmt.Errorf("create role %s/%s: %w", r.Service, r.Name, err)
		}
		return q.insertPermissions(ctx, r.ID, r.Permissions)
	})
}

func (q *queries) insertPermissions(ctx context.Context, roleID string, perms []string) error {
	for _, p := range perms {
		if _, err := q.w.ExecContext(ctx,
			`INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			roleID, p); err != nil {
			return fmt.Errorf("set permissions of role id %q: %w", roleID, err)
		}
	}
	return nil
}

// Roles are read with their permissions in one query (a LEFT JOIN: one row
// per permission, or one row with a NULL permission for a role without any).
const roleSelect = `SELECT r.id, r.service, r.name, r.context, r.created_at, p.permission
	FROM roles r LEFT JOIN role_permissions p ON p.role_id = r.id`

func (q *queries) queryRoles(ctx context.Context, query string, args ...any) ([]Role, error) {
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports iteration errors
	var roles []Role
	index := map[string]int{}
	for rows.Next() {
		var (
			r      Role
			create sql.NullInt64
			perm   sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.Service, &r.Name, &r.Context, &create, &perm); err != nil {
			return nil, err
		}
		i, ok := index[r.ID]
		if !ok {
			r.CreatedAt = fromDBTime(create)
			i = len(roles)
			index[r.ID] = i
			roles = append(roles, r)
		}
		if perm.Valid {
			roles[i].Permissions = append(roles[i].Permissions, perm.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range roles {
		slices.Sort(roles[i].Permissions)
	}
	slices.SortFunc(roles, func(a, b Role) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Name, b.Name),
			strings.Compare(a.Context, b.Context), strings.Compare(a.ID, b.ID))
	})
	return roles, nil
}

// RoleByID returns the role with its permissions; ErrNotFound if there is none.
func (q *queries) RoleByID(ctx context.Context, id string) (Role, error) {
	roles, err := q.queryRoles(ctx, roleSelect+` WHERE r.id = $1`, id)
	if err != nil {
		return Role{}, fmt.Errorf("read role id %q: %w", id, err)
	}
	if len(roles) == 0 {
		return Role{}, fmt.Errorf("role id %q: %w", id, ErrNotFound)
	}
	return roles[0], nil
}

// ListRoles returns all roles with their permissions, ordered by service,
// name and context.
func (q *queries) ListRoles(ctx context.Context) ([]Role, error) {
	roles, err := q.queryRoles(ctx, roleSelect)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	return roles, nil
}

// DeleteRole deletes the role, its permissions and its assignments to users,
// and revokes the tokens of the users who held it; ErrNotFound for an
// unknown role.
func (q *queries) DeleteRole(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		if err := q.revokeRoleHolders(ctx, id); err != nil {
			return err
		}
		res, err := q.w.ExecContext(ctx, `DELETE FROM roles WHERE id = $1`, id)
		return oneRow(res, err, fmt.Sprintf("delete role id %q", id))
	})
}

// revokeRoleHolders moves on the token generation of every user holding the role.
func (q *queries) revokeRoleHolders(ctx context.Context, roleID string) error {
	if _, err := q.w.ExecContext(ctx,
		`UPDATE users SET token_generation = token_generation + 1
		 WHERE id IN (SELECT user_id FROM user_roles WHERE role_id = $1)`, roleID); err != nil {
		return fmt.Errorf("revoke tokens of the holders of role id %q: %w", roleID, err)
	}
	return nil
}

// RevokeUserTokens moves the user's token generation on, so that every token
// issued to the user before is refused; ErrNotFound for an unknown user.
func (q *queries) RevokeUserTokens(ctx context.Context, id string) error {
	res, err := q.w.ExecContext(ctx, `UPDATE users SET token_generation = token_generation + 1 WHERE id = $1`, id)
	return oneRow(res, err, fmt.Sprintf("revoke tokens of user id %q", id))
}

// SetRolePermissions replaces the role's permissions and revokes the tokens
// of the users who hold the role (their tokens carry the old permissions);
// ErrNotFound for an unknown role.
func (q *queries) SetRolePermissions(ctx context.Context, roleID string, perms []string) error {
	return q.atomic(ctx, func(q *queries) error {
		if err := q.roleExists(ctx, roleID); err != nil {
			return err
		}
		if err := q.revokeRoleHolders(ctx, roleID); err != nil {
			return err
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM role_permissions WHERE role_id = $1`, roleID); err != nil {
			return fmt.Errorf("set permissions of role id %q: %w", roleID, err)
		}
		return q.insertPermissions(ctx, roleID, perms)
	})
}

func (q *queries) roleExists(ctx context.Context, id string) error {
	return q.exists(ctx, `SELECT 1 FROM roles WHERE id = $1`, id, fmt.Sprintf("role id %q", id))
}

func (q *queries) userExists(ctx context.Context, id string) error {
	return q.exists(ctx, `SELECT 1 FROM users WHERE id = $1`, id, fmt.Sprintf("user id %q", id))
}

func (q *queries) exists(ctx context.Context, query, id, what string) error {
	var one int
	err := q.r.QueryRowContext(ctx, query, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// AddUserRoles assigns the roles to the user; roles it already has are
// skipped. ErrNotFound if the user or any role is unknown (then nothing is
// assigned).
func (q *queries) AddUserRoles(ctx context.Context, userID string, roleIDs []string) error {
	return q.atomic(ctx, func(q *queries) error {
		if err := q.userExists(ctx, userID); err != nil {
			return err
		}
		for _, roleID := range roleIDs {
			if err := q.roleExists(ctx, roleID); err != nil {
				return err
			}
			_, err := q.w.ExecContext(ctx,
				`INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				userID, roleID)
			if err = classify(err); errors.Is(err, errForeignKey) { // deleted meanwhile
				return fmt.Errorf("user id %q or role id %q: %w", userID, roleID, ErrNotFound)
			} else if err != nil {
				return fmt.Errorf("add role id %q to user id %q: %w", roleID, userID, err)
			}
		}
		return nil
	})
}

// RemoveUserRole takes the role from the user and revokes the user's tokens;
// ErrNotFound if the user does not have it.
func (q *queries) RemoveUserRole(ctx context.Context, userID, roleID string) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2`, userID, roleID)
		if err := oneRow(res, err, fmt.Sprintf("role id %q of user id %q", roleID, userID)); err != nil {
			return err
		}
		return q.RevokeUserTokens(ctx, userID)
	})
}

// UserRoles returns the user's roles with their permissions; ErrNotFound for
// an unknown user.
func (q *queries) UserRoles(ctx context.Context, userID string) ([]Role, error) {
	roles, err := q.queryRoles(ctx, roleSelect+` JOIN user_roles u ON u.role_id = r.id WHERE u.user_id = $1`, userID)
	if err != nil {
		return nil, fmt.Errorf("read roles of user id %q: %w", userID, err)
	}
	if len(roles) == 0 {
		if err := q.userExists(ctx, userID); err != nil {
			return nil, err
		}
	}
	return roles, nil
}

// ClearLoginFailures forgets the user's failed logins.
func (q *queries) ClearLoginFailures(ctx context.Context, userID string) error {
	if _, err := q.w.ExecContext(ctx, `DELETE FROM login_failures WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("clear login failures of user id %q: %w", userID, err)
	}
	return nil
}
