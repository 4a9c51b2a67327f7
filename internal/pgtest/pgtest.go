// Package pgtest gives tests a fresh PostgreSQL schema in the database at
// TC_TEST_POSTGRES_URL (hack/postgres.sh starts one; make test does).
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
	base := os.Getenv("TC_TEST_POSTGRES_URL")
	if base == "" {
		if slices.Contains(strings.Split(os.Getenv("TC_TEST_REQUIRE"), ","), "postgres") {
			t.Fatal("TC_TEST_POSTGRES_URL is not set but TC_TEST_REQUIRE contains postgres")
		}
		t.Skip("TC_TEST_POSTGRES_URL is not set (start PostgreSQL with: hack/postgres.sh start <dir> <port>)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TC_TEST_POSTGRES_URL: %v", err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	schema := "tc_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
