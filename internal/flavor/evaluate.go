package flavor

import (
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"trustedcompute.io/tc/internal/appraise"
)

// TrustInformation is the trust_information of an HVS report.
type TrustInformation struct {
	// Overall is true when at least one part was evaluated and every
	// evaluated part is trusted.
	Overall      bool               `json:"OVERALL"`
	FlavorsTrust map[Part]PartTrust `json:"flavors_trust"`
}

// PartTrust is the outcome of one part. A part is trusted when it has at
// least one rule result and no faults.
type PartTrust struct {
	Trust bool         `json:"trust"`
	Rules []RuleResult `json:"rules"`
}

// RuleResult is one rule applied to one flavor.
type RuleResult struct {
	Rule     Rule             `json:"rule"`
	FlavorID string           `json:"flavor_id,omitempty"`
	Trusted  bool             `json:"trusted"`
	Faults   []appraise.Fault `json:"faults,omitempty"`
}

// Rule names a rule and what it expects.
type Rule struct {
	Name    string `json:"rule_name"`
	Markers []Part `json:"markers"`
	// ExpectedPCR names the PCR of a PCR rule, with the expected value for
	// PcrMatchesConstant.
	ExpectedPCR *ExpectedPCR `json:"expected_pcr,omitempty"`
	// ExcludeTags are the tags PcrEventLogEquals ignores.
	ExcludeTags []string `json:"exclude_tags,omitempty"`
	// ImaPolicy is the digest of the runtime policy of ImaPolicyMatches.
	ImaPolicy string `json:"ima_policy,omitempty"`
}

// ExpectedPCR is a PCR and, for PcrMatchesConstant, its expected value.
type ExpectedPCR struct {
	PCR         PCR    `json:"pcr"`
	Measurement string `json:"measurement,omitempty"`
}

// Rule names.
const (
	RulePcrMatchesConstant       = "PcrMatchesConstant"
	RulePcrEventLogEquals        = "PcrEventLogEquals"
	RulePcrEventLogIncludes      = "PcrEventLogIncludes"
	RulePcrEventLogIntegrity     = "PcrEventLogIntegrity"
	RuleImaEventLogEquals        = "ImaEventLogEquals"
	RuleImaPolicyMatches         = "ImaPolicyMatches"
	RuleImaReplay                = "ImaReplay"
	RuleFlavorTrusted            = "FlavorTrusted"
	RuleRequiredFlavorTypeExists = "RequiredFlavorTypeExists"
)

// Fault names of the flavor rules (appraise's event log and IMA faults are
// passed through as they are).
const (
	FaultPcrValueMissing                      = "PcrValueMissing"
	FaultPcrValueMismatch                     = "PcrValueMismatch"
	FaultPcrEventLogMissing                   = "PcrEventLogMissing"
	FaultPcrEventLogMissingExpectedEntries    = "PcrEventLogMissingExpectedEntries"
	FaultPcrEventLogContainsUnexpectedEntries = "PcrEventLogContainsUnexpectedEntries"
	FaultPcrEventLogOutOfOrder                = "PcrEventLogOutOfOrder"
	FaultImaEventLogMissing                   = "ImaEventLogMissing"
	FaultImaMissingExpectedEntries            = "ImaEventLogMissingExpectedEntries"
	FaultImaContainsUnexpectedEntries         = "ImaEventLogContainsUnexpectedEntries"
	FaultImaMeasurementMismatch               = "ImaMeasurementMismatch"
	FaultFlavorInvalid                        = "FlavorInvalid"
	FaultFlavorSignatureInvalid               = "FlavorSignatureInvalid"
	FaultFlavorCertificateUntrusted           = "FlavorCertificateUntrusted"
	FaultFlavorMissing                        = "FlavorMissing"
)

// Evaluate appraises a host's verified facts against the flavors of a group.
// flavors are the candidate flavors of the host (any part; parts the group
// has no policy for are ignored). roots are the CMS signing CA certificates
// every flavor's signature must chain to. The error reports an invalid group
// only; a failed appraisal is a TrustInformation with faults.
func Evaluate(g Group, flavors []SignedFlavor, facts Facts, roots *x509.CertPool, now time.Time) (TrustInformation, error) {
	if err := g.Validate(); err != nil {
		return TrustInformation{}, fmt.Errorf("evaluate flavor group %q: %w", g.Name, err)
	}
	headers := map[string]headerCheck{}
	check := func(sf SignedFlavor) error {
		_, err := verifyHeader(sf, roots, now, headers)
		return err
	}
	checked := make([]Checked, len(flavors))
	for i, sf := range flavors {
		checked[i] = Checked{sf: sf, check: check}
	}
	return evaluate(g, checked, facts), nil
}

// EvaluateChecked is Evaluate over flavors a Cache loaded and checked at
// the same now: their FlavorTrusted outcome is the one Load found.
func EvaluateChecked(g Group, flavors []Checked, facts Facts) (TrustInformation, error) {
	if err := g.Validate(); err != nil {
		return TrustInformation{}, fmt.Errorf("evaluate flavor group %q: %w", g.Name, err)
	}
	return evaluate(g, flavors, facts), nil
}

func evaluate(g Group, flavors []Checked, facts Facts) TrustInformation {
	ti := TrustInformation{FlavorsTrust: map[Part]PartTrust{}}
	facts.AppraiseIMAPolicy()
	for _, p := range g.MatchPolicies {
		var candidates []Checked
		for _, c := range flavors {
			if c.sf.Flavor.Meta.Description.FlavorPart == p.FlavorPart {
				candidates = append(candidates, c)
			}
		}
		if len(candidates) == 0 {
			if p.FlavorPart == PartIMA && facts.IMAPolicy != nil {
				continue // appraised with the policy below
			}
			if p.MatchPolicy.Required == RequiredAlways {
				ti.FlavorsTrust[p.FlavorPart] = flavorMissing(p.FlavorPart)
			}
			continue
		}
		ti.FlavorsTrust[p.FlavorPart] = evaluatePart(p, candidates, &facts)
	}
	if _, ok := ti.FlavorsTrust[PartIMA]; !ok && facts.IMAPolicy != nil {
		ti.FlavorsTrust[PartIMA] = imaPolicyPart(&facts)
	}
	ti.Overall = len(ti.FlavorsTrust) > 0
	for _, pt := range ti.FlavorsTrust {
		ti.Overall = ti.Overall && pt.Trust
	}
	return ti
}

func flavorMissing(part Part) PartTrust {
	return PartTrust{Rules: []RuleResult{{
		Rule: Rule{Name: RuleRequiredFlavorTypeExists, Markers: []Part{part}},
		Faults: []appraise.Fault{{
			Name:        FaultFlavorMissing,
			Description: fmt.Sprintf("the flavor group requires a %s flavor and the host has none", part),
		}},
	}}}
}

func evaluatePart(p PartPolicy, candidates []Checked, facts *Facts) PartTrust {
	if p.MatchPolicy.MatchType == MatchLatest {
		latest := candidates[0]
		for _, c := range candidates[1:] {
			a, b := c.sf.Flavor.Meta.Description.CreatedAt, latest.sf.Flavor.Meta.Description.CreatedAt
			if a.After(b) || (a.Equal(b) && c.sf.Flavor.Meta.ID > latest.sf.Flavor.Meta.ID) {
				latest = c
			}
		}
		candidates = []Checked{latest}
	}
	var all []RuleResult
	for _, c := range candidates {
		results := evaluateFlavor(c, facts)
		if p.MatchPolicy.MatchType == MatchAnyOf && passed(results) {
			return PartTrust{Trust: true, Rules: results}
		}
		all = append(all, results...)
	}
	return PartTrust{Trust: passed(all), Rules: all}
}

// passed reports whether results hold at least one rule and no fault.
func passed(results []RuleResult) bool {
	if len(results) == 0 {
		return false
	}
	for _, r := range results {
		if !r.Trusted || len(r.Faults) > 0 {
			return false
		}
	}
	return true
}

// evaluateFlavor applies every rule a flavor asks for. A flavor that is not
// valid or not trusted yields only its FlavorTrusted fault: its measurements
// mean nothing.
func evaluateFlavor(c Checked, facts *Facts) []RuleResult {
	f := &c.sf.Flavor
	part := f.Meta.Description.FlavorPart
	result := func(r Rule, faults []appraise.Fault) RuleResult {
		r.Markers = []Part{part}
		return RuleResult{Rule: r, FlavorID: f.Meta.ID, Trusted: len(faults) == 0, Faults: faults}
	}
	trusted := result(Rule{Name: RuleFlavorTrusted}, c.trustFaults())
	if !trusted.Trusted {
		return []RuleResult{trusted}
	}
	out := []RuleResult{trusted}
	for i := range f.PCRs {
		r := &f.PCRs[i]
		pcr := &ExpectedPCR{PCR: r.PCR}
		if r.PCRMatches {
			out = append(out, result(Rule{Name: RulePcrMatchesConstant, ExpectedPCR: &ExpectedPCR{PCR: r.PCR, Measurement: r.Measurement}}, pcrMatchesConstant(r, facts)))
		}
		if r.EventlogEquals != nil || len(r.EventlogIncludes) > 0 {
			out = append(out, result(Rule{Name: RulePcrEventLogIntegrity, ExpectedPCR: pcr}, pcrEventLogIntegrity(r.PCR, facts)))
		}
		if r.EventlogEquals != nil {
			out = append(out, result(Rule{Name: RulePcrEventLogEquals, ExpectedPCR: pcr, ExcludeTags: r.EventlogEquals.ExcludeTags}, pcrEventLogEquals(r, facts)))
		}
		if len(r.EventlogIncludes) > 0 {
			out = append(out, result(Rule{Name: RulePcrEventLogIncludes, ExpectedPCR: pcr}, pcrEventLogIncludes(r, facts)))
		}
	}
	switch {
	case f.IMALogs != nil && facts.IMAPolicy != nil:
		out = append(out,
			result(Rule{Name: RuleImaReplay}, imaReplay(facts)),
			result(Rule{Name: RuleImaPolicyMatches, ImaPolicy: facts.IMAPolicy.Digest()}, imaPolicyMatches(facts)))
	case f.IMALogs != nil:
		out = append(out,
			result(Rule{Name: RuleImaReplay}, imaReplay(facts)),
			result(Rule{Name: RuleImaEventLogEquals}, imaEventLogEquals(c.imaWant(), matchedBefore(c, facts), facts)))
	}
	return out
}

// imaPolicyPart is the IMA part of a host whose runtime policy applies
// without an IMA flavor: the log replayed and the policy allows it.
func imaPolicyPart(facts *Facts) PartTrust {
	result := func(r Rule, faults []appraise.Fault) RuleResult {
		r.Markers = []Part{PartIMA}
		return RuleResult{Rule: r, Trusted: len(faults) == 0, Faults: faults}
	}
	rules := []RuleResult{
		result(Rule{Name: RuleImaReplay}, imaReplay(facts)),
		result(Rule{Name: RuleImaPolicyMatches, ImaPolicy: facts.IMAPolicy.Digest()}, imaPolicyMatches(facts)),
	}
	return PartTrust{Trust: passed(rules), Rules: rules}
}

// flavorTrusted is the FlavorTrusted rule: a valid flavor whose signature
// verifies with a signing certificate under roots.
func flavorTrusted(sf SignedFlavor, checkSignature func(SignedFlavor) error) []appraise.Fault {
	if err := sf.Flavor.Validate(); err != nil {
		return []appraise.Fault{{Name: FaultFlavorInvalid, Description: err.Error()}}
	}
	err := checkSignature(sf)
	switch {
	case err == nil:
		return nil
	case isCertificateError(err):
		return []appraise.Fault{{Name: FaultFlavorCertificateUntrusted, Description: err.Error()}}
	default:
		return []appraise.Fault{{Name: FaultFlavorSignatureInvalid, Description: err.Error()}}
	}
}

func pcrFault(name string, p PCR, expected, actual, format string, args ...any) appraise.Fault {
	index := p.Index
	return appraise.Fault{
		Name:        name,
		Description: fmt.Sprintf(format, args...),
		PCRIndex:    &index,
		PCRBank:     p.Bank,
		Expected:    expected,
		Actual:      actual,
	}
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
