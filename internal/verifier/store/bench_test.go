package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// go test -run '^$' -bench . ./internal/verifier/store
// (PostgreSQL benchmarks run too when TC_TEST_POSTGRES_URL is set.)

func benchStores(b *testing.B, bench func(b *testing.B, s *Store)) {
	b.Run("sqlite-file", func(b *testing.B) {
		s, err := Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		bench(b, s)
	})
	b.Run("sqlite-memory", func(b *testing.B) {
		s, err := Open(b.Context(), "sqlite::memory:")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		bench(b, s)
	})
	if os.Getenv("TC_TEST_POSTGRES_URL") != "" {
		b.Run("postgres", func(b *testing.B) {
			s, err := Open(b.Context(), postgresSchemas(b)(b))
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
