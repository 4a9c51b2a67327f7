package appraise

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"testing"
)

// mapMemo is an EventLogMemo in a map that counts its hits.
type mapMemo struct {
	m    map[[sha256.Size]byte]*EventLogAppraisal
	hits int
}

func (m *mapMemo) Get(key [sha256.Size]byte) (*EventLogAppraisal, bool) {
	a, ok := m.m[key]
	if ok {
		m.hits++
	}
	return a, ok
}

func (m *mapMemo) Put(key [sha256.Size]byte, a *EventLogAppraisal) { m.m[key] = a }

func clonePCRs(p PCRs) PCRs {
	out := PCRs{}
	for bank, values := range p {
		out[bank] = map[int][]byte{}
		for i, v := range values {
			out[bank][i] = bytes.Clone(v)
		}
	}
	return out
}

// The attacks on a remembered event log appraisal: once a genuine boot is
// remembered, another log (a reboot into another kernel command line), a
// changed byte of the log, or one quoted PCR value that differs must be
// appraised afresh, and give what an appraisal without a memo gives.
func TestARememberedEventLogAppraisalIsOnlyUsedForTheSameLogAndPCRs(t *testing.T) {
	log := readFile(t, "testdata/ovmf/sb-on-reboot.bin")
	pcrs := only(readPCRs(t, "testdata/ovmf/sb-on-reboot.pcrs.json"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	flipped := bytes.Clone(log)
	flipped[len(flipped)-1] ^= 1
	extended := clonePCRs(pcrs)
	extended["SHA256"][7][0] ^= 1
	fewer := clonePCRs(pcrs)
	delete(fewer["SHA256"], 9)
	ima := clonePCRs(pcrs)
	for bank := range ima {
		ima[bank][10] = bytes.Repeat([]byte{0x10}, len(ima[bank][0]))
	}

	for _, c := range []struct {
		name string
		log  []byte
		pcrs PCRs
		hit  bool
		// tampered evidence must not replay
		tampered bool
	}{
		{"the same log and PCRs are remembered", log, pcrs, true, false},
		{"another boot's log is appraised again", readFile(t, "testdata/ovmf/sb-on-cmdline2.bin"), readPCRs(t, "testdata/ovmf/sb-on-cmdline2.pcrs.json"), false, false},
		{"a log with one byte changed is appraised again", flipped, pcrs, false, false},
		{"a changed PCR 7 value is appraised again", log, extended, false, true},
		{"a quote of fewer PCRs is appraised again", log, fewer, false, false},
		{"another PCR 10 (IMA) is remembered", log, ima, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			memo := &mapMemo{m: map[[sha256.Size]byte]*EventLogAppraisal{}}
			genuine := Verdict{Quote: &Quote{PCRs: clonePCRs(pcrs)}}
			for bank := range genuine.Quote.PCRs {
				genuine.Quote.PCRs[bank][10] = bytes.Repeat([]byte{0x0a}, len(pcrs[bank][0]))
			}
			genuine.appraiseEventLog(log, memo)
			if len(genuine.Faults) != 0 || memo.hits != 0 || len(memo.m) != 1 {
				t.Fatalf("the genuine boot: faults %v, %d hits, %d remembered", genuine.Faults, memo.hits, len(memo.m))
			}
			got := Verdict{Quote: &Quote{PCRs: c.pcrs}}
			got.appraiseEventLog(c.log, memo)
			if (memo.hits == 1) != c.hit {
				t.Fatalf("memo hits %d, want a hit: %v", memo.hits, c.hit)
			}
			want := Verdict{Quote: &Quote{PCRs: c.pcrs}}
			want.appraiseEventLog(c.log, nil)
			if !reflect.DeepEqual(got.Faults, want.Faults) || !reflect.DeepEqual(got.Events, want.Events) ||
				!reflect.DeepEqual(got.SecureBoot, want.SecureBoot) {
				t.Fatalf("with the memo: faults %v, secure boot %+v; without: faults %v, secure boot %+v",
					got.Faults, got.SecureBoot, want.Faults, want.SecureBoot)
			}
			if c.tampered && len(got.Faults) == 0 {
				t.Fatal("the tampered evidence has no fault")
			}
		})
	}
}
