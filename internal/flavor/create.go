package flavor

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"trustedcompute.io/tc/internal/appraise"
)

// ErrNoTemplate: no template whose conditions hold defines a requested part.
var ErrNoTemplate = errors.New("no matching flavor template")

// MissingEvidenceError says which verified value a template needs and the
// host's evidence does not hold.
type MissingEvidenceError struct {
	Part  Part
	Index int      // the PCR, or -1 for the IMA log
	Banks []string // the banks tried
	What  string
}

func (e *MissingEvidenceError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%s flavor: %s", e.Part, e.What)
	}
	return fmt.Sprintf("%s flavor: PCR %d in banks %v: %s", e.Part, e.Index, e.Banks, e.What)
}

// FromEvidence makes one flavor per requested part from a host's verified
// facts, with the PCR rules of the templates whose conditions hold for the
// manifest (rules of several templates for the same PCR are merged). Only
// verified values go into a flavor: quote-covered PCRs, events of PCRs whose
// log replayed and IMA entries that replayed. newID makes flavor IDs (a
// random UUID in production); now becomes CreatedAt.
//
// The error wraps ErrNoTemplate or is a *MissingEvidenceError or a
// *ConditionError.
func FromEvidence(m Manifest, facts Facts, templates []*CompiledTemplate, parts []Part, newID func() string, now time.Time) ([]Flavor, error) {
	if len(parts) == 0 {
		return nil, errors.New("create flavors: no flavor part requested")
	}
	for i, p := range parts {
		if !p.Valid() || slices.Contains(parts[:i], p) {
			return nil, fmt.Errorf("create flavors: unknown or repeated flavor part %q", p)
		}
	}
	var matched []*CompiledTemplate
	for _, t := range templates {
		ok, err := t.Matches(m)
		if err != nil {
			return nil, fmt.Errorf("create flavors: %w", err)
		}
		if ok {
			matched = append(matched, t)
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("create flavors: %w: no template condition holds for host %q", ErrNoTemplate, m.HostName)
	}
	var flavors []Flavor
	for _, part := range parts {
		pt, label, ok := mergePart(matched, part)
		if !ok {
			return nil, fmt.Errorf("create flavors: %w defines part %s", ErrNoTemplate, part)
		}
		f, err := makeFlavor(m, facts, part, pt)
		if err != nil {
			return nil, fmt.Errorf("create flavors: %w", err)
		}
		f.Meta.ID = newID()
		f.Meta.Description.Label = label
		f.Meta.Description.CreatedAt = now
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("create flavors: %s flavor: %w", part, err)
		}
		flavors = append(flavors, f)
	}
	return flavors, nil
}

// mergePart merges the rules of one part over the matched templates: per PCR
// the checks are OR-ed and the tags joined; the bank preference of the
// first template naming the PCR wins.
func mergePart(templates []*CompiledTemplate, part Part) (PartTemplate, string, bool) {
	var out PartTemplate
	label, found := "", false
	for _, c := range templates {
		pt, ok := c.t.FlavorParts[part]
		if !ok {
			continue
		}
		if !found {
			label, found = c.t.ID, true
		}
		out.IMALog = out.IMALog || pt.IMALog
		for _, r := range pt.PCRRules {
			i := slices.IndexFunc(out.PCRRules, func(x PCRRuleTemplate) bool { return x.PCR.Index == r.PCR.Index })
			if i < 0 {
				r.EventlogIncludes = slices.Clone(r.EventlogIncludes)
				if r.EventlogEquals != nil {
					r.EventlogEquals = &EventlogEqualsTemplate{ExcludingTags: slices.Clone(r.EventlogEquals.ExcludingTags)}
				}
				out.PCRRules = append(out.PCRRules, r)
				continue
			}
			x := &out.PCRRules[i]
			x.PCRMatches = x.PCRMatches || r.PCRMatches
			x.EventlogIncludes = union(x.EventlogIncludes, r.EventlogIncludes)
			if r.EventlogEquals != nil {
				if x.EventlogEquals == nil {
					x.EventlogEquals = &EventlogEqualsTemplate{}
				}
				x.EventlogEquals.ExcludingTags = union(x.EventlogEquals.ExcludingTags, r.EventlogEquals.ExcludingTags)
			}
		}
	}
	return out, label, found
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func makeFlavor(m Manifest, facts Facts, part Part, pt PartTemplate) (Flavor, error) {
	f := Flavor{Meta: Meta{Description: Description{
		FlavorPart: part,
		Source:     m.HostName,
		TPMVersion: m.TPMVersion,
	}}}
	d := &f.Meta.Description
	switch part {
	case PartPlatform:
		d.BiosName, d.BiosVersion = m.BIOSName, m.BIOSVersion
		f.Hardware = &Hardware{Feature: Feature{
			TPM:  &TPMFeature{Enabled: true, Version: m.TPMVersion, PCRBanks: slices.Clone(m.PCRBanks)},
			UEFI: &UEFIFeature{Enabled: m.UEFIEnabled, SecureBootEnabled: facts.SecureBoot.Enabled},
		}}
	case PartOS, PartIMA:
		d.OSName, d.OSVersion = m.OSName, m.OSVersion
	case PartHostUnique:
		d.HardwareUUID = m.HardwareUUID
	}
	for _, rt := range pt.PCRRules {
		r, err := makePCRRule(facts, part, rt)
		if err != nil {
			return Flavor{}, err
		}
		f.PCRs = append(f.PCRs, r)
	}
	if pt.IMALog {
		if !facts.IMAReplayed {
			return Flavor{}, &MissingEvidenceError{Part: part, Index: -1, What: "the IMA log did not replay to the quoted PCR 10"}
		}
		f.IMALogs = imaLogs(facts.IMAEntries)
	}
	return f, nil
}

func makePCRRule(facts Facts, part Part, rt PCRRuleTemplate) (PCRRule, error) {
	missing := func(what string) error {
		return &MissingEvidenceError{Part: part, Index: rt.PCR.Index, Banks: rt.PCR.Banks, What: what}
	}
	var p PCR
	var value []byte
	for _, b := range rt.PCR.Banks {
		if v, ok := facts.pcrValue(PCR{Index: rt.PCR.Index, Bank: b}); ok {
			p, value = PCR{Index: rt.PCR.Index, Bank: b}, v
			break
		}
	}
	if value == nil {
		return PCRRule{}, missing("the quote covers none of these banks")
	}
	r := PCRRule{PCR: p, Measurement: hex.EncodeToString(value), PCRMatches: rt.PCRMatches}
	if rt.EventlogEquals == nil && len(rt.EventlogIncludes) == 0 {
		return r, nil
	}
	events, ok := facts.events(p)
	if !ok {
		return PCRRule{}, missing(fmt.Sprintf("the %s event log did not replay", p.Bank))
	}
	if eq := rt.EventlogEquals; eq != nil {
		r.EventlogEquals = &EventlogEquals{Events: []EventDigest{}, ExcludeTags: slices.Clone(eq.ExcludingTags)}
		for _, e := range events {
			if !tagged(e, eq.ExcludingTags) {
				r.EventlogEquals.Events = append(r.EventlogEquals.Events, eventDigest(e))
			}
		}
	}
	for _, tag := range rt.EventlogIncludes {
		n := 0
		for _, e := range events {
			if tagged(e, []string{tag}) {
				r.EventlogIncludes = append(r.EventlogIncludes, eventDigest(e))
				n++
			}
		}
		if n == 0 {
			return PCRRule{}, missing(fmt.Sprintf("no event has the tag %q", tag))
		}
	}
	return r, nil
}

// tagged reports whether an event carries one of the tags: an event's tags
// are its type name (EV_...) and its description (an EFI variable name, ...).
func tagged(e appraise.Event, tags []string) bool { return hasTag(e.TypeName, e.Description, tags) }

func hasTag(typeName, description string, tags []string) bool {
	for _, t := range tags {
		if t == typeName || (description != "" && t == description) {
			return true
		}
	}
	return false
}

func eventDigest(e appraise.Event) EventDigest {
	return EventDigest{TypeID: e.Type, TypeName: e.TypeName, Digest: e.Digest, Description: e.Description, Unverified: !e.Verified}
}

func imaLogs(entries []appraise.IMAEntry) *IMALogs {
	l := &IMALogs{ImaMeasurements: []IMAMeasurement{}}
	seen := map[IMAMeasurement]bool{}
	for _, e := range entries {
		l.ImaTemplate = cmp.Or(l.ImaTemplate, e.Template)
		m := imaMeasurement(e)
		if !seen[m] {
			seen[m] = true
			l.ImaMeasurements = append(l.ImaMeasurements, m)
		}
	}
	return l
}

func imaMeasurement(e appraise.IMAEntry) IMAMeasurement {
	return IMAMeasurement{File: e.Path, Measurement: e.FileHashAlg + ":" + hex.EncodeToString(e.FileHash)}
}
