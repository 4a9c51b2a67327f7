package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Secrets are named blobs: CA keys and certificates, NATS operator and
// account keys, token signing keys. They are sealed at rest under the store's
// key-encryption key (kek.go); values are never logged or put in errors.

// GetSecret returns the named secret; ErrNotFound if there is none, an error
// wrapping ErrWrongKEK if it is sealed under a key-encryption key the store
// lacks or does not open. A value stored unencrypted is refused: run
// [Store.SealSecrets] first.
func (q *queries) GetSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := q.r.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("read secret %q: %w", name, err)
	}
	plain, _, err := q.keys.open(name, v)
	if err != nil {
		return nil, err
	}
	return plain, nil
}

// CreateSecret stores a new secret; ErrConflict if it exists. Replicas starting
// together race with CreateSecret, and the losers read the winner's value.
func (q *queries) CreateSecret(ctx context.Context, name string, value []byte) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO secrets (name, value, updated_at) VALUES ($1, $2, $3)`,
		name, q.keys.seal(name, value), time.Now().UnixMicro())
	return created(err, fmt.Sprintf("secret %q", name))
}

// PutSecret stores the secret, replacing any value it had.
func (q *queries) PutSecret(ctx context.Context, name string, value []byte) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO secrets (name, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		name, q.keys.seal(name, value), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("put secret %q: %w", name, err)
	}
	return nil
}

// SealReport counts what [Store.SealSecrets] changed.
type SealReport struct {
	// Encrypted counts secrets that were stored unencrypted (written by a
	// release before key custody).
	Encrypted int
	// Resealed counts secrets sealed under a previous key-encryption key,
	// now sealed under the current one.
	Resealed int
	// Current counts secrets already sealed under the current key.
	Current int
}

// SealSecrets brings every secret under the current key-encryption key: it
// encrypts values stored unencrypted and re-seals values sealed under a
// previous key. It checks every secret before it changes any: if one is
// sealed under a key the store lacks (a wrong key-encryption key), it
// returns an error wrapping ErrWrongKEK and changes nothing. Running it
// again, or on several replicas at once, is harmless.
func (s *Store) SealSecrets(ctx context.Context) (SealReport, error) {
	var rep SealReport
	err := s.atomic(ctx, func(q *queries) error {
		type row struct {
			name       string
			old, plain []byte
		}
		rows, err := queryAll(ctx, q.r, "read secrets", func(r interface{ Scan(...any) error }) (row, error) {
			var x row
			err := r.Scan(&x.name, &x.old)
			return x, err
		}, `SELECT name, value FROM secrets ORDER BY name`)
		if err != nil {
			return err
		}
		rep = SealReport{}
		var errs []error
		var todo []row
		for _, x := range rows {
			if !sealed(x.old) {
				rep.Encrypted++
				x.plain = x.old
				todo = append(todo, x)
				continue
			}
			plain, k, err := q.keys.open(x.name, x.old)
			switch {
			case err != nil:
				errs = append(errs, err)
			case k == q.keys.current:
				rep.Current++
			default:
				rep.Resealed++
				x.plain = plain
				todo = append(todo, x)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("seal secrets: nothing changed: %w", errors.Join(errs...))
		}
		now := time.Now().UnixMicro()
		for _, x := range todo {
			// Compare and swap: another replica may have sealed it already.
			if _, err := q.w.ExecContext(ctx, `UPDATE secrets SET value = $1, updated_at = $2 WHERE name = $3 AND value = $4`,
				q.keys.seal(x.name, x.plain), now, x.name, x.old); err != nil {
				return fmt.Errorf("seal secret %q: %w", x.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return SealReport{}, err
	}
	return rep, nil
}
