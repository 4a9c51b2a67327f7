package store

import (
	"context"
	"fmt"
	"time"
)

// Report retention: reports older than the retention are deleted, a batch
// per statement, except each host's newest report, which is the host's
// current verdict (latest per host, the dashboard, the manager's latest
// report) however old it is.

// DefaultDeleteBatch is the number of reports DeleteReportsBefore deletes
// per statement: small enough that a first prune of a large table neither
// holds SQLite's writer nor makes a PostgreSQL transaction for long.
const DefaultDeleteBatch = 1000

// deleteReportsBefore deletes up to $2 reports created before $1 of which
// a newer report of the same host exists (so never a host's newest: no
// report has a greater id). The reports_created_at index finds the old
// reports, oldest first, and reports_host_id_id the newer one.
const deleteReportsBefore = `DELETE FROM reports WHERE id IN (
	SELECT r.id FROM reports r
	WHERE r.created_at < $1
		AND EXISTS (SELECT 1 FROM reports l WHERE l.host_id = r.host_id AND l.id > r.id)
	ORDER BY r.created_at
	LIMIT $2)`

// DeleteReportsBefore deletes the reports created before before, batch
// (DefaultDeleteBatch when not positive) per statement, each statement its
// own transaction, until none is left or ctx ends; it never deletes a
// host's newest report. It returns how many it deleted, also on error.
// Replicas may run it at once: each deletes what the other has not.
func (q *queries) DeleteReportsBefore(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = DefaultDeleteBatch
	}
	what := "delete reports before " + before.UTC().Format(time.RFC3339)
	var deleted int64
	for {
		res, err := q.w.ExecContext(ctx, deleteReportsBefore, before.UnixMicro(), batch)
		if err != nil {
			return deleted, fmt.Errorf("%s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, fmt.Errorf("%s: %w", what, err)
		}
		deleted += n
		if n < int64(batch) {
			return deleted, nil
		}
		if err := ctx.Err(); err != nil {
			return deleted, fmt.Errorf("%s: %w", what, err)
		}
	}
}
