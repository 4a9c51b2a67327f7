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
// Reads outside transactions run on it directly (it is a querier).
// Statements in a transaction run prepared once the query is kept
// (txQueries); a query first met in a transaction runs unprepared and is
// prepared after the transaction (prepareWanted), since the writer's only
// connection is the transaction's until then.
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

func (p *preparedStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *preparedStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

// ExecContext is not a read: it runs unprepared.
func (p *preparedStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.db.ExecContext(ctx, query, args...)
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

// txQueries is the querier of a transaction on SQLite: a statement whose
// query p keeps prepared runs as that statement on the transaction's
// connection; any other runs unprepared and is prepared after the
// transaction.
type txQueries struct {
	tx *sql.Tx
	p  *preparedStmts
}

func (t txQueries) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.p.cached(query, true); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t txQueries) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.p.cached(query, true); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t txQueries) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.p.cached(query, true); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
