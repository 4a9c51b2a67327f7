package flavor

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
)

// The IMA rule indexes the flavor once and compares digests without
// encoding them; it must give exactly the faults, in the same order, of
// the rule as first written (referenceIMAEventLogEquals, below), on logs
// with unexpected, changed, repeated and missing files.
func TestTheIndexedIMARuleGivesTheFaultsOfTheReferenceRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	seen := map[string]int{}
	for round := range 300 {
		files := 1 + rng.IntN(12)
		var l IMALogs
		var entries []appraise.IMAEntry
		for f := range files {
			path := fmt.Sprintf("/f%d", f)
			for range 1 + rng.IntN(2) {
				content := fmt.Sprintf("c%d", rng.IntN(3))
				e := imaEntry(path, content)
				if rng.IntN(4) > 0 {
					l.ImaMeasurements = append(l.ImaMeasurements, imaMeasurement(e))
				}
				if rng.IntN(3) > 0 {
					entries = append(entries, e)
				}
			}
		}
		for range rng.IntN(4) {
			entries = append(entries, imaEntry(fmt.Sprintf("/unlisted%d", rng.IntN(3)), "x"))
		}
		rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		entries = append(entries, entries[:rng.IntN(len(entries)+1)]...) // measured again
		facts := &Facts{IMAReplayed: true, IMAEntries: entries}
		got := imaEventLogEquals(newIMAWant(&l), 0, facts)
		want := referenceIMAEventLogEquals(&l, facts)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: faults\n%+v\nwant\n%+v", round, got, want)
		}
		for _, f := range got {
			seen[f.Name]++
		}
	}
	for _, name := range []string{FaultImaMeasurementMismatch, FaultImaContainsUnexpectedEntries, FaultImaMissingExpectedEntries} {
		if seen[name] < 10 {
			t.Errorf("only %d rounds gave %s: the logs do not exercise it", seen[name], name)
		}
	}
}

func referenceIMAEventLogEquals(l *IMALogs, facts *Facts) []appraise.Fault {
	if !facts.IMAReplayed {
		return []appraise.Fault{{Name: FaultImaEventLogMissing, Description: "there are no replay-verified IMA entries"}}
	}
	want := map[string][]string{}
	var wantFiles []string
	for _, m := range l.ImaMeasurements {
		if _, ok := want[m.File]; !ok {
			wantFiles = append(wantFiles, m.File)
		}
		want[m.File] = append(want[m.File], m.Measurement)
	}
	got := map[string][]string{}
	var gotFiles []string
	for _, e := range facts.IMAEntries {
		m := imaMeasurement(e)
		if _, ok := got[m.File]; !ok {
			gotFiles = append(gotFiles, m.File)
		}
		if !slices.Contains(got[m.File], m.Measurement) {
			got[m.File] = append(got[m.File], m.Measurement)
		}
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
		for _, m := range got[file] {
			if !slices.Contains(expected, m) {
				changed[file] = true
				faults = append(faults, appraise.Fault{
					Name:        FaultImaMeasurementMismatch,
					Description: fmt.Sprintf("%s was measured with a value the flavor does not have", file),
					File:        file,
					Expected:    strings.Join(sortedUnique(expected), ","),
					Actual:      m,
				})
			}
		}
	}
	for _, file := range wantFiles {
		actual, measured := got[file]
		if !measured {
			missing = append(missing, file)
			continue
		}
		if changed[file] {
			continue
		}
		for _, m := range sortedUnique(want[file]) {
			if !slices.Contains(actual, m) {
				missing = append(missing, file+" "+m)
			}
		}
	}
	return imaListFaults(faults, unexpected, missing)
}

// After a report whose entries matched the flavor exactly, the next report
// of the boot checks only the entries after them. That must give exactly
// the faults of the whole log: none when every new entry is a listed file
// with a listed measurement, and otherwise the faults of the reference
// rule, in order.
func TestTheIMARuleAfterAMatchedPrefixGivesTheFaultsOfTheWholeLog(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 3))
	taken := map[bool]int{}
	for round := range 300 {
		var prefix []appraise.IMAEntry
		for f := range 1 + rng.IntN(10) {
			for range 1 + rng.IntN(2) {
				prefix = append(prefix, imaEntry(fmt.Sprintf("/f%d", f), fmt.Sprintf("c%d", rng.IntN(3))))
			}
		}
		var l IMALogs
		for _, e := range prefix {
			l.ImaMeasurements = append(l.ImaMeasurements, imaMeasurement(e))
		}
		entries := slices.Clone(prefix)
		for range rng.IntN(5) {
			switch rng.IntN(6) {
			case 0: // a listed file with a measurement the flavor lacks
				entries = append(entries, imaEntry(prefix[rng.IntN(len(prefix))].Path, "changed"))
			case 1: // a file the flavor does not list
				entries = append(entries, imaEntry(fmt.Sprintf("/unlisted%d", rng.IntN(3)), "x"))
			default: // a listed file measured again
				entries = append(entries, prefix[rng.IntN(len(prefix))])
			}
		}
		facts := &Facts{IMAReplayed: true, IMAEntries: entries}
		w := newIMAWant(&l)
		if f := imaEventLogEquals(w, 0, &Facts{IMAReplayed: true, IMAEntries: prefix}); f != nil {
			t.Fatalf("round %d: the prefix does not match its own flavor: %+v", round, f)
		}
		got := imaEventLogEquals(w, len(prefix), facts)
		want := referenceIMAEventLogEquals(&l, facts)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: after the matched prefix, faults\n%+v\nwant\n%+v", round, got, want)
		}
		taken[len(want) == 0]++
	}
	if taken[true] < 30 || taken[false] < 30 {
		t.Fatalf("rounds without faults %d, with faults %d: the logs do not exercise both", taken[true], taken[false])
	}
}
