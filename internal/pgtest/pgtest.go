// Package pgtest gives tests a fresh PostgreSQL schema in the database at
// TC_TEST_POSTGRES_URL (hack/postgres.sh starts one; make test does).
//
// A schema is much cheaper than a database and isolates tests just as well
// when the code under test names only unqualified tables: the DSN selects
// the schema with search_path.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver
)

// Schema creates a fresh schema, dropped when the test ends, and returns a
// DSN that selects it. Without TC_TEST_POSTGRES_URL the test is skipped, or
// fails when TC_TEST_REQUIRE names postgres.
func Schema(t testing.TB) string {
	t.Helper()
	return Schemas(t)(t)
}

// Schemas connects to TC_TEST_POSTGRES_URL once, for as long as t runs, and
// returns a function that creates a fresh schema on that connection, dropped
// when the test it is given ends (t or one of its subtests), and returns a
// DSN that selects it. Without TC_TEST_POSTGRES_URL the test is skipped, or
// fails when TC_TEST_REQUIRE names postgres.
func Schemas(t testing.TB) func(testing.TB) string {
	t.Helper()
	base := os.Getenv("TC_TEST_POSTGRES_URL")
	if base == "" {
		if slices.ContainsFunc(strings.Split(os.Getenv("TC_TEST_REQUIRE"), ","), isPostgres) {
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
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.PingContext(context.Background()); err != nil {
		t.Fatalf("connect to TC_TEST_POSTGRES_URL %s: %v", u.Redacted(), err)
	}
	return func(t testing.TB) string {
		t.Helper()
		schema := "tc_test_" + strings.ToLower(rand.Text()[:16])
		if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
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

func isPostgres(part string) bool { return strings.TrimSpace(part) == "postgres" }
