package hvs

import (
	"fmt"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/verifier/store"
)

func TestTheKeptIMAPrefixesAreBoundedByTheirEntries(t *testing.T) {
	m := newIMAPrefixes(10)
	for i := range 5 {
		m.put(fmt.Sprintf("h%d", i), &imaPrefix{resetCount: 1, offset: 4, bank: "SHA256", value: []byte{1},
			entries: make([]appraise.IMAEntry, 4)})
		if m.entries > 10 {
			t.Fatalf("after %d hosts the prefixes hold %d entries, bound 10", i+1, m.entries)
		}
	}
	if len(m.byHost) != 2 {
		t.Fatalf("%d hosts kept, want 2", len(m.byHost))
	}
	m.put("big", &imaPrefix{resetCount: 1, offset: 11, entries: make([]appraise.IMAEntry, 11)})
	if _, ok := m.byHost["big"]; ok || m.entries > 10 {
		t.Fatalf("a prefix larger than the bound is kept (%d entries)", m.entries)
	}
	boot := store.HostBoot{Known: true, ResetCount: 1}
	for id := range m.byHost {
		st := bootState{IMAOffset: 4, IMAValues: map[string][]byte{"SHA256": {1}}}
		if m.get(id, boot, st) == nil {
			t.Errorf("host %s: the kept prefix is not found", id)
		}
		boot2 := boot
		boot2.ResetCount = 2
		if m.get(id, boot2, st) != nil {
			t.Errorf("host %s: the prefix of reset count 1 is found for reset count 2", id)
		}
	}
}
