package hvs

import (
	"context"
	"log/slog"
	"time"
)

// DefaultReportRetention is Config.ReportRetention's default: 30 days.
const DefaultReportRetention = 30 * 24 * time.Hour

// keyBefore is the log field of the time before which reports were deleted.
const keyBefore = "before"

// prune deletes the reports older than the retention, except each host's
// newest (its current verdict, however old), at start and then every
// PruneInterval. Replicas on one database may prune at once: each deletes
// what the other has not.
func (s *Service) prune(ctx context.Context) error {
	return every(ctx, s.cfg.PruneInterval, func(ctx context.Context) { s.pruneOnce(ctx) })
}

// pruneOnce deletes the reports older than the retention now; it returns
// how many it deleted.
func (s *Service) pruneOnce(ctx context.Context) int64 {
	before := s.cfg.Now().Add(-s.cfg.ReportRetention)
	n, err := s.store.DeleteReportsBefore(ctx, before, 0)
	if err != nil && ctx.Err() == nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "delete old reports", slog.Int64(keyCount, n), slog.String(keyError, err.Error()))
	}
	if n > 0 {
		s.logger.LogAttrs(ctx, slog.LevelInfo, "old reports deleted", slog.Int64(keyCount, n), slog.Time(keyBefore, before))
	}
	return n
}

// every is the task that runs fn now and then every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func(ctx context.Context)) error {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
