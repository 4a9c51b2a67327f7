package store

import (
	"net/url"
	"path/filepath"
	"testing"

	"trustedcompute.io/tc/internal/pgtest"
)

// Every test runs the same suites against each backend:
//
//   - SQLite on a file in t.TempDir and SQLite in memory (always);
//   - PostgreSQL at TC_TEST_POSTGRES_URL (hack/postgres.sh start prints one).
//     Each store gets a fresh schema from pgtest.Schemas, dropped when the
//     test ends (the store only ever names unqualified tables).
//
// Without TC_TEST_POSTGRES_URL the PostgreSQL tests are skipped, unless
// TC_TEST_REQUIRE (comma separated) contains "postgres": then they fail.

func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	runSuite(t, func(t *testing.T) *Store { return openTest(t, sqliteFileDSN(t)) })
	runSharedSuite(t, sqliteFileDSN)
}

func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	runSuite(t, func(t *testing.T) *Store { return openTest(t, "sqlite::memory:") })
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	newDSN := pgtest.Schemas(t)
	runSuite(t, func(t *testing.T) *Store { return openTest(t, newDSN(t)) })
	runSharedSuite(t, func(t *testing.T) string { return newDSN(t) })
}

func sqliteFileDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "verifier.db")
}

// openTest opens dsn and closes the store when the test ends.
func openTest(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", redact(dsn), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
