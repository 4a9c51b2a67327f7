package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Secrets are named blobs: CA keys and certificates, NATS operator and
// account keys, token signing keys. Values are never logged or put in errors.

// GetSecret returns the named secret; ErrNotFound if there is none.
func (q *queries) GetSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := q.r.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("read secret %q: %w", name, err)
	}
	return v, nil
}

// CreateSecret stores a new secret; ErrConflict if it exists. Replicas starting
// together race with CreateSecret, and the losers read the winner's value.
func (q *queries) CreateSecret(ctx context.Context, name string, value []byte) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO secrets (name, value, updated_at) VALUES ($1, $2, $3)`,
		name, dbBytes(value), time.Now().UnixMicro())
	if err = classify(err); errors.Is(err, errUnique) {
		return fmt.Errorf("secret %q: %w", name, ErrConflict)
	} else if err != nil {
		return fmt.Errorf("create secret %q: %w", name, err)
	}
	return nil
}

// PutSecret stores the secret, replacing any value it had.
func (q *queries) PutSecret(ctx context.Context, name string, value []byte) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO secrets (name, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		name, dbBytes(value), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("put secret %q: %w", name, err)
	}
	return nil
}
