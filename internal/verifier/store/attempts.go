package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Attempts and claims (migration 0012, issue 14): when each host was last
// attempted and last attested, and which verifier replica holds its next
// scheduled report.

// SetHostReported records, in one statement, the outcome of a report of the
// host started at at: its connection status (as SetHostStatus) and the
// attempt; success (the report was made from the agent's evidence) also
// moves LastSuccess and LastConnected. Neither LastAttempt nor LastSuccess
// moves backwards, so replicas committing out of order keep the latest.
func (q *queries) SetHostReported(ctx context.Context, id, status string, at time.Time, success bool) error {
	res, err := q.w.ExecContext(ctx, `UPDATE hosts SET `+hostReportedSet+` WHERE id = $1`,
		id, at.UnixMicro(), boolInt(success), status)
	return oneRow(res, err, fmt.Sprintf("record the report of host %q", id))
}

// hostReportedSet is SetHostReported's assignments: $1 the host's id, $2
// the time in Unix microseconds, $3 success (1 or 0), $4 the status.
const hostReportedSet = `status = $4, status_at = $2,
		last_connected = CASE WHEN $3 = 1 THEN $2 ELSE last_connected END,
		last_attempt = CASE WHEN last_attempt IS NULL OR last_attempt < $2 THEN $2 ELSE last_attempt END,
		last_success = CASE WHEN $3 = 1 AND (last_success IS NULL OR last_success < $2) THEN $2 ELSE last_success END`

// ClaimHostsToRefresh claims, for replica until until, at most limit enabled
// hosts that have no report or whose latest report expires at or before
// expiresBefore, and that no replica (itself included) holds an unexpired
// claim on at now; it returns their ids. The claim is one statement: replicas claiming
// together never get the same host, and a dead replica's claims lapse at
// their until.
func (q *queries) ClaimHostsToRefresh(ctx context.Context, replica string, expiresBefore, now, until time.Time, limit int) ([]string, error) {
	ids, err := queryStrings(ctx, q.w, `UPDATE hosts SET claimed_by = $1, claimed_until = $4
		WHERE id IN (SELECT h.id FROM hosts h
			WHERE (h.claimed_until IS NULL OR h.claimed_until <= $3)
			AND NOT EXISTS (SELECT 1 FROM disabled_hosts d WHERE d.host_id = h.id)
			AND COALESCE((SELECT r.expires_at FROM reports r WHERE r.host_id = h.id ORDER BY r.id DESC LIMIT 1), 0) <= $2
			ORDER BY h.id LIMIT $5)
		AND (claimed_until IS NULL OR claimed_until <= $3)
		RETURNING id`, replica, expiresBefore.UnixMicro(), now.UnixMicro(), until.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim hosts to refresh: %w", err)
	}
	return ids, nil
}

// KeepRefreshClaim renews, for replica until until, its claim on host id
// when it still holds it at now, or when nobody does; it reports false when
// another replica holds an unexpired claim on the host (it claimed the host
// after this replica's claim lapsed, and attests it). A worker calls it as
// it starts a claimed report, so that a claim that lapsed while the report
// waited in the queue does not make two replicas attest one host together.
func (q *queries) KeepRefreshClaim(ctx context.Context, id, replica string, now, until time.Time) (bool, error) {
	res, err := q.w.ExecContext(ctx, `UPDATE hosts SET claimed_by = $2, claimed_until = $4
		WHERE id = $1 AND (claimed_by = $2 OR claimed_until IS NULL OR claimed_until <= $3)`,
		id, replica, now.UnixMicro(), until.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("keep the refresh claim on host %q: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("keep the refresh claim on host %q: %w", id, err)
	}
	return n == 1, nil
}

// KeepRefreshClaims renews, until until, the claims that replica still
// holds on the hosts ids: those it queued and has not started yet. A
// replica whose queue is longer than a claim's life so keeps its hosts:
// otherwise another replica claimed them after the lapse, and each then
// left the host to the other (KeepRefreshClaim) until neither attested it.
// A claim another replica took since is left to it.
func (q *queries) KeepRefreshClaims(ctx context.Context, replica string, ids []string, until time.Time) error {
	const chunk = 500 // well under either database's limit on parameters
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := append(make([]any, 0, n+2), replica, until.UnixMicro())
		var in strings.Builder
		for i, id := range ids[:n] {
			if i > 0 {
				in.WriteByte(',')
			}
			fmt.Fprintf(&in, "$%d", i+3)
			args = append(args, id)
		}
		// Only placeholders are put together here; the ids are parameters.
		stmt := `UPDATE hosts SET claimed_until = $2 WHERE claimed_by = $1 AND id IN (` + in.String() + `)` // #nosec G202
		if _, err := q.w.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("keep the refresh claims of %d hosts: %w", len(ids), err)
		}
		ids = ids[n:]
	}
	return nil
}

// AttemptStats counts the enabled hosts and those overdue.
type AttemptStats struct {
	Hosts, Overdue int
	// OldestSuccess is the oldest LastSuccess among the enabled hosts that
	// have one; zero if none has.
	OldestSuccess time.Time
}

// HostAttemptStats counts the enabled hosts, and those overdue at
// successBefore: whose last success (or, never attested, whose registration)
// is older than it.
func (q *queries) HostAttemptStats(ctx context.Context, successBefore time.Time) (AttemptStats, error) {
	var (
		st     AttemptStats
		oldest sql.NullInt64
	)
	err := q.r.QueryRowContext(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN COALESCE(last_success, created_at) < $1 THEN 1 ELSE 0 END), 0),
		MIN(last_success)
		FROM hosts WHERE NOT EXISTS (SELECT 1 FROM disabled_hosts d WHERE d.host_id = hosts.id)`,
		successBefore.UnixMicro()).Scan(&st.Hosts, &st.Overdue, &oldest)
	if err != nil {
		return AttemptStats{}, fmt.Errorf("count overdue hosts: %w", err)
	}
	st.OldestSuccess = fromDBTime(oldest)
	return st, nil
}

// Overdue tells whether a host whose last success (or, never attested, whose
// registration) is older than successBefore is overdue; the one rule of
// HostAttemptStats, for a host already read.
func (h Host) Overdue(successBefore time.Time) bool {
	last := h.LastSuccess
	if last.IsZero() {
		last = h.CreatedAt
	}
	return last.Before(successBefore)
}
