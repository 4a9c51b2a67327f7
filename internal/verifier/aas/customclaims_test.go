package aas

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/auth"
)

// loginAs creates the user name with the given roles (created in the store)
// and returns its id and a login token.
func (f *fixture) loginAs(t testing.TB, name string, roles ...Role) (string, string) {
	t.Helper()
	pw := name + "'s long password"
	id := f.createUser(t, name, pw)
	var ids []string
	for _, r := range roles {
		rid, err := f.aas.ensureRole(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rid)
	}
	if len(ids) > 0 {
		if err := f.store.AddUserRoles(t.Context(), id, ids); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := f.aas.Login(t.Context(), name, pw)
	if err != nil {
		t.Fatal(err)
	}
	return id, tok
}

func (f *fixture) mint(t testing.TB, caller, body string) (int, string) {
	t.Helper()
	rec := f.do(t, request{method: "POST", path: "/aas/v1/custom-claims-token", token: caller, contentType: "application/json", body: body})
	return rec.Code, rec.Body.String()
}

const (
	approverTLS     = "CN=localhost;SAN=localhost,127.0.0.1;certType=TLS"
	approverSigning = "CN=localhost;SAN=localhost,127.0.0.1;certType=Signing"
)

var minter = Role{Service: Service, Name: "Minter", Permissions: []string{RuleCustomClaimsCreate}}

func customBody(t testing.TB, subject string, validity int64, roles []auth.Role, perms []auth.Permission) string {
	t.Helper()
	return mustJSON(t, map[string]any{"subject": subject, "validity_seconds": validity,
		"claims": map[string]any{"roles": roles, "permissions": perms}})
}

// TestACallerCannotMintMoreThanItHolds plays issue 11 point 1: a user whose
// only permission is AAS:custom_claims:create:* asked for a token with the
// role CMS:CertApprover for the verifier's own names, and got it (200).
func TestACallerCannotMintMoreThanItHolds(t *testing.T) {
	f := newFixture(t)
	aliceID, alice := f.loginAs(t, "alice", minter)
	_, bob := f.loginAs(t, "bob", minter,
		Role{Service: "CMS", Name: "CertApprover", Context: "CN=node-1;certType=TLS"},
		Role{Service: "HVS", Name: "Reader", Permissions: []string{"reports:search:*"}})
	_, svc := f.loginAs(t, "svc-minter", Role{Service: Service, Name: "ServiceMinter",
		Permissions: []string{RuleCustomClaimsCreate, RuleCustomClaimsForService, "custom_claims:create:*"}},
		Role{Service: "HVS", Name: "Reporter", Permissions: []string{"reports:create:*"}})
	approver := func(ctx string) []auth.Role { return []auth.Role{{Service: "CMS", Name: "CertApprover", Context: ctx}} }
	perm := func(service, rule string) []auth.Permission {
		return []auth.Permission{{Service: service, Rules: []string{rule}}}
	}
	tests := []struct {
		name   string
		caller string
		body   string
		want   int
	}{
		{"a CertApprover role for the verifier's TLS names that the caller does not hold is refused", alice,
			customBody(t, aliceID, 600, approver(approverTLS), nil), http.StatusForbidden},
		{"a CertApprover role for a Signing certificate that the caller does not hold is refused", alice,
			customBody(t, aliceID, 600, approver(approverSigning), nil), http.StatusForbidden},
		{"the subject admin is refused to a caller without create_for_service", alice,
			customBody(t, "admin", 600, nil, nil), http.StatusForbidden},
		{"the attack as filed (role and subject admin) is refused", alice,
			customBody(t, "admin", 600, approver(approverTLS), nil), http.StatusForbidden},
		{"a permission the caller does not hold is refused", alice,
			customBody(t, aliceID, 600, nil, perm("AAS", "*:*:*")), http.StatusForbidden},
		{"a rule of the caller's in another service is refused", alice,
			customBody(t, aliceID, 600, nil, perm("HVS", RuleCustomClaimsCreate)), http.StatusForbidden},
		{"a permission the caller holds, for itself, is granted", alice,
			customBody(t, aliceID, 600, nil, perm("AAS", RuleCustomClaimsCreate)), http.StatusOK},
		{"a role the caller holds, exactly, is granted", bob,
			customBody(t, f.subjectOf(t, bob), 600, approver("CN=node-1;certType=TLS"), nil), http.StatusOK},
		{"a role the caller holds, with another certificate type, is refused", bob,
			customBody(t, f.subjectOf(t, bob), 600, approver("CN=node-1;certType=Signing"), nil), http.StatusForbidden},
		{"a role the caller holds, with more names, is refused", bob,
			customBody(t, f.subjectOf(t, bob), 600, approver("CN=node-1;SAN=localhost;certType=TLS"), nil), http.StatusForbidden},
		{"a role the caller holds under another name is refused", bob,
			customBody(t, f.subjectOf(t, bob), 600, []auth.Role{{Service: "CMS", Name: "Administrator"}}, nil), http.StatusForbidden},
		{"a caller with create_for_service may name a service as the subject", svc,
			customBody(t, "hvs", 600, nil, perm("HVS", "reports:create:*")), http.StatusOK},
		{"a caller with create_for_service still cannot grant a role it does not hold", svc,
			customBody(t, "hvs", 600, approver(approverTLS), nil), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.store.Writes()
			code, body := f.mint(t, tt.caller, tt.body)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if code == http.StatusForbidden && !strings.Contains(body, "caller") {
				t.Errorf("the refusal does not say why: %s", body)
			}
			if n := f.store.Writes(); n != before {
				t.Errorf("minting wrote %d times to the store", n-before)
			}
		})
	}
}

// subjectOf returns the sub of a token the fixture's AAS issued.
func (f *fixture) subjectOf(t testing.TB, tok string) string {
	t.Helper()
	c, err := f.aas.Verifier().Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject
}

func TestACustomClaimsTokenNeverOutlivesItsCaller(t *testing.T) {
	f := newFixture(t)
	id, alice := f.loginAs(t, "alice", minter)
	aliceExp := f.clock.Now().Add(time.Hour).Unix()
	f.clock.Advance(50 * time.Minute)
	mintable := []auth.Permission{{Service: Service, Rules: []string{RuleCustomClaimsCreate}}}
	code, first := f.mint(t, alice, customBody(t, id, 3600, nil, mintable))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, first)
	}
	_, cl := decodeParts(t, first)
	if exp := int64(cl["exp"].(float64)); exp != aliceExp {
		t.Errorf("exp %d, want the caller's exp %d (10 minutes left), not an hour from now", exp, aliceExp)
	}
	if cl["uid"] != id {
		t.Errorf("uid %v, want the minting user %s", cl["uid"], id)
	}
	// Minting again from the minted token cannot extend it either.
	f.clock.Advance(5 * time.Minute)
	code, second := f.mint(t, first, customBody(t, id, 3600, nil, mintable))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, second)
	}
	if _, cl := decodeParts(t, second); int64(cl["exp"].(float64)) != aliceExp {
		t.Errorf("a token minted from a minted token expires at %v, want %d", cl["exp"], aliceExp)
	}
	f.clock.Advance(5*time.Minute + DefaultLeeway)
	if code, body := f.mint(t, second, customBody(t, id, 60, nil, nil)); code != http.StatusUnauthorized {
		t.Errorf("after the caller's expiry: status %d, want 401: %s", code, body)
	}
}

func TestTheAuditLogNamesTheRealCaller(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.aas.logger = slog.New(slog.NewJSONHandler(&logs, nil))
	id, alice := f.loginAs(t, "alice", Role{Service: Service, Name: "ServiceMinter",
		Permissions: []string{RuleCustomClaimsCreate, RuleCustomClaimsForService}})
	code, svcTok := f.mint(t, alice, customBody(t, "hvs", 600, nil,
		[]auth.Permission{{Service: Service, Rules: []string{RuleCustomClaimsCreate, RuleCustomClaimsForService}}}))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, svcTok)
	}
	// The service token mints again: the record still names alice's id.
	if code, body := f.mint(t, svcTok, customBody(t, "job-7", 60, nil, nil)); code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var last map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatal(err)
		}
	}
	if last["msg"] != "custom claims token issued" || last[keyUser] != id || last[keyCaller] != "hvs" || last[keySubject] != "job-7" {
		t.Fatalf("audit record %v: want user_id %s, caller hvs, subject job-7", last, id)
	}
	if strings.Contains(logs.String(), svcTok) {
		t.Error("the log holds a token")
	}
}
