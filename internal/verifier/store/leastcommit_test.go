package store

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/benchfloor"
)

// BenchmarkLeastCommit is the least that committing one row costs on an
// SQLite file with this driver, apart from any schema of ours: a table with
// nothing but an integer key, one prepared INSERT in a transaction of its
// own, in WAL mode with synchronous NORMAL (what a report's commit uses,
// InTxDeferredSync). A report must be kept, so no report can cost less
// than the crypto floor plus this, with the row the size of a signed
// report (a steady report's row is about 4 kB: its JSON once, the JWS
// header and signature). docs/performance.md compares it with the issue's
// goals.
//
//	go test -run '^$' -bench LeastCommit -count 3 ./internal/verifier/store
func BenchmarkLeastCommit(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("row=%dB", size), func(b *testing.B) {
			q := url.Values{"_pragma": {"journal_mode(WAL)", "synchronous(NORMAL)"}, "_txlock": {"immediate"}}
			db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "least.db")+"?"+q.Encode())
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			db.SetMaxOpenConns(1)
			ctx := b.Context()
			if _, err := db.ExecContext(ctx, `CREATE TABLE rows (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			insert, err := db.PrepareContext(ctx, `INSERT INTO rows (v) VALUES ($1)`)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = insert.Close() }()
			row := bytes.Repeat([]byte{0x5a}, size)
			cpu := benchfloor.Start()
			for b.Loop() {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.StmtContext(ctx, insert).ExecContext(ctx, row); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			cpu.Report(b)
			benchfloor.ReportRatio(b)
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM rows`).Scan(&n); err != nil || n != b.N {
				b.Fatalf("%d rows kept of %d commits (%v)", n, b.N, err)
			}
		})
	}
}
