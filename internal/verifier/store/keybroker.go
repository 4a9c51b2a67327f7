package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Key broker secrets (issue 17). Each secret has a release policy (the key
// broker's JSON, opaque here), a version that counts rotations and a value.
// The value is a named secret of the secrets table (secrets.go), called
// "key-broker/<id>/v<version>": it is sealed at rest under the
// key-encryption key like every other secret, re-sealed by
// [Store.SealSecrets] when that key rotates, and the name is associated data,
// so a sealed value copied to another secret or version does not open.
// Values are never logged or put in errors; only
// [queries.BrokerSecretValue] returns one.

// BrokerSecret is a key broker secret without its value.
type BrokerSecret struct {
	ID, Name string
	// Version is 1 at creation and grows by one with every new value.
	Version int64
	// Policy is the release policy as the key broker encodes it.
	Policy               []byte
	CreatedAt, UpdatedAt time.Time
}

// BrokerValueName is the name of the secrets row that holds the value of
// version of the broker secret id.
func BrokerValueName(id string, version int64) string {
	return "key-broker/" + id + "/v" + strconv.FormatInt(version, 10)
}

const brokerSecretColumns = `id, name, version, policy, created_at, updated_at` //nolint:gosec // G101: column names, not a credential

func scanBrokerSecret(row interface{ Scan(...any) error }) (BrokerSecret, error) {
	var (
		s                BrokerSecret
		policy           string
		created, updated sql.NullInt64
	)
	if err := row.Scan(&s.ID, &s.Name, &s.Version, &policy, &created, &updated); err != nil {
		return BrokerSecret{}, err
	}
	s.Policy = []byte(policy)
	s.CreatedAt, s.UpdatedAt = fromDBTime(created), fromDBTime(updated)
	return s, nil
}

// CreateBrokerSecret stores a new secret at version 1 with its value.
// ErrConflict if the id or the name is taken.
func (q *queries) CreateBrokerSecret(ctx context.Context, s BrokerSecret, value []byte) error {
	if s.ID == "" || s.Name == "" {
		return errors.New("create broker secret: id and name are required")
	}
	return q.atomic(ctx, func(q *queries) error {
		at := createdAt(s.CreatedAt)
		_, err := q.w.ExecContext(ctx, `INSERT INTO key_broker_secrets (id, name, version, policy, created_at, updated_at)
			VALUES ($1, $2, 1, $3, $4, $4)`, s.ID, s.Name, string(s.Policy), at)
		if err := created(err, fmt.Sprintf("broker secret %q", s.Name)); err != nil {
			return err
		}
		return q.PutSecret(ctx, BrokerValueName(s.ID, 1), value)
	})
}

// BrokerSecretByID returns the secret without its value; ErrNotFound if
// there is none.
func (q *queries) BrokerSecretByID(ctx context.Context, id string) (BrokerSecret, error) {
	return queryOne(ctx, q.r, fmt.Sprintf("broker secret %q", id), scanBrokerSecret,
		`SELECT `+brokerSecretColumns+` FROM key_broker_secrets WHERE id = $1`, id)
}

// ListBrokerSecrets returns every secret, without values, by name.
func (q *queries) ListBrokerSecrets(ctx context.Context) ([]BrokerSecret, error) {
	return queryAll(ctx, q.r, "list broker secrets", scanBrokerSecret,
		`SELECT `+brokerSecretColumns+` FROM key_broker_secrets ORDER BY name`)
}

// BrokerSecretValue returns the secret with the value of its current
// version; ErrNotFound if there is none, an error wrapping ErrWrongKEK if
// the value does not open.
func (q *queries) BrokerSecretValue(ctx context.Context, id string) (BrokerSecret, []byte, error) {
	var (
		s     BrokerSecret
		value []byte
	)
	err := q.atomic(ctx, func(q *queries) error {
		var err error
		if s, err = q.BrokerSecretByID(ctx, id); err != nil {
			return err
		}
		value, err = q.GetSecret(ctx, BrokerValueName(s.ID, s.Version))
		return err
	})
	if err != nil {
		return BrokerSecret{}, nil, err
	}
	return s, value, nil
}

// UpdateBrokerSecret replaces the secret's policy when policy is not nil
// and, when value is not nil, stores it as the next version (a rotation;
// the previous version's value is deleted). It returns the secret as
// stored; ErrNotFound if there is none.
func (q *queries) UpdateBrokerSecret(ctx context.Context, id string, policy, value []byte, at time.Time) (BrokerSecret, error) {
	var out BrokerSecret
	err := q.atomic(ctx, func(q *queries) error {
		s, err := q.BrokerSecretByID(ctx, id)
		if err != nil {
			return err
		}
		if policy != nil {
			s.Policy = policy
		}
		if value != nil {
			if _, err := q.w.ExecContext(ctx, `DELETE FROM secrets WHERE name = $1`, BrokerValueName(id, s.Version)); err != nil {
				return fmt.Errorf("rotate broker secret %q: %w", id, err)
			}
			s.Version++
			if err := q.PutSecret(ctx, BrokerValueName(id, s.Version), value); err != nil {
				return err
			}
		}
		micros := createdAt(at)
		if _, err := q.w.ExecContext(ctx, `UPDATE key_broker_secrets SET policy = $2, version = $3, updated_at = $4 WHERE id = $1`,
			id, string(s.Policy), s.Version, micros); err != nil {
			return fmt.Errorf("update broker secret %q: %w", id, err)
		}
		s.UpdatedAt = time.UnixMicro(micros).UTC()
		out = s
		return nil
	})
	return out, err
}

// DeleteBrokerSecret deletes the secret and its value; ErrNotFound if there
// is none.
func (q *queries) DeleteBrokerSecret(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		s, err := q.BrokerSecretByID(ctx, id)
		if err != nil {
			return err
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM secrets WHERE name = $1`, BrokerValueName(id, s.Version)); err != nil {
			return fmt.Errorf("delete broker secret %q: %w", id, err)
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM key_broker_secrets WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete broker secret %q: %w", id, err)
		}
		return nil
	})
}
