// Package store is the verifier's persistence: users, roles, secrets and TPM
// enrollment, on SQLite (embedded default, pure Go) or PostgreSQL (real
// deployments, several verifier replicas).
//
// One concrete type, [Store], serves every part of the verifier; each consumer
// declares the small interface it needs. Both backends share the same SQL and
// the same embedded, numbered migrations (migrations/NNNN_name.sql), which
// [Open] applies.
//
// Times are stored as Unix microseconds and come back in UTC, truncated to the
// microsecond. A zero CreatedAt is set to the current time on create; a zero
// LockedUntil means "not locked". Nil and empty byte slices are stored alike.
//
// Errors: [ErrNotFound], [ErrConflict] and [ErrChallengeUsed] are wrapped with
// context; test them with errors.Is.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// Errors callers must tell apart. They are always wrapped with context.
var (
	ErrNotFound      = errors.New("not found")
	ErrConflict      = errors.New("already exists")
	ErrChallengeUsed = errors.New("activation challenge already used")
	// ErrEKInUse: another host is enrolled with the EK (PutAKEnrollment).
	ErrEKInUse = errors.New("the ek is enrolled for another host")
)

// Store is the verifier's database. It is safe for concurrent use.
// Its methods run each in their own transaction (or single statement);
// use [Store.InTx] to group several into one atomic unit.
type Store struct {
	queries
	backend string  // "sqlite" or "postgres"
	wdb     *sql.DB // writes and transactions
	rdb     *sql.DB // reads; the same as wdb except for an SQLite file
	// prepared serves the reads on SQLite (queries.r) and writes the
	// transactions' statements (the same for SQLite in memory); both nil
	// on PostgreSQL.
	prepared, writes *preparedStmts
	// checkpoints runs the log's checkpoints of an SQLite file; nil
	// otherwise.
	checkpoints *checkpointer
}

// Tx is a transaction begun by [Store.InTx]. It has the same data methods as
// [Store]; they all run inside the transaction.
type Tx struct {
	queries
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries holds the data methods shared by Store and Tx.
type queries struct {
	r, w querier // reads and writes; both the transaction inside a Tx
	// db begins transactions for multi-statement methods; nil inside a Tx,
	// where those methods simply join the transaction.
	db *sql.DB
	// keys seal and open secrets.
	keys *Keyring
	// writes keeps the statements of transactions prepared on SQLite;
	// nil on PostgreSQL and inside a Tx.
	writes *preparedStmts
	// headers are the JWS headers of reports known to be stored.
	headers *jwsHeaders
	// tx is what the transaction has done that its end must record; nil
	// outside a transaction.
	tx *txState
}

// txQuerier is the querier of a transaction: with its statements kept
// prepared on SQLite (writes), as they are.
func txQuerier(tx *sql.Tx, writes *preparedStmts) querier {
	if writes == nil {
		return tx
	}
	return sqliteQueries{src: txStmts{tx: tx, p: writes}}
}

// prepareWanted prepares the statements first met in the transaction just
// ended (nothing on PostgreSQL) and stores the JWS headers of its reports
// that were not known to be stored (jwsHeaders).
func (q *queries) prepareWanted(ctx context.Context) {
	if q.writes != nil {
		q.writes.prepareWanted(ctx)
	}
	q.headers.storeWanted(ctx, q.w)
}

// atomic runs fn in a transaction: a new one on a Store, the current one in a Tx.
func (q *queries) atomic(ctx context.Context, fn func(q *queries) error) error {
	if q.db == nil {
		return fn(q)
	}
	defer q.prepareWanted(ctx)
	return inTx(ctx, q.db, func(tx *sql.Tx) error {
		txq := txQuerier(tx, q.writes)
		tq := &queries{r: txq, w: txq, keys: q.keys, headers: q.headers, tx: &txState{}}
		if err := fn(tq); err != nil {
			return err
		}
		return tq.endTx(ctx)
	})
}

// Open connects to the database named by dsn and brings its schema up to date.
//
//	sqlite:/var/lib/tc/verifier.db   SQLite file, created if missing (WAL)
//	sqlite::memory:                  private in-memory SQLite database (tests)
//	postgres://user@host:5432/db?sslmode=verify-full   (or postgresql://)
//
// PostgreSQL connection parameters (search_path, application_name, ...) may be
// given as URL query parameters. An SQLite file (and its -wal and -shm files)
// is made readable by its owner only (0600).
//
// Secrets are sealed under the key-encryption keys given by [WithKeyring].
// Without it the store makes a random key that lives as long as the Store:
// enough for a throwaway database (tests), but what it seals does not open
// after a restart. The verifier always passes its keyring.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.keys == nil {
		o.keys = ephemeralKeyring()
	}
	s, err := open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s.keys = o.keys
	if err := migrate(ctx, s.wdb, s.backend, migrationFiles); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Option adjusts [Open].
type Option func(*options)

type options struct {
	keys *Keyring
}

// WithKeyring seals secrets under the keyring's current key-encryption key
// and opens what its current or previous keys sealed.
func WithKeyring(kr *Keyring) Option { return func(o *options) { o.keys = kr } }

// Close releases the database connections.
func (s *Store) Close() error {
	var err error
	if s.checkpoints != nil {
		err = s.checkpoints.stop()
	}
	if s.prepared != nil {
		err = errors.Join(err, s.prepared.Close())
	}
	if s.writes != nil && s.writes != s.prepared {
		err = errors.Join(err, s.writes.Close())
	}
	err = errors.Join(err, s.wdb.Close())
	if s.rdb != s.wdb {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.wdb.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.backend, err)
	}
	return nil
}

// Pools names the store's connection pools, for their metrics
// (database/sql's DBStats): on SQLite "writer" (one connection) and
// "readers", on PostgreSQL "postgres". Use them for nothing else.
func (s *Store) Pools() map[string]*sql.DB {
	if s.backend == backendPostgres || s.rdb == s.wdb {
		return map[string]*sql.DB{s.backend: s.wdb}
	}
	return map[string]*sql.DB{"writer": s.wdb, "readers": s.rdb}
}

// Backend names the database in use: "sqlite" or "postgres".
func (s *Store) Backend() string { return s.backend }

// InTx runs fn in one transaction, committed if fn returns nil and rolled back
// otherwise (or if fn panics). Inside fn use only tx, never s: on SQLite there
// is a single writer connection, so calling s from fn would wait for ever.
// When a method of tx fails, return (a wrap of) its error: on PostgreSQL the
// transaction accepts no further statements after an error.
//
//	err := s.InTx(ctx, func(tx *store.Tx) error {
//		if err := tx.CreateUser(ctx, u); err != nil {
//			return err
//		}
//		return tx.AddUserRoles(ctx, u.ID, roleIDs)
//	})
//
// On SQLite transactions are serialized (BEGIN IMMEDIATE). On PostgreSQL they
// run at READ COMMITTED: every statement is atomic with the others, and rows
// written by fn are locked until the end, but rows only read may change.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	defer s.prepareWanted(ctx)
	return inTx(ctx, s.wdb, func(tx *sql.Tx) error {
		return s.runTx(ctx, tx, fn)
	})
}

// InTxDeferredSync is InTx for a transaction that need not be on disk when
// it returns: a report and the boot state it moves on, which the next poll
// makes again. It is atomic and isolated like InTx, and no crash corrupts
// the database; a power loss (not a crash of the process) can lose it until
// the next transaction of InTx, or an SQLite checkpoint, syncs the log.
// SQLite commits it to the WAL with synchronous NORMAL (no fsync);
// PostgreSQL with synchronous_commit off. Security state (users, roles,
// credentials, revocations, enrollment, flavors) is never written here.
func (s *Store) InTxDeferredSync(ctx context.Context, fn func(tx *Tx) error) error {
	// After the writer connection is back in the pool.
	defer s.prepareWanted(ctx)
	return s.inTxDeferredSync(ctx, fn)
}

// runTx runs fn in the transaction tx and records what its end must.
func (s *Store) runTx(ctx context.Context, tx *sql.Tx, fn func(tx *Tx) error) error {
	txq := txQuerier(tx, s.writes)
	t := &Tx{queries{r: txq, w: txq, keys: s.keys, headers: s.headers, tx: &txState{}}}
	if err := fn(t); err != nil {
		return err
	}
	return t.endTx(ctx)
}

func (s *Store) inTxDeferredSync(ctx context.Context, fn func(tx *Tx) error) error {
	wrap := func(tx *sql.Tx) error {
		return s.runTx(ctx, tx, fn)
	}
	switch {
	case s.backend == backendPostgres:
		return inTx(ctx, s.wdb, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
				return fmt.Errorf("defer sync: %w", err)
			}
			return wrap(tx)
		})
	case s.rdb == s.wdb: // SQLite in memory: nothing to sync
		return inTx(ctx, s.wdb, wrap)
	}
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = conn.Close() }()
	// Once the writer is had, the transaction's statements run quiet
	// (sqliteQueries): BEGIN, COMMIT and the PRAGMAs too.
	qctx, err := quiet(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if _, err := conn.ExecContext(qctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return fmt.Errorf("defer sync: %w", err)
	}
	defer func() {
		// The writer connection goes back to the pool syncing every commit,
		// or not at all.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return inTx(qctx, conn, wrap)
}

// beginner begins transactions: a *sql.DB or one of its connections.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func inTx(ctx context.Context, db beginner, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", classify(err))
	}
	return nil
}

// Time and byte conversions. Times are BIGINT Unix microseconds; NULL (and the
// zero time) means "none". Byte columns are NOT NULL; nil is stored as empty.

func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromDBTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func createdAt(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixMicro()
}

func dbBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// queryAll runs a query and scans every row with scan; op names the
// operation in errors.
func queryAll[T any](ctx context.Context, r querier, op string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports iteration errors
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}
