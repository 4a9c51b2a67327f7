package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/benchfloor"
)

// openSQLiteFile opens a store on a fresh file and returns the file's path.
func openSQLiteFile(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "verifier.db")
	return openTest(t, "sqlite:"+path), path
}

// createScratch makes the table the commits below write.
func createScratch(ctx context.Context, t testing.TB, s *Store) {
	t.Helper()
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE scratch (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
}

// commitRow commits row to the scratch table in a transaction of its own,
// as a report is committed (InTxDeferredSync).
func commitRow(ctx context.Context, s *Store, row []byte) error {
	return s.InTxDeferredSync(ctx, func(tx *Tx) error {
		_, err := tx.w.ExecContext(ctx, `INSERT INTO scratch (v) VALUES ($1)`, row)
		return err
	})
}

// writePages commits n rows of about one 4 KiB page each.
func writePages(ctx context.Context, t testing.TB, s *Store, n int) {
	t.Helper()
	createScratch(ctx, t, s)
	row := bytes.Repeat([]byte{0x5a}, 3500)
	for range n {
		if err := commitRow(ctx, s, row); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAFileStoreCheckpointsInTheBackgroundNotInACommit: the writer's commits
// do not checkpoint the log until it is sqliteBackstopPages long, and the
// pages committed still reach the database file, copied by the background
// checkpoints. With SQLite's default (a commit checkpoints at 1,000 pages)
// the first check fails; without the background checkpoints the second.
func TestAFileStoreCheckpointsInTheBackgroundNotInACommit(t *testing.T) {
	ctx := t.Context()
	s, path := openSQLiteFile(t)
	var pages int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != sqliteBackstopPages {
		t.Errorf("the writer's commits checkpoint at %d pages, want only past the backstop, %d", pages, sqliteBackstopPages)
	}

	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const rows = 1500 // more than SQLite's default of 1,000 pages, less than the backstop
	writePages(ctx, t, s, rows)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if grew := fi.Size() - before.Size(); grew >= rows*3500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file grew by %d bytes in 10 s after %d rows of 3,500 bytes were committed: no checkpoint copied them",
				fi.Size()-before.Size(), rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClosingAFileStoreStopsItsCheckpoints: Close returns with the
// checkpointer stopped and its connection closed, and the file opens again
// with every committed row.
func TestClosingAFileStoreStopsItsCheckpoints(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tc.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	writePages(ctx, t, s, 50)
	c := s.checkpoints
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	default:
		t.Fatal("Close returned with the checkpointer still running")
	}
	if err := c.db.PingContext(ctx); err == nil {
		t.Error("the checkpointer's connection is still open after Close")
	}
	s, err = Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	var n int
	if err := s.wdb.QueryRowContext(ctx, `SELECT count(*) FROM scratch`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("%d rows after reopening, want 50 (%v)", n, err)
	}
}

// BenchmarkCommitTail is the tail of a report-sized commit
// (InTxDeferredSync, one 15 kB row, as a signed report and its host's row)
// on an SQLite file, with the log checkpointed by the commit that takes it
// past 1,000 pages (SQLite's default, as before) and in the background (as
// the store does now), at the manager's rate for 10,000 nodes (a commit
// every 6 ms) and back to back. It reports the 99th and 99.9th percentiles
// and the slowest commit in ms and as multiples of the crypto floor
// measured in the same run, and the commits over 10 ms.
//
//	go test -run '^$' -bench CommitTail -benchtime 2000x ./internal/verifier/store
func BenchmarkCommitTail(b *testing.B) {
	for _, pace := range []time.Duration{6 * time.Millisecond, 0} {
		for _, mode := range []string{"in-commit", "background"} {
			name := fmt.Sprintf("pace=%s/checkpoint=%s", pace, mode)
			if pace == 0 {
				name = "pace=back-to-back/checkpoint=" + mode
			}
			b.Run(name, func(b *testing.B) { benchmarkCommitTail(b, pace, mode) })
		}
	}
}

func benchmarkCommitTail(b *testing.B, pace time.Duration, mode string) {
	ctx := b.Context()
	s, _ := openSQLiteFile(b)
	if mode == "in-commit" {
		if err := s.checkpoints.stop(); err != nil {
			b.Fatal(err)
		}
		s.checkpoints = nil
		if _, err := s.wdb.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 1000"); err != nil {
			b.Fatal(err)
		}
	}
	createScratch(ctx, b, s)
	row := bytes.Repeat([]byte{0x5a}, 15000)
	took := make([]time.Duration, 0, b.N)
	start := time.Now()
	for b.Loop() {
		time.Sleep(time.Until(start.Add(time.Duration(len(took)) * pace)))
		t0 := time.Now()
		if err := commitRow(ctx, s, row); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	b.ReportMetric(ms(at(0.99)), "p99-ms")
	b.ReportMetric(ms(at(0.999)), "p99.9-ms")
	b.ReportMetric(ms(took[len(took)-1]), "max-ms")
	// The waits as multiples of the crypto floor, measured in this run.
	floor, err := benchfloor.Measure()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(at(0.999))/float64(floor), "p99.9-x-floor")
	b.ReportMetric(float64(took[len(took)-1])/float64(floor), "max-x-floor")
	over := 0
	for _, d := range took {
		if d > 10*time.Millisecond {
			over++
		}
	}
	b.ReportMetric(float64(over), "over-10ms")
}
