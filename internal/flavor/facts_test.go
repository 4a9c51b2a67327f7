package flavor

import (
	"testing"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/evidence"
)

func TestFactsFromVerdict(t *testing.T) {
	zero := func() []byte { return make([]byte, 32) }
	pcrs := appraise.PCRs{evidence.BankSHA256: {0: zero(), 7: zero(), 10: zero(), 11: zero(), 14: zero()}}
	events := map[string][]appraise.Event{evidence.BankSHA256: {{Index: 0, Type: 8}, {Index: 14, Type: 13}}}
	seven := 7
	replayFault := appraise.Fault{Name: appraise.FaultEventLogReplay, PCRIndex: &seven, PCRBank: evidence.BankSHA256}
	imaFault := appraise.Fault{Name: appraise.FaultIMAReplay}
	entries := []appraise.IMAEntry{imaEntry("/bin/sh", "sh")}

	tests := []struct {
		name         string
		verdict      *appraise.Verdict
		replayed     []int
		imaReplayed  bool
		eventFaults  int
		wantNoFacts  bool
		wantEntries  int
		wantIMAFault int
	}{{
		name:        "a verdict without a verified quote yields no facts",
		verdict:     &appraise.Verdict{Faults: []appraise.Fault{{Name: appraise.FaultQuoteSignature}}},
		wantNoFacts: true,
	}, {
		name:        "PCRs 0-9 without a replay fault and higher PCRs with events replayed",
		verdict:     &appraise.Verdict{Quote: &appraise.Quote{PCRs: pcrs}, Events: events, IMA: &appraise.IMAResult{}, IMAEntries: entries},
		replayed:    []int{0, 7, 14},
		imaReplayed: true,
		wantEntries: 1,
	}, {
		name: "a PCR with a replay fault did not replay",
		verdict: &appraise.Verdict{Quote: &appraise.Quote{PCRs: pcrs}, Events: events,
			Faults: []appraise.Fault{replayFault}},
		replayed:    []int{0, 14},
		eventFaults: 1,
	}, {
		name: "a bank-wide replay fault leaves nothing of that bank replayed",
		verdict: &appraise.Verdict{Quote: &appraise.Quote{PCRs: pcrs}, Events: events,
			Faults: []appraise.Fault{{Name: appraise.FaultEventLogReplay, PCRBank: evidence.BankSHA256}}},
		eventFaults: 1,
	}, {
		name:        "a missing event log leaves nothing replayed",
		verdict:     &appraise.Verdict{Quote: &appraise.Quote{PCRs: pcrs}},
		replayed:    nil,
		eventFaults: 0,
	}, {
		name: "an IMA replay fault drops the IMA entries",
		verdict: &appraise.Verdict{Quote: &appraise.Quote{PCRs: pcrs}, Events: events,
			IMA: &appraise.IMAResult{}, IMAEntries: entries, Faults: []appraise.Fault{imaFault}},
		replayed:     []int{0, 7, 14},
		wantIMAFault: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := FactsFromVerdict(tt.verdict)
			if tt.wantNoFacts {
				if f.PCRs != nil || f.Replayed != nil || f.IMAReplayed {
					t.Errorf("facts = %+v, want none", f)
				}
				return
			}
			for i := range pcrs[evidence.BankSHA256] {
				want := false
				for _, r := range tt.replayed {
					want = want || r == i
				}
				if got := f.Replayed[evidence.BankSHA256][i]; got != want {
					t.Errorf("PCR %d replayed = %v, want %v", i, got, want)
				}
			}
			if f.IMAReplayed != tt.imaReplayed || len(f.IMAEntries) != tt.wantEntries || len(f.IMAFaults) != tt.wantIMAFault {
				t.Errorf("IMA facts = %v, %d entries, %d faults", f.IMAReplayed, len(f.IMAEntries), len(f.IMAFaults))
			}
			if len(f.EventLogFaults) != tt.eventFaults {
				t.Errorf("event log faults = %v, want %d", f.EventLogFaults, tt.eventFaults)
			}
		})
	}
}
