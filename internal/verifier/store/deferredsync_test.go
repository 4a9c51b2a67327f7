package store

import (
	"errors"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/pgtest"
)

func synchronous(t *testing.T, q querier) string {
	t.Helper()
	var got string
	if err := q.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// On an SQLite file every commit waits for the WAL to be synced, except
// in InTxDeferredSync; the writer connection syncs again right after it.
func TestOnlyDeferredSyncTransactionsCommitWithoutFsyncOnSQLite(t *testing.T) {
	s := openTest(t, sqliteFileDSN(t))
	const full, normal = "2", "1"
	if got := synchronous(t, s.wdb); got != full {
		t.Fatalf("the writer's PRAGMA synchronous = %s, want %s (FULL)", got, full)
	}
	err := s.InTxDeferredSync(t.Context(), func(tx *Tx) error {
		if got := synchronous(t, tx.w); got != normal {
			t.Errorf("in InTxDeferredSync PRAGMA synchronous = %s, want %s (NORMAL)", got, normal)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := synchronous(t, s.wdb); got != full {
		t.Fatalf("after InTxDeferredSync the writer's PRAGMA synchronous = %s, want %s (FULL)", got, full)
	}
	err = s.InTx(t.Context(), func(tx *Tx) error {
		if got := synchronous(t, tx.w); got != full {
			t.Errorf("in InTx PRAGMA synchronous = %s, want %s (FULL)", got, full)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A deferred-sync transaction is as atomic as any other: it commits all
// or nothing, on every backend.
func TestDeferredSyncTransactionsCommitAllOrNothing(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		if err := s.CreateHost(ctx, Host{ID: "h1", Name: "edge-1", ConnectionString: "nats://h1", Status: "UNKNOWN"}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		at := time.Now().UTC().Truncate(time.Microsecond)
		err := s.InTxDeferredSync(ctx, func(tx *Tx) error {
			if err := tx.SetHostStatus(ctx, "h1", "CONNECTED", at, true); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTxDeferredSync = %v, want %v", err, boom)
		}
		if h, err := s.HostByID(ctx, "h1"); err != nil || h.Status != "UNKNOWN" {
			t.Fatalf("after a rolled back transaction the host is %+v, %v; want status UNKNOWN", h, err)
		}
		err = s.InTxDeferredSync(ctx, func(tx *Tx) error {
			return tx.SetHostStatus(ctx, "h1", "CONNECTED", at, true)
		})
		if err != nil {
			t.Fatal(err)
		}
		if h, err := s.HostByID(ctx, "h1"); err != nil || h.Status != "CONNECTED" {
			t.Fatalf("after a committed transaction the host is %+v, %v; want status CONNECTED", h, err)
		}
	})
}

// onEachBackend runs test on a fresh store of each backend.
func onEachBackend(t *testing.T, test func(t *testing.T, s *Store)) {
	backends := map[string]func(t *testing.T) *Store{
		"sqlite file":   func(t *testing.T) *Store { return openTest(t, sqliteFileDSN(t)) },
		"sqlite memory": func(t *testing.T) *Store { return openTest(t, "sqlite::memory:") },
		"postgres":      func(t *testing.T) *Store { return openTest(t, pgtest.Schemas(t)(t)) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}
