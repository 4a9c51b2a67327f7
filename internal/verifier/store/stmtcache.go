package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxPrepared bounds the distinct queries a preparedStmts keeps prepared;
// the store's queries are a fixed set well below it, so a query past the
// bound (there is none today) simply runs unprepared.
const maxPrepared = 256

// preparedStmts keeps each distinct query of a Store on SQLite prepared
// (on each connection, by database/sql), where SQLite would otherwise
// parse and plan its text at every call: a sixth of a steady report's
// store time. PostgreSQL needs none of this: pgx keeps the statements it
// has prepared on each connection.
//
// Reads outside transactions run on it (sqliteQueries). Statements in a
// transaction run prepared once the query is kept (txStmts); a query
// first met in a transaction runs unprepared and is prepared after the
// transaction (prepareWanted), since the writer's only connection is the
// transaction's until then.
type preparedStmts struct {
	db *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	wanted map[string]bool
	closed bool
}

func newPreparedStmts(db *sql.DB) *preparedStmts {
	return &preparedStmts{db: db, stmts: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// cached returns the prepared statement of query, or nil when there is
// none yet; without one it notes query for prepareWanted if want is set.
func (p *preparedStmts) cached(query string, want bool) *sql.Stmt {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.stmts[query]
	if !ok && want && !p.closed && len(p.stmts)+len(p.wanted) < maxPrepared {
		p.wanted[query] = true
	}
	return st
}

// stmt returns the prepared statement of query, preparing it on a
// connection of the pool if need be; nil when it cannot be kept (the bound
// is reached, the store is closed, or preparing failed: running it
// unprepared then reports the error).
func (p *preparedStmts) stmt(ctx context.Context, query string) *sql.Stmt {
	p.mu.Lock()
	st, ok := p.stmts[query]
	full := p.closed || len(p.stmts) >= maxPrepared
	p.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.wanted, query)
	if kept, ok := p.stmts[query]; ok || p.closed {
		// Another caller prepared it meanwhile, or the store closed.
		_ = st.Close()
		return kept
	}
	p.stmts[query] = st
	return st
}

// prepareWanted prepares the queries first met in transactions. Call it
// when no connection of the pool is held by the caller.
func (p *preparedStmts) prepareWanted(ctx context.Context) {
	p.mu.Lock()
	var queries []string
	for q := range p.wanted {
		queries = append(queries, q)
	}
	clear(p.wanted)
	p.mu.Unlock()
	for _, q := range queries {
		p.stmt(ctx, q)
	}
}

// Close closes the prepared statements; later queries run unprepared.
func (p *preparedStmts) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for q, st := range p.stmts {
		errs = append(errs, st.Close())
		delete(p.stmts, q)
	}
	clear(p.wanted)
	p.closed = true
	return errors.Join(errs...)
}

// quiet is ctx without its cancellation, for a statement on SQLite, or
// ctx's error if it is done already. The SQLite driver watches a
// cancellable context with a goroutine of its own for every statement,
// and database/sql another for the rows of a query: a tenth of the CPU
// time of a report's commit. A statement on SQLite runs for microseconds
// (a wait for another process's lock ends at busy_timeout), so the
// context is checked before each statement instead.
func quiet(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// stmtSource has the prepared statements of an SQLite store's queries:
// the pool's (*preparedStmts) or a transaction's (txStmts).
type stmtSource interface {
	// stmt returns the prepared statement of query, or nil: then the
	// query runs unprepared on unprepared.
	stmt(ctx context.Context, query string) *sql.Stmt
	unprepared() querier
}

// sqliteQueries is the querier of an SQLite store: each statement runs
// prepared when src has it, and quiet unless cancellable. The reads of the
// reader pool keep their cancellation: a listing of every report runs for
// as long as the table is large, and ends when its client goes away. A
// report's reads and the statements of transactions are short and run
// quiet.
type sqliteQueries struct {
	src         stmtSource
	cancellable bool
}

// context is the context a statement runs with.
func (q sqliteQueries) context(ctx context.Context) (context.Context, error) {
	if q.cancellable {
		return ctx, nil
	}
	return quiet(ctx)
}

func (q sqliteQueries) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	qc, err := q.context(ctx)
	if err != nil {
		return nil, err
	}
	return q.on(qc, query).ExecContext(qc, query, args...)
}

func (q sqliteQueries) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	qc, err := q.context(ctx)
	if err != nil {
		return nil, err
	}
	return q.on(qc, query).QueryContext(qc, query, args...)
}

func (q sqliteQueries) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	qc, err := q.context(ctx)
	if err != nil {
		return q.src.unprepared().QueryRowContext(ctx, query, args...) // a Row with ctx's error
	}
	return q.on(qc, query).QueryRowContext(qc, query, args...)
}

// on is what runs query: its prepared statement, or the unprepared querier.
func (q sqliteQueries) on(ctx context.Context, query string) querier {
	if st := q.src.stmt(ctx, query); st != nil {
		return preparedStmt{st}
	}
	return q.src.unprepared()
}

// preparedStmt runs its statement whatever the query (the statement's).
type preparedStmt struct{ st *sql.Stmt }

func (p preparedStmt) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return p.st.ExecContext(ctx, args...)
}

func (p preparedStmt) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return p.st.QueryContext(ctx, args...)
}

func (p preparedStmt) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return p.st.QueryRowContext(ctx, args...)
}

func (p *preparedStmts) unprepared() querier { return p.db }

// txStmts are the statements of a transaction on SQLite: a statement
// whose query p keeps prepared runs as that statement on the
// transaction's connection; any other runs unprepared and is prepared
// after the transaction.
type txStmts struct {
	tx *sql.Tx
	p  *preparedStmts
}

func (t txStmts) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := t.p.cached(query, true); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	return nil
}

func (t txStmts) unprepared() querier { return t.tx }
