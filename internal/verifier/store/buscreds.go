package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Bus credentials and disabled hosts (issue 11). The verifier records every
// NATS user key it issues to a trust agent or an attestation manager and
// every revocation, so that a revoked key is refused after a restart from the
// first connection on; a disabled host keeps its registration but holds no
// bus credentials and gets no reports.

// Kinds of BusKey.Kind.
const (
	BusKeyAgent   = "agent"   // Owner is the host id
	BusKeyManager = "manager" // Owner is the manager's name
)

// BusKey is one NATS user key the verifier issued (or found on a connection
// and revoked).
type BusKey struct {
	PublicKey   string
	Kind, Owner string
	// ExpiresAt is when the key's JWT expires; the row is pruned after it.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero if it is not.
	RevokedAt time.Time
}

// RecordBusKeys stores keys. A key stored before keeps its owner and expiry,
// and stays revoked once revoked (a later revocation time does not move it).
func (q *queries) RecordBusKeys(ctx context.Context, keys ...BusKey) error {
	return q.atomic(ctx, func(q *queries) error {
		for _, k := range keys {
			if k.PublicKey == "" || k.Kind == "" || k.Owner == "" || k.ExpiresAt.IsZero() {
				return fmt.Errorf("record bus key %q: public key, kind, owner and expiry are required", k.PublicKey)
			}
			if _, err := q.w.ExecContext(ctx, `INSERT INTO bus_credentials (public_key, kind, owner, expires_at, revoked_at)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (public_key) DO UPDATE SET revoked_at = COALESCE(bus_credentials.revoked_at, excluded.revoked_at)`,
				k.PublicKey, k.Kind, k.Owner, k.ExpiresAt.UnixMicro(), dbTime(k.RevokedAt)); err != nil {
				return fmt.Errorf("record bus key of %s %q: %w", k.Kind, k.Owner, err)
			}
		}
		return nil
	})
}

// RevokeBusKeys revokes, at at, every key of the owner that is not revoked
// and has not expired at at; it returns how many it revoked.
func (q *queries) RevokeBusKeys(ctx context.Context, kind, owner string, at time.Time) (int64, error) {
	return q.execCount(ctx, fmt.Sprintf("revoke bus keys of %s %q", kind, owner), `UPDATE bus_credentials SET revoked_at = $3
		WHERE kind = $1 AND owner = $2 AND revoked_at IS NULL AND expires_at >= $3`, kind, owner, at.UnixMicro())
}

// execCount runs a statement and returns how many rows it changed; op names
// the operation in errors.
func (q *queries) execCount(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := q.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

func scanBusKey(row interface{ Scan(...any) error }) (BusKey, error) {
	var (
		k                BusKey
		expires, revoked sql.NullInt64
	)
	if err := row.Scan(&k.PublicKey, &k.Kind, &k.Owner, &expires, &revoked); err != nil {
		return BusKey{}, err
	}
	k.ExpiresAt, k.RevokedAt = fromDBTime(expires), fromDBTime(revoked)
	return k, nil
}

// RevokedBusKeys lists the revoked keys that have not expired at now, by
// public key.
func (q *queries) RevokedBusKeys(ctx context.Context, now time.Time) ([]BusKey, error) {
	return queryAll(ctx, q.r, "list revoked bus keys", scanBusKey,
		`SELECT public_key, kind, owner, expires_at, revoked_at FROM bus_credentials
		WHERE revoked_at IS NOT NULL AND expires_at >= $1 ORDER BY public_key`, now.UnixMicro())
}

// BusKeysOf lists the keys of one owner, revoked or not, by public key.
func (q *queries) BusKeysOf(ctx context.Context, kind, owner string) ([]BusKey, error) {
	return queryAll(ctx, q.r, "list bus keys", scanBusKey,
		`SELECT public_key, kind, owner, expires_at, revoked_at FROM bus_credentials
		WHERE kind = $1 AND owner = $2 ORDER BY public_key`, kind, owner)
}

// PruneBusKeys deletes the keys that expired before t; it returns how many.
func (q *queries) PruneBusKeys(ctx context.Context, t time.Time) (int64, error) {
	return q.execCount(ctx, "prune bus keys", `DELETE FROM bus_credentials WHERE expires_at < $1`, t.UnixMicro())
}

// DisableHost marks the host disabled at at; disabling a disabled host keeps
// the first time. ErrNotFound if there is no such host.
func (q *queries) DisableHost(ctx context.Context, id string, at time.Time) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO disabled_hosts (host_id, disabled_at) VALUES ($1, $2)
		ON CONFLICT (host_id) DO NOTHING`, id, at.UnixMicro())
	if err = classify(err); errors.Is(err, errForeignKey) {
		return fmt.Errorf("disable host %q: %w", id, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("disable host %q: %w", id, err)
	}
	return nil
}

// EnableHost clears the host's disabled mark (enabling an enabled host does
// nothing). ErrNotFound if there is no such host.
func (q *queries) EnableHost(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		var one int
		err := q.r.QueryRowContext(ctx, `SELECT 1 FROM hosts WHERE id = $1`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("enable host %q: %w", id, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("enable host %q: %w", id, err)
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM disabled_hosts WHERE host_id = $1`, id); err != nil {
			return fmt.Errorf("enable host %q: %w", id, err)
		}
		return nil
	})
}

// HostDisabled returns when the host was disabled; the zero time if it is
// not disabled (or not registered).
func (q *queries) HostDisabled(ctx context.Context, id string) (time.Time, error) {
	var at sql.NullInt64
	err := q.r.QueryRowContext(ctx, `SELECT disabled_at FROM disabled_hosts WHERE host_id = $1`, id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read disabled mark of host %q: %w", id, err)
	}
	return fromDBTime(at), nil
}

// DisabledHosts maps the id of every disabled host to when it was disabled.
func (q *queries) DisabledHosts(ctx context.Context) (map[string]time.Time, error) {
	type mark struct {
		id string
		at time.Time
	}
	marks, err := queryAll(ctx, q.r, "list disabled hosts", func(row interface{ Scan(...any) error }) (mark, error) {
		var (
			m  mark
			at sql.NullInt64
		)
		err := row.Scan(&m.id, &at)
		m.at = fromDBTime(at)
		return m, err
	}, `SELECT host_id, disabled_at FROM disabled_hosts`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(marks))
	for _, m := range marks {
		out[m.id] = m.at
	}
	return out, nil
}

// HostsAllowed maps the id of every registered host to whether it may
// hold bus credentials: true, or false when it is disabled. One statement
// for a whole fleet, where HostByID and HostDisabled are two a host.
func (q *queries) HostsAllowed(ctx context.Context) (map[string]bool, error) {
	type state struct {
		id      string
		allowed bool
	}
	states, err := queryAll(ctx, q.r, "list hosts allowed bus credentials", func(row interface{ Scan(...any) error }) (state, error) {
		var (
			s        state
			disabled int64
		)
		err := row.Scan(&s.id, &disabled)
		s.allowed = disabled == 0
		return s, err
	}, `SELECT h.id, (SELECT count(*) FROM disabled_hosts d WHERE d.host_id = h.id) FROM hosts h`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(states))
	for _, s := range states {
		out[s.id] = s.allowed
	}
	return out, nil
}
