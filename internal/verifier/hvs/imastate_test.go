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

// A kept prefix is shared by every report of the boot that reads it. The
// first report to extend it appends in place, past the entries; any
// other must not write there, or it would change the entries the first
// report evaluated (and kept for the next one).
func TestAKeptPrefixIsExtendedInPlaceOnlyOnce(t *testing.T) {
	entry := func(path string) appraise.IMAEntry { return appraise.IMAEntry{Path: path} }
	p := &imaPrefix{entries: append(make([]appraise.IMAEntry, 0, 8), entry("/a"), entry("/b"))}
	first := p.extend([]appraise.IMAEntry{entry("/first")})
	second := p.extend([]appraise.IMAEntry{entry("/second")})
	if len(p.entries) != 2 || p.entries[1].Path != "/b" {
		t.Fatalf("the prefix changed: %+v", p.entries)
	}
	if len(first) != 3 || first[2].Path != "/first" || &first[0] != &p.entries[0] {
		t.Fatalf("the first extension %+v is not the prefix's own array followed by /first", first)
	}
	if len(second) != 3 || second[2].Path != "/second" || &second[0] == &p.entries[0] {
		t.Fatalf("the second extension %+v is not a copy followed by /second", second)
	}
}
