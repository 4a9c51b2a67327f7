package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"
)

// A checkpoint copies SQLite's write-ahead log back into the database file
// and syncs both. By default the commit that takes the log past 1,000 pages
// runs it, and since an SQLite file has one writer connection, every commit
// queued behind that one waits too: at a commit every 6 ms (the manager's
// rate at 10,000 nodes) 12 commits of 2,000 waited 10 to 50 ms
// (BenchmarkCommitTail). A file store checkpoints in the background
// instead, on a connection of its own: a PASSIVE checkpoint does not wait
// for the writer or the readers, and WAL lets the writer append while it
// copies; at that rate no commit waited more than 5 ms. Back to back, far
// above the verifier's rate, one commit in 2,000 still waited about 170 ms
// at the end of a large checkpoint.
const (
	// sqliteCheckpointEvery is how often the background checkpoint runs.
	sqliteCheckpointEvery = 250 * time.Millisecond
	// sqliteBackstopPages is the log's size, in pages, past which a commit
	// checkpoints after all (SQLite's wal_autocheckpoint): only when the
	// background checkpoints cannot keep up or fail, which keeps the log
	// bounded (40 MB of 4 KiB pages).
	sqliteBackstopPages = 10000
)

// checkpointer runs PASSIVE checkpoints of one SQLite file every
// sqliteCheckpointEvery until stop.
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
}

// startCheckpointer opens its connection to the file at path with the
// store's common pragmas and starts checkpointing, until stop: the open's
// ctx ending does not end it.
func startCheckpointer(ctx context.Context, path string, common url.Values) (*checkpointer, error) {
	db, err := sql.Open("sqlite", path+"?"+common.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(sqliteCheckpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A failure (another process's checkpoint running, a disk error
		// the writer meets too) leaves the log to the next round, and
		// past sqliteBackstopPages to the commits.
		var busy, logPages, copied int64
		_ = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
	}
}

// stop ends the checkpoints and closes the connection; the log that is
// left is checkpointed by the next open, or the last connection's close.
func (c *checkpointer) stop() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
