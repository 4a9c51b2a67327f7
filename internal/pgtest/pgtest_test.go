package pgtest

import (
	"database/sql"
	"net/url"
	"os"
	"testing"
)

func TestASchemaIsSelectedByItsDSNAndDroppedWhenItsTestEnds(t *testing.T) {
	newDSN := Schemas(t)
	var schema string
	t.Run("a subtest that uses a schema", func(t *testing.T) {
		dsn := newDSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema = u.Query().Get("search_path")
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		var in string
		if err := db.QueryRowContext(t.Context(), "SELECT table_schema FROM information_schema.tables WHERE table_name = 't'").Scan(&in); err != nil {
			t.Fatal(err)
		}
		if in != schema {
			t.Fatalf("table t was made in schema %q, want %q", in, schema)
		}
	})
	if schema == "" {
		t.Fatal("the DSN names no search_path")
	}
	db, err := sql.Open("pgx", os.Getenv("TC_TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s is still there after its test ended", schema)
	}
}

func TestTwoSchemasAreApart(t *testing.T) {
	newDSN := Schemas(t)
	if a, b := newDSN(t), newDSN(t); a == b {
		t.Fatalf("two schemas share the DSN %s", a)
	}
}
