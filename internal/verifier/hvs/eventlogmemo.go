package hvs

import (
	"crypto/sha256"
	"sync"

	"trustedcompute.io/tc/internal/appraise"
)

// eventLogMemo is appraise's EventLogMemo in memory: event log appraisals
// by the key appraise gives them (the log's bytes and the PCR values the
// replay reads), so that a steady host's boot log is not replayed at every
// report, and hosts that booted alike share one appraisal. It holds at most
// max appraisals; when it is full an arbitrary one makes room.
type eventLogMemo struct {
	max int

	mu sync.Mutex
	m  map[[sha256.Size]byte]*appraise.EventLogAppraisal
}

func newEventLogMemo(maxEntries int) *eventLogMemo {
	return &eventLogMemo{max: maxEntries, m: map[[sha256.Size]byte]*appraise.EventLogAppraisal{}}
}

func (m *eventLogMemo) Get(key [sha256.Size]byte) (*appraise.EventLogAppraisal, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.m[key]
	return a, ok
}

func (m *eventLogMemo) Put(key [sha256.Size]byte, a *appraise.EventLogAppraisal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.m {
		if len(m.m) < m.max {
			break
		}
		delete(m.m, k)
	}
	if m.max > 0 {
		m.m[key] = a
	}
}
