package auth

import "testing"

func TestClaimsAllows(t *testing.T) {
	claims := &Claims{Permissions: []Permission{
		{Service: "HVS", Rules: []string{"hosts:create:*", "reports:search:*", "bogus"}},
		{Service: "AAS", Rules: []string{"*:*:*"}},
	}}
	tests := []struct {
		name, service, need string
		want                bool
	}{
		{"an exact resource and action with a wildcard selector is allowed", "HVS", "hosts:create:h1", true},
		{"another action on the same resource is refused", "HVS", "hosts:delete:h1", false},
		{"a rule of another service grants nothing here", "CMS", "hosts:create:h1", false},
		{"a full wildcard grants everything in its service", "AAS", "users:delete:u1", true},
		{"a malformed granted rule grants nothing", "HVS", "bogus:x:y", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			need, err := ParseRule(tt.need)
			if err != nil {
				t.Fatal(err)
			}
			if got := claims.Allows(tt.service, need); got != tt.want {
				t.Fatalf("Allows(%s, %s) = %v, want %v", tt.service, tt.need, got, tt.want)
			}
		})
	}
	var none *Claims
	if none.Allows("HVS", Rule{"hosts", "create", "*"}) {
		t.Fatal("nil claims must allow nothing")
	}
}

func TestParseRuleRejectsMalformedRules(t *testing.T) {
	for _, s := range []string{"", "a:b", "a:b:c:d", "a::c"} {
		if _, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q) succeeded, want an error", s)
		}
	}
}
