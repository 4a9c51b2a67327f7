package hvs

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/verifier/store"
)

// imaPrefixes keeps, by host, the replay-verified IMA entries of the host's
// current boot, so that a report within the boot reads and replays only
// the new lines of the IMA log. The host's row keeps the small part of the
// state (reset count, IMA offset, PCR 10 value: bootState); an entry here
// is used only while all three are what the row says, so a reboot, a state
// another replica moved on, or an entry from an older report is a miss, and
// a miss reads the whole log from its first line again.
//
// It is bounded by the number of entries it holds room for (the capacity
// of the kept slices, which extend fills); when it is full an
// arbitrary host makes room (not the least recently used: a fleet polled
// in a cycle larger than the bound would miss every time).
type imaPrefixes struct {
	max int

	mu      sync.Mutex
	entries int
	byHost  map[string]*imaPrefix
}

// imaPrefix is the IMA log of one boot up to an offset.
type imaPrefix struct {
	resetCount uint32
	offset     int
	bank       string
	value      []byte // PCR 10 of bank after offset lines
	entries    []appraise.IMAEntry
	// policies is the appraisal of entries against each runtime policy
	// of the host, by policy digest.
	policies map[string]imapolicy.Progress
	// flavors holds the IMA flavors that entries matched exactly, by the
	// digest of the flavor's stored bytes (flavor.IMAMatched).
	flavors map[[sha256.Size]byte]int
	// extended is set once a report appended to entries' spare capacity.
	extended atomic.Bool
}

// extend returns the prefix's entries followed by more. entries never
// change: the first caller appends into their spare capacity, the slots
// past them that no holder of the prefix reads, so that a boot's entries
// are not copied at every report; any later caller appends to a copy.
func (p *imaPrefix) extend(more []appraise.IMAEntry) []appraise.IMAEntry {
	if p.extended.CompareAndSwap(false, true) {
		return append(p.entries, more...)
	}
	return append(slices.Clip(p.entries), more...)
}

// progress is the runtime policy appraisals of the prefix; nil without a
// prefix.
func (p *imaPrefix) progress() map[string]imapolicy.Progress {
	if p == nil {
		return nil
	}
	return p.policies
}

func newIMAPrefixes(maxEntries int) *imaPrefixes {
	return &imaPrefixes{max: maxEntries, byHost: map[string]*imaPrefix{}}
}

// get returns the entries of the host's boot up to st's offset, with their
// runtime policy appraisals and the IMA flavors they matched, if it holds
// them for the boot and PCR 10 value the host's row names; nil otherwise.
// The prefix is shared: nobody may change it.
func (m *imaPrefixes) get(hostID string, boot store.HostBoot, st bootState) *imaPrefix {
	if !boot.Known || st.IMAOffset <= 0 {
		return nil
	}
	m.mu.Lock()
	p, ok := m.byHost[hostID]
	m.mu.Unlock()
	if !ok || p.resetCount != boot.ResetCount || p.offset != st.IMAOffset || len(st.IMAValues) != 1 ||
		!bytes.Equal(p.value, st.IMAValues[p.bank]) {
		return nil
	}
	return p
}

// put records the host's entries up to offset; entries must not be
// changed afterwards.
func (m *imaPrefixes) put(hostID string, p *imaPrefix) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byHost[hostID]; ok {
		m.entries -= cap(old.entries)
		delete(m.byHost, hostID)
	}
	if cap(p.entries) > m.max {
		return
	}
	for id, old := range m.byHost {
		if m.entries+cap(p.entries) <= m.max {
			break
		}
		m.entries -= cap(old.entries)
		delete(m.byHost, id)
	}
	m.byHost[hostID] = p
	m.entries += cap(p.entries)
}
