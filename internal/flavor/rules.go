package flavor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"trustedcompute.io/tc/internal/appraise"
)

func isCertificateError(err error) bool { return errors.Is(err, ErrCertificateUntrusted) }

// pcrMatchesConstant: the quoted PCR value equals the flavor's measurement.
func pcrMatchesConstant(r *PCRRule, facts *Facts) []appraise.Fault {
	actual, ok := facts.pcrValue(r.PCR)
	if !ok {
		return []appraise.Fault{pcrFault(FaultPcrValueMissing, r.PCR, r.Measurement, "",
			"the verified quote does not cover %s", r.PCR)}
	}
	if got := hex.EncodeToString(actual); got != r.Measurement {
		return []appraise.Fault{pcrFault(FaultPcrValueMismatch, r.PCR, r.Measurement, got,
			"%s differs from the flavor", r.PCR)}
	}
	return nil
}

// pcrEventLogIntegrity: the PCR's events replayed to its quoted value. The
// faults are appraise's replay faults about the PCR.
func pcrEventLogIntegrity(p PCR, facts *Facts) []appraise.Fault {
	if facts.Replayed[p.Bank][p.Index] {
		return nil
	}
	var faults []appraise.Fault
	for _, f := range facts.EventLogFaults {
		if faultAbout(f, p.Bank, p.Index) {
			faults = append(faults, f)
		}
	}
	if len(faults) == 0 {
		faults = append(faults, pcrFault(FaultPcrEventLogMissing, p, "", "",
			"there are no replay-verified events for %s", p))
	}
	return faults
}

// eventKey identifies an event for comparison: its type and digest.
type eventKey struct {
	typ    uint32
	digest string
}

func (e EventDigest) key() eventKey { return eventKey{e.TypeID, e.Digest} }

func (e EventDigest) label() string {
	name := e.TypeName
	if name == "" {
		name = appraise.EventTypeName(e.TypeID)
	}
	if e.Description != "" {
		name += " " + e.Description
		if e.Unverified {
			name += " (unverified)"
		}
	}
	return name + " " + e.Digest
}

// verifiedEvents returns the PCR's replay-verified events without the
// excluded tags, or a PcrEventLogMissing fault.
func verifiedEvents(p PCR, exclude []string, facts *Facts) ([]EventDigest, []appraise.Fault) {
	events, ok := facts.events(p)
	if !ok {
		return nil, []appraise.Fault{pcrFault(FaultPcrEventLogMissing, p, "", "",
			"the event log of %s did not replay to the quoted value", p)}
	}
	out := make([]EventDigest, 0, len(events))
	for _, e := range events {
		if !tagged(e, exclude) {
			out = append(out, eventDigest(e))
		}
	}
	return out, nil
}

// diffEvents returns the events of want missing from got and the events of
// got not in want, counting repeats.
func diffEvents(want, got []EventDigest) (missing, unexpected []string) {
	count := map[eventKey]int{}
	for _, e := range got {
		count[e.key()]++
	}
	for _, e := range want {
		if count[e.key()] > 0 {
			count[e.key()]--
			continue
		}
		missing = append(missing, e.label())
	}
	for _, e := range got {
		if count[e.key()] > 0 {
			count[e.key()]--
			unexpected = append(unexpected, e.label())
		}
	}
	return missing, unexpected
}

// pcrEventLogEquals: the PCR's verified events, without the excluded tags,
// are the flavor's events in the flavor's order.
func pcrEventLogEquals(r *PCRRule, facts *Facts) []appraise.Fault {
	eq := r.EventlogEquals
	got, faults := verifiedEvents(r.PCR, eq.ExcludeTags, facts)
	if faults != nil {
		return faults
	}
	want := make([]EventDigest, 0, len(eq.Events))
	for _, e := range eq.Events {
		if !hasTag(e.TypeName, e.Description, eq.ExcludeTags) {
			want = append(want, e)
		}
	}
	missing, unexpected := diffEvents(want, got)
	if len(missing) > 0 {
		f := pcrFault(FaultPcrEventLogMissingExpectedEntries, r.PCR, "", "",
			"%d events of the flavor are not in the event log of %s", len(missing), r.PCR)
		f.MissingEntries = missing
		faults = append(faults, f)
	}
	if len(unexpected) > 0 {
		f := pcrFault(FaultPcrEventLogContainsUnexpectedEntries, r.PCR, "", "",
			"the event log of %s has %d events the flavor does not have", r.PCR, len(unexpected))
		f.UnexpectedEntries = unexpected
		faults = append(faults, f)
	}
	if faults == nil && !slices.EqualFunc(want, got, func(a, b EventDigest) bool { return a.key() == b.key() }) {
		faults = append(faults, pcrFault(FaultPcrEventLogOutOfOrder, r.PCR, "", "",
			"the event log of %s has the flavor's events in a different order", r.PCR))
	}
	return faults
}

// pcrEventLogIncludes: every event the flavor lists is among the PCR's
// verified events.
func pcrEventLogIncludes(r *PCRRule, facts *Facts) []appraise.Fault {
	got, faults := verifiedEvents(r.PCR, nil, facts)
	if faults != nil {
		return faults
	}
	missing, _ := diffEvents(r.EventlogIncludes, got)
	if len(missing) == 0 {
		return nil
	}
	f := pcrFault(FaultPcrEventLogMissingExpectedEntries, r.PCR, "", "",
		"%d events the flavor requires are not in the event log of %s", len(missing), r.PCR)
	f.MissingEntries = missing
	return []appraise.Fault{f}
}

// imaReplay: the IMA log replayed to the quoted PCR 10.
func imaReplay(facts *Facts) []appraise.Fault {
	if facts.IMAReplayed {
		return nil
	}
	if len(facts.IMAFaults) > 0 {
		return slices.Clone(facts.IMAFaults)
	}
	return []appraise.Fault{{Name: FaultImaEventLogMissing, Description: "the IMA log was not appraised against the quoted PCR 10"}}
}

// imaPolicyMatches: the replay-verified IMA entries are allowed by the
// host's runtime policy. The entries facts.IMAPolicyProgress covers are not
// appraised again.
func imaPolicyMatches(facts *Facts) []appraise.Fault {
	if !facts.IMAReplayed {
		return []appraise.Fault{{Name: FaultImaEventLogMissing, Description: "there are no replay-verified IMA entries"}}
	}
	return facts.IMAPolicy.Continue(facts.IMAPolicyProgress, facts.IMAEntries, facts.PCRs).Faults()
}

// imaWant is an IMA flavor's measurements indexed for the rule: files in
// the flavor's order, and each file's measurements sorted and unique in
// one flat list (file i has flat[start[i]:start[i+1]]).
type imaWant struct {
	files []string
	index map[string]int
	flat  []string
	start []int
}

func newIMAWant(l *IMALogs) *imaWant {
	byFile := make(map[string][]string, len(l.ImaMeasurements))
	w := &imaWant{index: make(map[string]int, len(l.ImaMeasurements))}
	for _, m := range l.ImaMeasurements {
		if _, ok := byFile[m.File]; !ok {
			w.index[m.File] = len(w.files)
			w.files = append(w.files, m.File)
		}
		byFile[m.File] = append(byFile[m.File], m.Measurement)
	}
	for _, file := range w.files {
		w.start = append(w.start, len(w.flat))
		w.flat = append(w.flat, sortedUnique(byFile[file])...)
	}
	w.start = append(w.start, len(w.flat))
	return w
}

// lists reports whether every entry is a file of the flavor measured with
// one of its measurements.
func (w *imaWant) lists(entries []appraise.IMAEntry) bool {
	for _, e := range entries {
		fi, ok := w.index[e.Path]
		if !ok {
			return false
		}
		m := measured{alg: e.FileHashAlg, digest: e.FileHash}
		if !slices.ContainsFunc(w.measurements(fi), m.is) {
			return false
		}
	}
	return true
}

// measurements returns file i's measurements, sorted and unique.
func (w *imaWant) measurements(i int) []string { return w.flat[w.start[i]:w.start[i+1]] }

// measured is one file measurement of an IMA entry, compared with the
// flavor's "<alg>:<hex>" strings without encoding it.
type measured struct {
	alg    string
	digest []byte
}

func (m measured) String() string { return m.alg + ":" + hex.EncodeToString(m.digest) }

func (m measured) equal(o measured) bool { return m.alg == o.alg && bytes.Equal(m.digest, o.digest) }

// is reports whether s is m's "<alg>:<lower-case hex>".
func (m measured) is(s string) bool {
	const digits = "0123456789abcdef"
	if len(s) != len(m.alg)+1+2*len(m.digest) || s[:len(m.alg)] != m.alg || s[len(m.alg)] != ':' {
		return false
	}
	h := s[len(m.alg)+1:]
	for i, b := range m.digest {
		if h[2*i] != digits[b>>4] || h[2*i+1] != digits[b&0x0f] {
			return false
		}
	}
	return true
}

// imaEventLogEquals: the replay-verified IMA entries are the flavor's file
// list. A file the flavor does not list is an unexpected entry; a listed
// file with another measurement is an ImaMeasurementMismatch naming the
// file; a listed measurement the log lacks is a missing entry. Faults come
// in the order of the files' first entries, then of the flavor.
//
// known is how many first entries are known to match the flavor exactly
// (matchedBefore): when each entry after them is a listed file with one of
// its listed measurements, nothing changes and there is no fault; any
// other entry is looked at with the whole log, for the faults in order.
func imaEventLogEquals(w *imaWant, known int, facts *Facts) []appraise.Fault {
	if !facts.IMAReplayed {
		return []appraise.Fault{{Name: FaultImaEventLogMissing, Description: "there are no replay-verified IMA entries"}}
	}
	if known > 0 && w.lists(facts.IMAEntries[known:]) {
		return nil
	}
	firstSeen := make([]int, len(w.files)) // 1 + the index of the file's first entry; 0: none
	matched := make([]bool, len(w.flat))
	var unexpected []string
	var unlisted map[string]bool
	var mismatched map[int][]measured // by file, in order of first entry
	for pos, e := range facts.IMAEntries {
		fi, listed := w.index[e.Path]
		if !listed {
			if !unlisted[e.Path] {
				if unlisted == nil {
					unlisted = map[string]bool{}
				}
				unlisted[e.Path] = true
				unexpected = append(unexpected, e.Path)
			}
			continue
		}
		if firstSeen[fi] == 0 {
			firstSeen[fi] = pos + 1
		}
		m := measured{alg: e.FileHashAlg, digest: e.FileHash}
		found := false
		for k := w.start[fi]; k < w.start[fi+1]; k++ {
			if m.is(w.flat[k]) {
				matched[k], found = true, true
				break
			}
		}
		if !found && !slices.ContainsFunc(mismatched[fi], m.equal) {
			if mismatched == nil {
				mismatched = map[int][]measured{}
			}
			mismatched[fi] = append(mismatched[fi], m)
		}
	}
	var faults []appraise.Fault
	changed := slices.Collect(maps.Keys(mismatched))
	slices.SortFunc(changed, func(a, b int) int { return firstSeen[a] - firstSeen[b] })
	for _, fi := range changed {
		file := w.files[fi]
		for _, m := range mismatched[fi] {
			faults = append(faults, appraise.Fault{
				Name:        FaultImaMeasurementMismatch,
				Description: fmt.Sprintf("%s was measured with a value the flavor does not have", file),
				File:        file,
				Expected:    strings.Join(w.measurements(fi), ","),
				Actual:      m.String(),
			})
		}
	}
	var missing []string
	for fi, file := range w.files {
		if firstSeen[fi] == 0 {
			missing = append(missing, file)
			continue
		}
		if mismatched[fi] != nil {
			continue
		}
		for k := w.start[fi]; k < w.start[fi+1]; k++ {
			if !matched[k] {
				missing = append(missing, file+" "+w.flat[k])
			}
		}
	}
	return imaListFaults(faults, unexpected, missing)
}

// imaListFaults appends the faults of unexpected files and missing
// measurements, if any.
func imaListFaults(faults []appraise.Fault, unexpected, missing []string) []appraise.Fault {
	if len(unexpected) > 0 {
		faults = append(faults, appraise.Fault{
			Name:              FaultImaContainsUnexpectedEntries,
			Description:       fmt.Sprintf("the IMA log measured %d files the flavor does not list", len(unexpected)),
			UnexpectedEntries: unexpected,
		})
	}
	if len(missing) > 0 {
		faults = append(faults, appraise.Fault{
			Name:           FaultImaMissingExpectedEntries,
			Description:    fmt.Sprintf("%d measurements of the flavor are not in the IMA log", len(missing)),
			MissingEntries: missing,
		})
	}
	return faults
}
