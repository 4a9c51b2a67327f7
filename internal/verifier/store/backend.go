package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Everything that differs between SQLite and PostgreSQL lives in this file:
// connecting, the migration lock, and recognising constraint violations.
// The SQL itself is shared; both accept $1-style parameters.

const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"

	// sqliteBusyTimeout is how long an SQLite statement waits for another
	// process's write lock before failing with SQLITE_BUSY.
	sqliteBusyTimeout = 10 * time.Second
	sqliteReaders     = 4
)

func open(ctx context.Context, dsn string) (*Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	default:
		scheme, _, _ := strings.Cut(dsn, ":")
		return nil, fmt.Errorf("open store: unsupported data source %q (want sqlite:<path>, sqlite::memory: or postgres://...)", scheme)
	}
}

// openSQLite opens a file with one writer connection, so that writers in this
// process queue in Go instead of failing with SQLITE_BUSY, and a few reader
// connections, which WAL lets run beside the writer. busy_timeout covers
// writers in other processes. ":memory:" gets a single connection: each
// connection to :memory: would be a separate database.
func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?") {
		return nil, fmt.Errorf("open store: bad sqlite path %q", path)
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")

	if path == ":memory:" {
		db, err := sql.Open("sqlite", path+"?"+common.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s := newStore(backendSQLite, db, db)
		if err := s.Ping(ctx); err != nil {
			_ = s.Close()
			return nil, err
		}
		return s, nil
	}

	// SQLite creates the -wal and -shm files with the database file's mode.
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// WAL with synchronous FULL (SQLite's default): a commit returns once
	// the WAL is synced. Store.InTxDeferredSync relaxes that for one
	// transaction.
	// Its commits leave the log's checkpoints to the background
	// (checkpoint.go) up to sqliteBackstopPages.
	wq := url.Values{"_pragma": append([]string{"journal_mode(WAL)", "synchronous(FULL)",
		fmt.Sprintf("wal_autocheckpoint(%d)", sqliteBackstopPages)}, common["_pragma"]...)}
	wq.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	// The writer goes first: it creates the file and switches it to WAL.
	if err := pingSQLite(ctx, wdb); err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := tightenMode(p); err != nil {
			_ = wdb.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
	}
	rq := url.Values{"_pragma": append([]string{"query_only(1)"}, common["_pragma"]...)}
	rdb, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	rdb.SetMaxOpenConns(sqliteReaders)
	rdb.SetMaxIdleConns(sqliteReaders)
	s := newStore(backendSQLite, wdb, rdb)
	if err := pingSQLite(ctx, rdb); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if s.checkpoints, err = startCheckpointer(ctx, path, common); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// pingSQLite opens db's first connection. Connections opened at once on a
// fresh file all switch it to WAL, which takes its exclusive lock; SQLite
// answers one of two such openers SQLITE_BUSY at once rather than call the
// busy handler on a lock it sees as a deadlock. The opener then tries again,
// with a new connection, for as long as busy_timeout would have waited.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err := db.PingContext(ctx)
		var sqliteErr *sqlite.Error
		if err == nil || !errors.As(err, &sqliteErr) || sqliteErr.Code()&0xff != sqlite3.SQLITE_BUSY ||
			time.Now().Add(pause).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause + rand.N(pause)): //nolint:gosec // G404: retry jitter needs no unpredictability
		}
	}
}

// createPrivate creates an empty file (an empty SQLite database) readable by
// its owner only, unless it exists.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // the path is the operator's database
	if errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	return f.Close()
}

// tightenMode takes group and other permissions from an existing file, as a
// database written by an earlier release may have them (0644).
func tightenMode(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&0o700); err != nil {
		return fmt.Errorf("make %s private (chmod 600 %s): %w", path, path, err)
	}
	return nil
}

// postgresConns is how many connections a verifier keeps to PostgreSQL at
// the most; postgresIdleTime how long one may stay unused before it is
// closed.
const (
	postgresConns    = 20
	postgresIdleTime = 5 * time.Minute
)

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(postgresConns)
	// Every connection the pool opens is a new PostgreSQL backend (a fork,
	// its catalog caches) whose statements pgx prepares again: keep what a
	// burst opened for the next burst, and let a quiet verifier give them
	// back. With fewer idle than open, a fleet's steady load closed and
	// reopened connections many times a second (issue 13).
	db.SetMaxIdleConns(postgresConns)
	db.SetConnMaxIdleTime(postgresIdleTime)
	s := newStore(backendPostgres, db, db)
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func newStore(backend string, wdb, rdb *sql.DB) *Store {
	s := &Store{
		queries: queries{r: rdb, w: wdb, db: wdb, headers: newJWSHeaders()},
		backend: backend,
		wdb:     wdb,
		rdb:     rdb,
	}
	if backend == backendSQLite {
		s.prepared, s.writes = newPreparedStmts(rdb), newPreparedStmts(wdb)
		if rdb == wdb {
			s.writes = s.prepared
		}
		s.r, s.queries.writes = sqliteQueries{src: s.prepared, cancellable: true}, s.writes
	}
	return s
}

// lockMigrations serializes migrations between processes. SQLite needs
// nothing: the migration transaction is BEGIN IMMEDIATE, which holds the
// write lock. PostgreSQL takes a transaction-scoped advisory lock keyed by
// the current schema.
func lockMigrations(ctx context.Context, tx *sql.Tx, backend string) error {
	if backend != backendPostgres {
		return nil
	}
	const lockClass = 0x7463 // "tc"
	if _, err := tx.ExecContext(ctx,
		`SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))`, lockClass); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	return nil
}

// Constraint violations, as reported by either driver.
var (
	errUnique     = errors.New("unique constraint violated")
	errForeignKey = errors.New("foreign key constraint violated")
)

// created is the outcome of an insert of what (user "alice"): ErrConflict
// if a unique key of it is taken.
func created(err error, what string) error {
	if err = classify(err); errors.Is(err, errUnique) {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	} else if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	return nil
}

// violates tells whether err breaks the unique index named index
// (PostgreSQL names it) on column, "table.column" (SQLite names that).
func violates(err error, index, column string) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName == index
	}
	var sqliteErr *sqlite.Error
	return errors.As(err, &sqliteErr) && strings.Contains(sqliteErr.Error(), column)
}

// classify wraps err so that errors.Is(err, errUnique) or
// errors.Is(err, errForeignKey) tells a constraint violation; other errors are
// returned unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", errUnique, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", errForeignKey, err)
		}
		return err
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", errUnique, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", errForeignKey, err)
		}
	}
	return err
}
