package flavor

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestDefaultGroupsAreTheReferenceOnes(t *testing.T) {
	groups := DefaultGroups()
	b, err := json.Marshal(groups[0])
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"name":"automatic","flavor_match_policy_collection":{"flavor_match_policies":[` +
		`{"flavor_part":"PLATFORM","match_policy":{"match_type":"ANY_OF","required":"REQUIRED"}},` +
		`{"flavor_part":"OS","match_policy":{"match_type":"ANY_OF","required":"REQUIRED"}},` +
		`{"flavor_part":"IMA","match_policy":{"match_type":"ALL_OF","required":"REQUIRED_IF_DEFINED"}},` +
		`{"flavor_part":"SOFTWARE","match_policy":{"match_type":"ALL_OF","required":"REQUIRED_IF_DEFINED"}},` +
		`{"flavor_part":"ASSET_TAG","match_policy":{"match_type":"LATEST","required":"REQUIRED_IF_DEFINED"}},` +
		`{"flavor_part":"HOST_UNIQUE","match_policy":{"match_type":"LATEST","required":"REQUIRED_IF_DEFINED"}}]}}`
	if string(b) != want {
		t.Errorf("automatic group JSON =\n%s\nwant\n%s", b, want)
	}
	for _, g := range groups {
		if err := g.Validate(); err != nil {
			t.Errorf("group %s: %v", g.Name, err)
		}
	}
	if groups[1].Name != GroupHostUnique || len(groups[1].MatchPolicies) != 1 || groups[1].MatchPolicies[0].FlavorPart != PartHostUnique {
		t.Errorf("host_unique group = %+v", groups[1])
	}
	var back Group
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back.MatchPolicies, groups[0].MatchPolicies) {
		t.Errorf("group round trip = %+v, %v", back, err)
	}
}

func TestGroupDecodingAndValidation(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"an unknown field is refused", `{"name":"g","flavorgroup":1,"flavor_match_policy_collection":{"flavor_match_policies":[]}}`},
		{"an unknown part is refused", `{"name":"g","flavor_match_policy_collection":{"flavor_match_policies":[{"flavor_part":"BIOS","match_policy":{"match_type":"ANY_OF","required":"REQUIRED"}}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Group
			if err := json.Unmarshal([]byte(tt.json), &g); err == nil {
				t.Errorf("decoded %+v, want an error", g)
			}
		})
	}
	g := Group{Name: "g", MatchPolicies: []PartPolicy{
		{FlavorPart: PartOS, MatchPolicy: MatchPolicy{MatchType: MatchAnyOf, Required: RequiredAlways}},
		{FlavorPart: PartOS, MatchPolicy: MatchPolicy{MatchType: MatchAllOf, Required: "SOMETIMES"}},
	}}
	err := g.Validate()
	if err == nil || !strings.Contains(err.Error(), "named twice") || !strings.Contains(err.Error(), "SOMETIMES") {
		t.Errorf("Validate() = %v, want both problems reported", err)
	}
}
