package store

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// withMigrations returns the embedded migrations plus extra ones (file name → SQL).
func withMigrations(t *testing.T, extra map[string]string) fs.FS {
	t.Helper()
	fsys := fstest.MapFS{}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		fsys["migrations/"+m.name] = &fstest.MapFile{Data: []byte(m.sql)}
	}
	for name, sql := range extra {
		fsys["migrations/"+name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return fsys
}

func TestLoadMigrations(t *testing.T) {
	tests := []struct {
		name     string
		files    []string
		want     []int
		errorHas string
	}{
		{"files are ordered by version, not by name", []string{"0010_b.sql", "0002_a.sql", "0100_c.sql"}, []int{2, 10, 100}, ""},
		{"no files is no migrations", nil, nil, ""},
		{"two files with one version are refused", []string{"0001_a.sql", "0001_b.sql"}, nil, "same version"},
		{"a file without a version is refused", []string{"users.sql"}, nil, "0001_name.sql"},
		{"a short version is refused", []string{"1_users.sql"}, nil, "0001_name.sql"},
		{"version zero is refused", []string{"0000_users.sql"}, nil, "bad version"},
		{"a file not ending in .sql is refused", []string{"0001_users.sql.orig"}, nil, "0001_name.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			ms, err := loadMigrations(fsys)
			if tt.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errorHas) {
					t.Fatalf("loadMigrations = %v, want an error containing %q", err, tt.errorHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("versions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
}

func TestOpenRefusesUnknownDataSources(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite:", "sqlite:/tmp/a?b.db", "/var/lib/tc.db"} {
		if s, err := Open(t.Context(), dsn); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}
