package flavor

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// MatchType says how the flavors of one part combine.
type MatchType string

// Match types.
const (
	// MatchAnyOf: the part is trusted when one of its flavors matches.
	MatchAnyOf MatchType = "ANY_OF"
	// MatchAllOf: every flavor of the part must match.
	MatchAllOf MatchType = "ALL_OF"
	// MatchLatest: only the newest flavor of the part (by created_at) counts.
	MatchLatest MatchType = "LATEST"
)

// Required says whether a part must have flavors.
type Required string

// Required values.
const (
	// Required: a part without flavors is untrusted (fault FlavorMissing).
	RequiredAlways Required = "REQUIRED"
	// RequiredIfDefined: a part without flavors is not evaluated.
	RequiredIfDefined Required = "REQUIRED_IF_DEFINED"
)

// MatchPolicy is the policy of one part.
type MatchPolicy struct {
	MatchType MatchType `json:"match_type"`
	Required  Required  `json:"required"`
}

// PartPolicy binds a match policy to a part.
type PartPolicy struct {
	FlavorPart  Part        `json:"flavor_part"`
	MatchPolicy MatchPolicy `json:"match_policy"`
}

// Group is a flavor group: the match policy of each part it appraises. Its
// JSON puts the policies in flavor_match_policy_collection.flavor_match_policies.
type Group struct {
	ID            string
	Name          string
	MatchPolicies []PartPolicy
}

// Default group names.
const (
	GroupAutomatic  = "automatic"
	GroupHostUnique = "host_unique"
)

// DefaultGroups returns the groups every verifier starts with.
func DefaultGroups() []Group {
	p := func(part Part, t MatchType, r Required) PartPolicy {
		return PartPolicy{FlavorPart: part, MatchPolicy: MatchPolicy{MatchType: t, Required: r}}
	}
	return []Group{
		{Name: GroupAutomatic, MatchPolicies: []PartPolicy{
			p(PartPlatform, MatchAnyOf, RequiredAlways),
			p(PartOS, MatchAnyOf, RequiredAlways),
			p(PartIMA, MatchAllOf, RequiredIfDefined),
			p(PartSoftware, MatchAllOf, RequiredIfDefined),
			p(PartAssetTag, MatchLatest, RequiredIfDefined),
			p(PartHostUnique, MatchLatest, RequiredIfDefined),
		}},
		{Name: GroupHostUnique, MatchPolicies: []PartPolicy{
			p(PartHostUnique, MatchLatest, RequiredIfDefined),
		}},
	}
}

// Validate checks a group: a name, and each known part at most once with a
// known match type and required value.
func (g *Group) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, invalid(format, args...)) }
	if g.Name == "" || len(g.Name) > maxIDLength {
		add("flavor group name must be 1 to %d bytes", maxIDLength)
	}
	if len(g.MatchPolicies) == 0 {
		add("flavor group %q has no match policy", g.Name)
	}
	for i, p := range g.MatchPolicies {
		if !p.FlavorPart.Valid() {
			add("match policy %d: unknown flavor part %q", i, p.FlavorPart)
		}
		if slices.ContainsFunc(g.MatchPolicies[:i], func(q PartPolicy) bool { return q.FlavorPart == p.FlavorPart }) {
			add("match policy %d: flavor part %s named twice", i, p.FlavorPart)
		}
		switch p.MatchPolicy.MatchType {
		case MatchAnyOf, MatchAllOf, MatchLatest:
		default:
			add("match policy %d: unknown match_type %q", i, p.MatchPolicy.MatchType)
		}
		switch p.MatchPolicy.Required {
		case RequiredAlways, RequiredIfDefined:
		default:
			add("match policy %d: unknown required %q", i, p.MatchPolicy.Required)
		}
	}
	return errors.Join(errs...)
}

type groupWire struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name"`
	Collection struct {
		Policies []PartPolicy `json:"flavor_match_policies"`
	} `json:"flavor_match_policy_collection"`
}

// MarshalJSON writes the HVS shape of a group.
func (g Group) MarshalJSON() ([]byte, error) {
	w := groupWire{ID: g.ID, Name: g.Name}
	w.Collection.Policies = g.MatchPolicies
	return json.Marshal(w)
}

// UnmarshalJSON reads the HVS shape of a group, rejecting unknown fields.
func (g *Group) UnmarshalJSON(b []byte) error {
	var w groupWire
	if err := decodeStrict(b, MaxTemplateSize, &w); err != nil {
		return fmt.Errorf("flavor group: %w", err)
	}
	*g = Group{ID: w.ID, Name: w.Name, MatchPolicies: w.Collection.Policies}
	return nil
}
