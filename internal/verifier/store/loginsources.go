package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Failed logins per (user, source): the AAS locks a user out for the source
// that failed, never for everyone (migration 0017). A source is an opaque
// string chosen by the AAS (the client's address). Old failures and expired
// locks are deleted as new ones are written, so the tables hold only what
// the current window and lock duration need.

// RecordSourceLoginFailure notes a failed login of the user from source at
// the time, forgets every failure (of any user) before since, and returns the
// user's failures from source at or after since, this one included.
// ErrNotFound for an unknown user.
func (q *queries) RecordSourceLoginFailure(ctx context.Context, userID, source string, at, since time.Time) (int, error) {
	var n int
	err := q.atomic(ctx, func(q *queries) error {
		if _, err := q.w.ExecContext(ctx, `DELETE FROM login_failures WHERE failed_at < $1`, since.UnixMicro()); err != nil {
			return fmt.Errorf("forget old login failures: %w", err)
		}
		_, err := q.w.ExecContext(ctx, `INSERT INTO login_failures (user_id, source, failed_at) VALUES ($1, $2, $3)`,
			userID, source, at.UnixMicro())
		if err = classify(err); errors.Is(err, errForeignKey) {
			return fmt.Errorf("user id %q: %w", userID, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("record login failure of user id %q: %w", userID, err)
		}
		err = q.w.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM login_failures WHERE user_id = $1 AND source = $2 AND failed_at >= $3`,
			userID, source, since.UnixMicro()).Scan(&n)
		if err != nil {
			return fmt.Errorf("count login failures of user id %q: %w", userID, err)
		}
		return nil
	})
	return n, err
}

// LockLoginSource locks the user out for source until the time and forgets
// the user's failures from source; locks expired at now are deleted.
// ErrNotFound for an unknown user.
func (q *queries) LockLoginSource(ctx context.Context, userID, source string, until, now time.Time) error {
	return q.atomic(ctx, func(q *queries) error {
		if _, err := q.w.ExecContext(ctx, `DELETE FROM login_locks WHERE locked_until <= $1`, now.UnixMicro()); err != nil {
			return fmt.Errorf("forget expired login locks: %w", err)
		}
		_, err := q.w.ExecContext(ctx,
			`INSERT INTO login_locks (user_id, source, locked_until) VALUES ($1, $2, $3)
			 ON CONFLICT (user_id, source) DO UPDATE SET locked_until = excluded.locked_until`,
			userID, source, until.UnixMicro())
		if err = classify(err); errors.Is(err, errForeignKey) {
			return fmt.Errorf("user id %q: %w", userID, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("lock user id %q for a source: %w", userID, err)
		}
		return q.ClearSourceLoginFailures(ctx, userID, source)
	})
}

// LoginSourceLockedUntil returns until when the user is locked out for
// source; the zero time when it is not (or the user is unknown).
func (q *queries) LoginSourceLockedUntil(ctx context.Context, userID, source string) (time.Time, error) {
	var until int64
	err := q.r.QueryRowContext(ctx, `SELECT locked_until FROM login_locks WHERE user_id = $1 AND source = $2`,
		userID, source).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read login lock of user id %q: %w", userID, err)
	}
	return time.UnixMicro(until).UTC(), nil
}

// ClearSourceLoginFailures forgets the user's failed logins from source.
func (q *queries) ClearSourceLoginFailures(ctx context.Context, userID, source string) error {
	if _, err := q.w.ExecContext(ctx, `DELETE FROM login_failures WHERE user_id = $1 AND source = $2`, userID, source); err != nil {
		return fmt.Errorf("clear login failures of user id %q from a source: %w", userID, err)
	}
	return nil
}

// ClearLoginLocks lifts every lock of the user, from every source.
func (q *queries) ClearLoginLocks(ctx context.Context, userID string) error {
	if _, err := q.w.ExecContext(ctx, `DELETE FROM login_locks WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("clear login locks of user id %q: %w", userID, err)
	}
	return nil
}

// Failed logins per source, whatever the user (migration 0020): the AAS
// refuses every login from a source that fails too many within a window.
// A source's window starts at its first failure; a failure after the
// window starts a new one.

// CountLoginSourceFailure notes a failed login from source at at, of any
// user or of none, and returns the source's failures in its window, this
// one included: a window that started at or before since is over, and this
// failure starts the next. Sources whose window is over and whose refusal
// has ended at at are forgotten.
func (q *queries) CountLoginSourceFailure(ctx context.Context, source string, at, since time.Time) (int, error) {
	var n int
	err := q.atomic(ctx, func(q *queries) error {
		if _, err := q.w.ExecContext(ctx, `DELETE FROM login_source_throttle
			WHERE window_start <= $1 AND refused_until <= $2 AND source <> $3`,
			since.UnixMicro(), at.UnixMicro(), source); err != nil {
			return fmt.Errorf("forget login sources: %w", err)
		}
		err := q.w.QueryRowContext(ctx, `INSERT INTO login_source_throttle (source, window_start, failures, refused_until)
			VALUES ($1, $2, 1, 0)
			ON CONFLICT (source) DO UPDATE SET
				failures = CASE WHEN login_source_throttle.window_start <= $3 THEN 1 ELSE login_source_throttle.failures + 1 END,
				window_start = CASE WHEN login_source_throttle.window_start <= $3 THEN excluded.window_start ELSE login_source_throttle.window_start END
			RETURNING failures`, source, at.UnixMicro(), since.UnixMicro()).Scan(&n)
		if err != nil {
			return fmt.Errorf("count login failures from a source: %w", err)
		}
		return nil
	})
	return n, err
}

// RefuseLoginSource refuses every login from source until the time and
// starts its count again.
func (q *queries) RefuseLoginSource(ctx context.Context, source string, until, now time.Time) error {
	_, err := q.w.ExecContext(ctx, `INSERT INTO login_source_throttle (source, window_start, failures, refused_until)
		VALUES ($1, $2, 0, $3)
		ON CONFLICT (source) DO UPDATE SET window_start = excluded.window_start, failures = 0,
			refused_until = excluded.refused_until`, source, now.UnixMicro(), until.UnixMicro())
	if err != nil {
		return fmt.Errorf("refuse a login source: %w", err)
	}
	return nil
}

// LoginSourceRefusedUntil returns until when logins from source are
// refused; the zero time when they are not.
func (q *queries) LoginSourceRefusedUntil(ctx context.Context, source string) (time.Time, error) {
	var until int64
	err := q.r.QueryRowContext(ctx, `SELECT refused_until FROM login_source_throttle WHERE source = $1`, source).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && until == 0) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read the refusal of a login source: %w", err)
	}
	return time.UnixMicro(until).UTC(), nil
}
