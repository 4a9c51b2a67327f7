package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxPreparedReads bounds the distinct read queries preparedReads keeps
// prepared; the store's queries are a fixed set well below it, so a query
// past the bound (there is none today) simply runs unprepared.
const maxPreparedReads = 256

// preparedReads is the querier of a Store's reads on SQLite: each distinct
// query is prepared once (on each reader connection, by database/sql) and
// kept, where SQLite would otherwise parse and plan its text at every call:
// a sixth of a steady report's store time. It serves reads outside
// transactions only; a transaction's statements run on the transaction as
// before. PostgreSQL needs none of this: pgx keeps the statements it has
// prepared on each connection.
type preparedReads struct {
	db *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	closed bool
}

func newPreparedReads(db *sql.DB) *preparedReads {
	return &preparedReads{db: db, stmts: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement of query, or nil when it cannot be
// kept (the bound is reached, the reads are closed, or preparing failed:
// running it unprepared then reports the error).
func (p *preparedReads) stmt(ctx context.Context, query string) *sql.Stmt {
	p.mu.Lock()
	st, ok := p.stmts[query]
	full := p.closed || len(p.stmts) >= maxPreparedReads
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
	if kept, ok := p.stmts[query]; ok || p.closed {
		// Another caller prepared it meanwhile, or the store closed.
		_ = st.Close()
		return kept
	}
	p.stmts[query] = st
	return st
}

func (p *preparedReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *preparedReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

// ExecContext is not a read: it runs unprepared.
func (p *preparedReads) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.db.ExecContext(ctx, query, args...)
}

// Close closes the prepared statements; later reads run unprepared.
func (p *preparedReads) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for q, st := range p.stmts {
		errs = append(errs, st.Close())
		delete(p.stmts, q)
	}
	p.closed = true
	return errors.Join(errs...)
}
