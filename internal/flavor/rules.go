package flavor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
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

// imaWant is an IMA flavor's measurements by file, files in the flavor's
// order, with each file's measurements sorted and unique.
type imaWant struct {
	byFile map[string][]string
	files  []string
	sorted map[string][]string
}

func newIMAWant(l *IMALogs) *imaWant {
	w := &imaWant{byFile: make(map[string][]string, len(l.ImaMeasurements))}
	for _, m := range l.ImaMeasurements {
		if _, ok := w.byFile[m.File]; !ok {
			w.files = append(w.files, m.File)
		}
		w.byFile[m.File] = append(w.byFile[m.File], m.Measurement)
	}
	w.sorted = make(map[string][]string, len(w.byFile))
	for file, ms := range w.byFile {
		w.sorted[file] = sortedUnique(ms)
	}
	return w
}

// measured is one file measurement of an IMA entry, compared with the
// flavor's "<alg>:<hex>" strings without encoding it.
type measured struct {
	alg    string
	digest []byte
}

func (m measured) String() string { return m.alg + ":" + hex.EncodeToString(m.digest) }

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
// file; a listed measurement the log lacks is a missing entry.
func imaEventLogEquals(w *imaWant, facts *Facts) []appraise.Fault {
	if !facts.IMAReplayed {
		return []appraise.Fault{{Name: FaultImaEventLogMissing, Description: "there are no replay-verified IMA entries"}}
	}
	want, wantFiles := w.byFile, w.files
	// Each file's first measurement, and the rare others.
	got := make(map[string]measured, len(want))
	more := map[string][]measured{}
	var gotFiles []string
	for _, e := range facts.IMAEntries {
		m := measured{alg: e.FileHashAlg, digest: e.FileHash}
		first, ok := got[e.Path]
		if !ok {
			gotFiles = append(gotFiles, e.Path)
			got[e.Path] = m
			continue
		}
		same := func(o measured) bool { return o.alg == m.alg && bytes.Equal(o.digest, m.digest) }
		if !same(first) && !slices.ContainsFunc(more[e.Path], same) {
			more[e.Path] = append(more[e.Path], m)
		}
	}
	gotOf := func(file string) []measured {
		first, ok := got[file]
		if !ok {
			return nil
		}
		return append([]measured{first}, more[file]...)
	}
	var faults []appraise.Fault
	var unexpected, missing []string
	changed := map[string]bool{}
	for _, file := range gotFiles {
		expected, listed := want[file]
		if !listed {
			unexpected = append(unexpected, file)
			continue
		}
		for _, m := range gotOf(file) {
			if !slices.ContainsFunc(expected, m.is) {
				changed[file] = true
				faults = append(faults, appraise.Fault{
					Name:        FaultImaMeasurementMismatch,
					Description: fmt.Sprintf("%s was measured with a value the flavor does not have", file),
					File:        file,
					Expected:    strings.Join(w.sorted[file], ","),
					Actual:      m.String(),
				})
			}
		}
	}
	for _, file := range wantFiles {
		first, measuredOK := got[file]
		if !measuredOK {
			missing = append(missing, file)
			continue
		}
		if changed[file] {
			continue
		}
		for _, m := range w.sorted[file] {
			if !first.is(m) && !slices.ContainsFunc(more[file], func(o measured) bool { return o.is(m) }) {
				missing = append(missing, file+" "+m)
			}
		}
	}
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
