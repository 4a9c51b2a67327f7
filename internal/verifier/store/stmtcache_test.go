package store

import (
	"context"
	"errors"
	"testing"
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
