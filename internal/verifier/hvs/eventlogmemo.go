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

func (m *memo[K, V]) Delete(key K) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
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
// by the key appraise gives them (the log's digest and the PCR values the
// replay reads), so that a steady host's boot log is not replayed at every
// report, and hosts that booted alike share one appraisal.
//
// It also keeps, by host, the event log last appraised in the host's boot
// (appraise.Verdict.EventLog). The host's next quote request names it
// (evidence.QuoteRequest.EventLogDigest), so that an agent whose log is
// still that one leaves it out: the log is then neither sent, nor decoded,
// nor hashed, and appraise takes the memo's appraisal of it only for the
// PCR values of the new quote, in the same boot.
type eventLogMemo struct {
	*memo[[sha256.Size]byte, *appraise.EventLogAppraisal]
	hosts *memo[string, hostEventLog]
}

// hostEventLog is the event log last appraised in a host's boot.
type hostEventLog struct {
	log appraise.HeldEventLog
	// refused: the host's agent answered a request that named its log
	// with BAD_REQUEST (it is older than EventLogDigest); it is asked for
	// the whole log, without naming it, for the rest of that boot.
	refused bool
}

// hostEventLogEntries bounds the hosts whose event log is kept named.
const hostEventLogEntries = 1 << 18

func newEventLogMemo(maxEntries int) *eventLogMemo {
	return &eventLogMemo{
		memo:  newMemo[[sha256.Size]byte, *appraise.EventLogAppraisal](maxEntries),
		hosts: newMemo[string, hostEventLog](hostEventLogEntries),
	}
}

// held is the event log the next quote request of host names; nil when
// there is none: a host not seen (or forgotten, or seen by another
// replica), whose agent refused a named log in this boot, or whose log's
// last appraisal the memo no longer holds (its agent would leave the log
// out in vain, and be asked again).
func (m *eventLogMemo) held(hostID string) *appraise.HeldEventLog {
	h, ok := m.hosts.Get(hostID)
	if !ok || h.refused || !h.log.Kept(m) {
		return nil
	}
	return &h.log
}

// remember keeps the event log v appraised as the host's; refused says
// that the host's agent refused a request that named a log. A verified
// quote without an event log that decoded forgets the host's; a quote
// that did not verify says nothing.
func (m *eventLogMemo) remember(hostID string, v *appraise.Verdict, refused bool) {
	if v == nil || v.Quote == nil {
		return
	}
	if v.EventLog == nil {
		m.hosts.Delete(hostID)
		return
	}
	h := hostEventLog{log: *v.EventLog, refused: refused}
	prev, ok := m.hosts.Get(hostID)
	if ok && prev.refused && prev.log.ResetCount == h.log.ResetCount && prev.log.RestartCount == h.log.RestartCount {
		h.refused = true
	}
	if !ok || prev != h {
		m.hosts.Put(hostID, h)
	}
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
