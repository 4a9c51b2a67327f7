package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/pgtest"
)

// go test -run '^$' -bench . ./internal/verifier/store
// (PostgreSQL benchmarks run too when TC_TEST_POSTGRES_URL is set.)

// benchStores runs bench on a fresh store of each backend: SQLite on a file,
// SQLite in memory and, when TC_TEST_POSTGRES_URL is set, PostgreSQL; only
// the backends named in only, when any is.
func benchStores(b *testing.B, bench func(b *testing.B, s *Store), only ...string) {
	type backend struct {
		name string
		dsn  func(b *testing.B) string
	}
	backends := []backend{
		{"sqlite-file", func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "bench.db") }},
		{"sqlite-memory", func(*testing.B) string { return "sqlite::memory:" }},
	}
	if os.Getenv("TC_TEST_POSTGRES_URL") != "" {
		backends = append(backends, backend{"postgres", func(b *testing.B) string { return pgtest.Schema(b) }})
	}
	for _, be := range backends {
		if len(only) > 0 && !slices.Contains(only, be.name) {
			continue
		}
		b.Run(be.name, func(b *testing.B) {
			s, err := Open(b.Context(), be.dsn(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			bench(b, s)
		})
	}
}

func BenchmarkPutSecret(b *testing.B) {
	benchStores(b, func(b *testing.B, s *Store) {
		value := make([]byte, 2048)
		for i := 0; b.Loop(); i++ {
			if err := s.PutSecret(b.Context(), fmt.Sprint("k", i%100), value); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCreateUser(b *testing.B) {
	benchStores(b, func(b *testing.B, s *Store) {
		for i := 0; b.Loop(); i++ {
			if err := s.CreateUser(b.Context(), user(fmt.Sprint(i))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUserByNameParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, s *Store) {
		for i := range 100 {
			if err := s.CreateUser(b.Context(), user(fmt.Sprint(i))); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.UserByName(b.Context(), fmt.Sprint("name-", i%100)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
