package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The reads of an SQLite store run on statements prepared once. A prepared
// read must answer what is committed now, not what it answered before: a
// host renamed, disabled, deleted and created again reads back each time.
func TestPreparedReadsSeeEveryCommittedWrite(t *testing.T) {
	for name, dsn := range map[string]string{"sqlite file": sqliteFileDSN(t), "sqlite memory": "sqlite::memory:"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openTest(t, dsn)
			if s.prepared == nil {
				t.Fatal("an SQLite store has no prepared reads")
			}
			must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h1", Name: "edge-1", ConnectionString: "nats://h1"}))
			h, err := s.HostByID(ctx, "h1")
			must(t, "HostByID", err)
			h.Name = "edge-renamed"
			must(t, "UpdateHost", s.UpdateHost(ctx, h))
			if got, err := s.HostByID(ctx, "h1"); err != nil || got.Name != "edge-renamed" {
				t.Fatalf("HostByID after a rename = %q, %v; want edge-renamed", got.Name, err)
			}
			must(t, "DeleteHost", s.DeleteHost(ctx, "h1"))
			if _, err := s.HostByID(ctx, "h1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("HostByID after a delete: %v, want not found", err)
			}
			must(t, "CreateHost", s.CreateHost(ctx, Host{ID: "h1", Name: "edge-again", ConnectionString: "nats://h1"}))
			if got, err := s.HostByID(ctx, "h1"); err != nil || got.Name != "edge-again" {
				t.Fatalf("HostByID after a new create = %q, %v; want edge-again", got.Name, err)
			}
			s.prepared.mu.Lock()
			n := len(s.prepared.stmts)
			s.prepared.mu.Unlock()
			if n == 0 {
				t.Fatal("no read was prepared")
			}
		})
	}
}

// A closed store's prepared reads are closed, and a read after Close
// fails as an unprepared one would, without a statement left behind.
func TestAClosedStoreKeepsNoPreparedRead(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, sqliteFileDSN(t))
	must(t, "Open", err)
	if _, err := s.HostByID(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("HostByID: %v", err)
	}
	must(t, "Close", s.Close())
	if _, err := s.HostByID(ctx, "nobody"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("HostByID after Close: %v, want a closed-database error", err)
	}
	if n := len(s.prepared.stmts); n != 0 {
		t.Fatalf("%d prepared reads after Close", n)
	}
}

// A transaction's statements run prepared from the second transaction
// that uses them on; prepared, they still commit all or nothing.
func TestTransactionStatementsArePreparedAndStillAllOrNothing(t *testing.T) {
	for name, dsn := range map[string]string{"sqlite file": sqliteFileDSN(t), "sqlite memory": "sqlite::memory:"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openTest(t, dsn)
			create := func(id string, fail error) error {
				return s.InTxDeferredSync(ctx, func(tx *Tx) error {
					if err := tx.CreateHost(ctx, Host{ID: id, Name: "edge-" + id, ConnectionString: "nats://" + id}); err != nil {
						return err
					}
					if _, err := tx.HostByID(ctx, id); err != nil {
						return err
					}
					return fail
				})
			}
			must(t, "first transaction", create("h1", nil))
			s.writes.mu.Lock()
			prepared, wanted := len(s.writes.stmts), len(s.writes.wanted)
			s.writes.mu.Unlock()
			if prepared == 0 || wanted != 0 {
				t.Fatalf("after a transaction: %d statements prepared, %d wanted; want some prepared, none wanted", prepared, wanted)
			}
			errRolledBack := errors.New("roll back")
			if err := create("h2", errRolledBack); !errors.Is(err, errRolledBack) {
				t.Fatalf("a failed transaction: %v", err)
			}
			if _, err := s.HostByID(ctx, "h2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("the host of a rolled back transaction: %v, want not found", err)
			}
			must(t, "third transaction", create("h3", nil))
			for _, id := range []string{"h1", "h3"} {
				if _, err := s.HostByID(ctx, id); err != nil {
					t.Fatalf("host %s: %v", id, err)
				}
			}
		})
	}
}

// On an SQLite file a report reads its host and policies on the writer's
// connection, whose page cache its own commits leave warm, and the reads
// see every commit.
func TestAReportReadsOnTheWritersConnectionOnAnSQLiteFile(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, sqliteFileDSN(t))
	reportFleet(t, s)
	must(t, "PutAKEnrollment", s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h1", AKName: []byte("name"), AKPublic: []byte("public"), EKPublicSHA256: "e1"}))
	isKept := func(p *preparedStmts, query string) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		_, ok := p.stmts[query]
		return ok
	}
	for _, read := range []struct {
		query string
		run   func() error
	}{
		{hostForReportQuery, func() error { _, err := s.HostForReport(ctx, "h1"); return err }},
		{reportPoliciesQuery, func() error { _, err := s.ReportPolicies(ctx, "h1", "u1"); return err }},
		{`SELECT ` + akEnrollmentColumns + ` FROM ak_enrollments WHERE host_id = $1`,
			func() error { _, err := s.AKEnrollmentByHost(ctx, "h1"); return err }},
	} {
		must(t, "read", read.run())
		if !isKept(s.writes, read.query) || isKept(s.prepared, read.query) {
			t.Errorf("the read %.40q… ran on a reader's connection, not the writer's", read.query)
		}
	}
	must(t, "DeleteFlavor", s.DeleteFlavor(ctx, "f-h1"))
	pol, err := s.ReportPolicies(ctx, "h1", "u1")
	must(t, "ReportPolicies", err)
	for _, ref := range pol.FlavorRefs["g1"] {
		if ref.ID == "f-h1" {
			t.Error("the writer's read does not see the flavor deleted")
		}
	}
	must(t, "PutAKEnrollment", s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h1", AKName: []byte("name 2"), AKPublic: []byte("public 2"), EKPublicSHA256: "e1"}))
	if enr, err := s.AKEnrollmentByHost(ctx, "h1"); err != nil || string(enr.AKPublic) != "public 2" {
		t.Errorf("the writer's read of a host enrolled again: %q, %v; want the new AK", enr.AKPublic, err)
	}
}

// A statement on SQLite whose context is done does not run, in a
// transaction or not, though it runs without its cancellation (quiet).
func TestAStatementOnSQLiteWithADoneContextDoesNotRun(t *testing.T) {
	for name, dsn := range map[string]string{"sqlite file": sqliteFileDSN(t), "sqlite memory": "sqlite::memory:"} {
		t.Run(name, func(t *testing.T) {
			s := openTest(t, dsn)
			must(t, "CreateHost", s.CreateHost(t.Context(), host("h1")))
			done, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := s.HostByID(done, "h1"); !errors.Is(err, context.Canceled) {
				t.Errorf("a read with a done context: %v, want %v", err, context.Canceled)
			}
			if _, err := s.HostForReport(done, "h1"); !errors.Is(err, context.Canceled) {
				t.Errorf("a report's read with a done context: %v, want %v", err, context.Canceled)
			}
			err := s.InTxDeferredSync(t.Context(), func(tx *Tx) error {
				if err := tx.SetHostStatus(t.Context(), "h1", "CONNECTED", t0, true); err != nil {
					return err
				}
				return tx.SetHostStatus(done, "h1", "CONNECTION_FAILURE", t0, false)
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("a transaction's statement with a done context: %v, want %v", err, context.Canceled)
			}
			if h, err := s.HostByID(t.Context(), "h1"); err != nil || h.Status != "UNKNOWN" {
				t.Errorf("after the transaction the host is %q (%v), want UNKNOWN: rolled back", h.Status, err)
			}
		})
	}
}

// A read of the reader pool keeps its context's cancellation: a long
// read (here a count to twenty million, seconds of CPU) ends soon after
// its context does, as a listing whose client went away.
func TestALongReadOnSQLiteEndsWithItsContext(t *testing.T) {
	s := openTest(t, sqliteFileDSN(t))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	var n int64
	err := s.r.QueryRowContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000)
		SELECT count(*) FROM c`).Scan(&n)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a long read whose context ended: %v (count %d), want %v", err, n, context.DeadlineExceeded)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the read ended %v after it began, its context after 100ms", took)
	}
}
