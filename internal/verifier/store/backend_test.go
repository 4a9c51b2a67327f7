package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
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

// Stores opened at once on one fresh file all switch it to WAL. SQLite
// answers some of them SQLITE_BUSY at once, without waiting: before
// pingSQLite, about 1 in 60 rounds of 8 openers failed here.
func TestAFreshSQLiteFileOpensForEveryoneAtOnce(t *testing.T) {
	const rounds, openers = 150, 8
	dir := t.TempDir()
	for r := range rounds {
		dsn := "sqlite:" + filepath.Join(dir, fmt.Sprintf("%d.db", r))
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() {
				s, err := Open(t.Context(), dsn)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
	}
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

// backends makes, for each backend, the function that opens a fresh, empty
// store of it: SQLite file, SQLite memory and PostgreSQL
// (TC_TEST_POSTGRES_URL; skipped without it).
func backends() map[string]func(t *testing.T) func(t *testing.T) *Store {
	return map[string]func(t *testing.T) func(t *testing.T) *Store{
		"on an sqlite file": func(*testing.T) func(t *testing.T) *Store {
			return func(t *testing.T) *Store { return openTest(t, sqliteFileDSN(t)) }
		},
		"on sqlite in memory": func(*testing.T) func(t *testing.T) *Store {
			return func(t *testing.T) *Store { return openTest(t, "sqlite::memory:") }
		},
		"on postgresql": func(t *testing.T) func(t *testing.T) *Store {
			newDSN := pgtest.Schemas(t)
			return func(t *testing.T) *Store { return openTest(t, newDSN(t)) }
		},
	}
}

// storeTest is one test of a suite; it gets a fresh, empty store.
type storeTest struct {
	name string
	test func(t *testing.T, s *Store)
}

// runOnBackends runs every test on a fresh, empty store of each backend.
func runOnBackends(t *testing.T, tests []storeTest) {
	t.Helper()
	for name, backend := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runTests(t, backend(t), tests)
		})
	}
}

// runTests runs every test on a fresh, empty store made by open.
func runTests(t *testing.T, open func(t *testing.T) *Store, tests []storeTest) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

func sqliteFileDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "verifier.db")
}

// openTest opens dsn and closes the store when the test ends.
func openTest(t testing.TB, dsn string) *Store {
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
