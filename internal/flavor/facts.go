package flavor

import (
	"crypto/sha256"
	"slices"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/imapolicy"
)

// Facts are the verified values flavors are made from and appraised
// against. Build them with FactsFromVerdict; nothing unverified belongs here.
type Facts struct {
	// PCRs are the PCR values the verified quote covers.
	PCRs appraise.PCRs
	// Events holds, by bank, the events of the PCRs whose log replayed.
	Events map[string][]appraise.Event
	// Replayed names, by bank, the PCRs whose event log replayed to the
	// quoted value (a PCR with no events and a zero value replays too).
	Replayed map[string]map[int]bool
	// EventLogFaults are appraise's event log faults (replay, unparsable):
	// PcrEventLogIntegrity quotes the ones about its PCR.
	EventLogFaults []appraise.Fault
	// SecureBoot is read from the replay-verified PCR 7 events.
	SecureBoot appraise.SecureBootState
	// IMAReplayed says the IMA log replayed to the quoted PCR 10, and
	// IMAEntries are the entries that quote covers. For an incremental
	// appraisal the caller passes all entries of the boot so far.
	IMAReplayed bool
	IMAEntries  []appraise.IMAEntry
	// IMAFlavorsMatched holds, by the digest of an IMA flavor's stored
	// bytes (Checked.Digest), how many first IMAEntries matched that
	// flavor exactly at the previous report of the same boot (IMAMatched):
	// ImaEventLogEquals then checks only the entries after them. The
	// caller keeps it with those very entries (the replay-verified prefix
	// of the boot) and passes it only with them. A flavor of other bytes
	// is another key, and a count past IMAEntries is ignored. Nil: every
	// entry is checked.
	IMAFlavorsMatched map[[sha256.Size]byte]int
	// IMAFaults are appraise's IMA faults (replay, unparsable).
	IMAFaults []appraise.Fault
	// IMAPolicy is the host's runtime policy, nil when it has none. When
	// set, the IMA part is appraised against it (ImaPolicyMatches) instead
	// of the golden log (ImaEventLogEquals), even when the host's group has
	// no IMA flavor.
	IMAPolicy *imapolicy.Compiled
	// IMAPolicyProgress is the appraisal of the first entries of
	// IMAEntries against IMAPolicy, kept from the previous report of the
	// same boot (the zero value: none), so that only the new entries are
	// appraised. AppraiseIMAPolicy brings it up to date.
	IMAPolicyProgress imapolicy.Progress
}

// AppraiseIMAPolicy appraises the IMA entries IMAPolicyProgress does not
// cover yet against IMAPolicy, so that IMAPolicyProgress covers them all;
// keep it for the next report of the boot. It does nothing without a
// policy or when the IMA log did not replay.
func (f *Facts) AppraiseIMAPolicy() {
	if f.IMAPolicy == nil || !f.IMAReplayed {
		return
	}
	f.IMAPolicyProgress = f.IMAPolicy.Continue(f.IMAPolicyProgress, f.IMAEntries, f.PCRs)
}

// FactsFromVerdict takes the verified facts out of an appraisal verdict.
// A verdict whose quote failed yields empty facts: every rule then fails.
func FactsFromVerdict(v *appraise.Verdict) Facts {
	var f Facts
	if v == nil || v.Quote == nil {
		return f
	}
	f.PCRs = v.Quote.PCRs
	f.Events = v.Events
	f.SecureBoot = v.SecureBoot
	for _, flt := range v.Faults {
		switch flt.Name {
		case appraise.FaultEventLogReplay, appraise.FaultEventLogUnparsable:
			f.EventLogFaults = append(f.EventLogFaults, flt)
		case appraise.FaultIMAReplay, appraise.FaultIMAUnparsable:
			f.IMAFaults = append(f.IMAFaults, flt)
		}
	}
	f.IMAReplayed = v.IMA != nil && len(f.IMAFaults) == 0
	if f.IMAReplayed {
		f.IMAEntries = v.IMAEntries
	}
	if v.Events == nil {
		// The event log was missing or did not decode: nothing replayed.
		return f
	}
	f.Replayed = map[string]map[int]bool{}
	for bank, values := range v.Quote.PCRs {
		for index := range values {
			if replayed(bank, index, v.Events[bank], f.EventLogFaults) {
				if f.Replayed[bank] == nil {
					f.Replayed[bank] = map[int]bool{}
				}
				f.Replayed[bank][index] = true
			}
		}
	}
	return f
}

// lastPreOSPCR is the last PCR appraise always replays; above it a PCR is
// replayed only when the log has events for it.
const lastPreOSPCR = 9

// evNoAction is the TCG EV_NO_ACTION event type.
const evNoAction = 3

func replayed(bank string, index int, events []appraise.Event, faults []appraise.Fault) bool {
	if slices.ContainsFunc(faults, func(f appraise.Fault) bool { return faultAbout(f, bank, index) }) {
		return false
	}
	if index <= lastPreOSPCR {
		return true
	}
	return slices.ContainsFunc(events, func(e appraise.Event) bool { return e.Index == index })
}

// faultAbout reports whether an event log fault concerns a PCR: it names
// the PCR, or its whole bank, or no bank at all.
func faultAbout(f appraise.Fault, bank string, index int) bool {
	if f.PCRBank != "" && f.PCRBank != bank {
		return false
	}
	return f.PCRIndex == nil || *f.PCRIndex == index
}

// pcrValue returns a quoted PCR value.
func (f *Facts) pcrValue(p PCR) ([]byte, bool) {
	v, ok := f.PCRs[p.Bank][p.Index]
	return v, ok
}

// events returns the verified events of one PCR, and false when its log
// did not replay.
func (f *Facts) events(p PCR) ([]appraise.Event, bool) {
	if !f.Replayed[p.Bank][p.Index] {
		return nil, false
	}
	var out []appraise.Event
	for _, e := range f.Events[p.Bank] {
		// EV_NO_ACTION events are not extended: the PCR does not cover them.
		if e.Index == p.Index && e.Type != evNoAction {
			out = append(out, e)
		}
	}
	return out, true
}
