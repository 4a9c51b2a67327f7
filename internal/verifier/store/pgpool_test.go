package store

import (
	"sync"
	"testing"

	"trustedcompute.io/tc/internal/pgtest"
)

// A verifier under a fleet's load runs many statements at once. On
// PostgreSQL each connection the pool opens is a new server process whose
// statements are prepared again, so a burst must leave its connections
// open for the next one: none may be closed for want of idle room.
func TestPostgresKeepsTheConnectionsABurstOpened(t *testing.T) {
	t.Parallel()
	s := openTest(t, pgtest.Schemas(t)(t))
	burst := func() {
		var wg sync.WaitGroup
		for range postgresConns {
			wg.Go(func() {
				// pg_sleep holds each connection long enough that the
				// burst needs all of them at once.
				if _, err := s.wdb.ExecContext(t.Context(), `SELECT pg_sleep(0.2)`); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if pools := s.Pools(); len(pools) != 1 || pools["postgres"] != s.wdb {
		t.Errorf("Pools() = %v, want the one pool named postgres", pools)
	}
	burst()
	opened := s.wdb.Stats().OpenConnections
	burst()
	st := s.wdb.Stats()
	if st.MaxIdleClosed != 0 || st.MaxIdleTimeClosed != 0 || st.MaxLifetimeClosed != 0 {
		t.Errorf("the pool closed connections between bursts: %d for want of idle room, %d idle too long, %d too old",
			st.MaxIdleClosed, st.MaxIdleTimeClosed, st.MaxLifetimeClosed)
	}
	if opened < postgresConns/2 || st.OpenConnections < opened {
		t.Errorf("open connections: %d after the first burst, %d after the second; want the first burst's kept (at least %d)",
			opened, st.OpenConnections, postgresConns/2)
	}
}
