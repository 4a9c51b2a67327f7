package hvs

import (
	"crypto/sha256"
	"sync"

	"trustedcompute.io/tc/internal/appraise"
)

// memo is a bounded map for memories keyed by the content they stand for:
// it holds at most max values; when it is full an arbitrary one makes
// room (not the least recently used: a fleet polled in a cycle larger than
// the bound would miss every time).
type memo[K comparable, V any] struct {
	max int

	mu sync.Mutex
	m  map[K]V
}

func newMemo[K comparable, V any](maxEntries int) *memo[K, V] {
	return &memo[K, V]{max: maxEntries, m: map[K]V{}}
}

func (m *memo[K, V]) Get(key K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok
}

func (m *memo[K, V]) Put(key K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.m {
		if len(m.m) < m.max {
			break
		}
		delete(m.m, k)
	}
	if m.max > 0 {
		m.m[key] = v
	}
}

// eventLogMemo is appraise's EventLogMemo in memory: event log appraisals
// by the key appraise gives them (the log's bytes and the PCR values the
// replay reads), so that a steady host's boot log is not replayed at every
// report, and hosts that booted alike share one appraisal.
type eventLogMemo = memo[[sha256.Size]byte, *appraise.EventLogAppraisal]

func newEventLogMemo(maxEntries int) *eventLogMemo {
	return newMemo[[sha256.Size]byte, *appraise.EventLogAppraisal](maxEntries)
}

// akMemoEntries bounds the enrolled AKs kept parsed.
const akMemoEntries = 1 << 16

// akMemo keeps enrolled AKs parsed (appraise.ParseAK), keyed by their
// public area itself: another host's AK, or a host's AK after it enrolled
// again, is another key; and appraise uses a parsed AK only for the bytes
// it was parsed from.
type akMemo struct {
	parsed *memo[string, *appraise.AK]
}

func newAKMemo(maxEntries int) akMemo { return akMemo{newMemo[string, *appraise.AK](maxEntries)} }

// get returns the AK of public parsed, or nil when it does not parse (the
// appraisal then names the fault).
func (m akMemo) get(public []byte) *appraise.AK {
	if ak, ok := m.parsed.Get(string(public)); ok {
		return ak
	}
	ak, err := appraise.ParseAK(public)
	if err != nil {
		return nil
	}
	m.parsed.Put(string(public), ak)
	return ak
}
