package store

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every test runs the same suites against each backend:
//
//   - SQLite on a file in t.TempDir and SQLite in memory (always);
//   - PostgreSQL at TC_TEST_POSTGRES_URL (hack/postgres.sh start prints one).
//     Each store gets a fresh schema, created through that URL and dropped
//     when the test ends; the store's DSN selects it with search_path. A schema
//     is much cheaper than a database and isolates tests just as well, since
//     the store only ever names unqualified tables.
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
	newDSN := postgresSchemas(t)
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

// required reports whether TC_TEST_REQUIRE names the part.
func required(part string) bool {
	return slices.ContainsFunc(strings.Split(os.Getenv("TC_TEST_REQUIRE"), ","), func(s string) bool {
		return strings.TrimSpace(s) == part
	})
}

// postgresSchemas returns a function that creates a fresh schema in the
// database at TC_TEST_POSTGRES_URL, drops it at the end of the calling test,
// and returns a DSN that selects it.
func postgresSchemas(t testing.TB) func(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TC_TEST_POSTGRES_URL")
	if base == "" {
		if required("postgres") {
			t.Fatal("TC_TEST_POSTGRES_URL is not set but TC_TEST_REQUIRE contains postgres; " +
				"start PostgreSQL with: hack/postgres.sh start <dir> <port>")
		}
		t.Skip("TC_TEST_POSTGRES_URL is not set (start PostgreSQL with: hack/postgres.sh start <dir> <port>)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TC_TEST_POSTGRES_URL: %v", err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", redact(base), err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.PingContext(t.Context()); err != nil {
		t.Fatalf("connect to TC_TEST_POSTGRES_URL %s: %v", redact(base), err)
	}
	return func(t testing.TB) string {
		t.Helper()
		schema := "tc_test_" + strings.ToLower(rand.Text()[:16])
		if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			// t.Context is done by now.
			if _, err := admin.Exec(fmt.Sprintf("DROP SCHEMA %s CASCADE", schema)); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
		})
		su := *u
		q := su.Query()
		q.Set("search_path", schema)
		su.RawQuery = q.Encode()
		return su.String()
	}
}
