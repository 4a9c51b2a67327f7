package aas

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/auth"
)

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	json := "application/json"
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		want        int
	}{
		{"malformed JSON", "/aas/v1/users", json, `{"username":`, 400},
		{"an unknown field", "/aas/v1/users", json, `{"username":"carol","password":"a long enough password","admin":true}`, 400},
		{"a wrong content type", "/aas/v1/users", "text/plain", `{"username":"carol","password":"a long enough password"}`, 415},
		{"no content type", "/aas/v1/users", "", `{"username":"carol","password":"a long enough password"}`, 415},
		{"an oversized body", "/aas/v1/users", json, `{"username":"carol","password":"` + strings.Repeat("a", 1<<20) + `"}`, 413},
		{"two JSON values", "/aas/v1/users", json, `{"username":"carol","password":"a long enough password"}{}`, 400},
		{"an empty body", "/aas/v1/users", json, ``, 400},
		{"a short password", "/aas/v1/users", json, `{"username":"carol","password":"short"}`, 400},
		{"an empty password", "/aas/v1/users", json, `{"username":"carol","password":""}`, 400},
		{"a username with a space", "/aas/v1/users", json, `{"username":"carol x","password":"a long enough password"}`, 400},
		{"an existing username", "/aas/v1/users", json, `{"username":"admin","password":"a long enough password"}`, 409},
		{"a malformed permission rule", "/aas/v1/roles", json, `{"service":"HVS","name":"R","context":"","permissions":["hosts:create"]}`, 400},
		{"a role without a service", "/aas/v1/roles", json, `{"service":"","name":"R","context":"","permissions":[]}`, 400},
		{"an existing role", "/aas/v1/roles", json, `{"service":"AAS","name":"Administrator","context":"","permissions":[]}`, 409},
		{"an unknown credential type", "/aas/v1/credentials", json, `{"type":"ROOT","parameters":{"host-id":"n1"}}`, 400},
		{"a host id with a NATS wildcard", "/aas/v1/credentials", json, `{"type":"TA","parameters":{"host-id":"n1.>"}}`, 400},
		{"a missing host id", "/aas/v1/credentials", json, `{"type":"TA","parameters":{}}`, 400},
		{"a login with an unknown field", "/aas/v1/token", json, `{"username":"admin","password":"` + adminPassword + `","otp":1}`, 400},
		{"a login as form data", "/aas/v1/token", "application/x-www-form-urlencoded", `username=admin`, 415},
		{"a custom claims token without subject", "/aas/v1/custom-claims-token", json, `{"subject":"","validity_seconds":60,"claims":{}}`, 400},
		{"a custom claims token with a bad rule", "/aas/v1/custom-claims-token", json, `{"subject":"s","validity_seconds":60,"claims":{"permissions":[{"service":"HVS","rules":["x"]}]}}`, 400},
		{"a custom claims token with negative validity", "/aas/v1/custom-claims-token", json, `{"subject":"s","validity_seconds":-1,"claims":{}}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused with "+http.StatusText(tt.want), func(t *testing.T) {
			f := newFixture(t)
			tok := f.adminToken(t)
			before := f.store.Writes()
			rec := f.do(t, request{method: "POST", path: tt.path, token: tok, contentType: tt.contentType, body: tt.body})
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
			if n := f.store.Writes(); n != before {
				t.Errorf("the store saw %d writes", n-before)
			}
			if len(f.creds.calls) != 0 {
				t.Errorf("credentials were issued: %v", f.creds.calls)
			}
		})
	}
}

func TestUsersAndRolesRoundTrip(t *testing.T) {
	f := newFixture(t)
	tok := f.adminToken(t)
	do := func(method, path, body string, want int) *httptest.ResponseRecorder {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		rec := f.do(t, request{method: method, path: path, token: tok, contentType: ct, body: body})
		if rec.Code != want {
			t.Fatalf("%s %s: status %d, want %d; body %s", method, path, rec.Code, want, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "argon2") {
			t.Fatalf("%s %s leaks a password hash: %s", method, path, rec.Body)
		}
		return rec
	}
	user := decode[restapi.User](t, do("POST", "/aas/v1/users", `{"username":"carol","password":"carol's long password"}`, 201))
	role := decode[restapi.Role](t, do("POST", "/aas/v1/roles", `{"service":"HVS","name":"Reader","context":"","permissions":["reports:search:*","hosts:retrieve:*"]}`, 201))
	if got := decode[[]restapi.User](t, do("GET", "/aas/v1/users?name=carol", "", 200)); len(got) != 1 || got[0].ID != user.ID {
		t.Fatalf("search by name: %+v", got)
	}
	if got := decode[[]restapi.User](t, do("GET", "/aas/v1/users?name=nobody", "", 200)); len(got) != 0 {
		t.Fatalf("search for an unknown name: %+v", got)
	}
	do("POST", "/aas/v1/users/"+user.ID+"/roles", `{"role_ids":["`+role.ID+`"]}`, 204)
	do("POST", "/aas/v1/users/"+user.ID+"/roles", `{"role_ids":["no-such-role"]}`, 404)
	perms := decode[[]auth.Permission](t, do("GET", "/aas/v1/users/"+user.ID+"/permissions", "", 200))
	if len(perms) != 1 || perms[0].Service != "HVS" || strings.Join(perms[0].Rules, ",") != "hosts:retrieve:*,reports:search:*" {
		t.Fatalf("permissions %+v", perms)
	}
	carol, err := f.aas.Login(t.Context(), "carol", "carol's long password")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.aas.Verifier().Verify(carol)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Allows("HVS", auth.Rule{Resource: "reports", Action: "search", Selector: "*"}) || c.Allows("AAS", auth.Rule{Resource: "users", Action: "search", Selector: "*"}) {
		t.Errorf("carol's claims %+v", c)
	}
	do("PUT", "/aas/v1/roles/"+role.ID+"/permissions", `{"permissions":["hosts:*:*"]}`, 200)
	do("PUT", "/aas/v1/users/"+user.ID, `{"password":"carol's newer password"}`, 204)
	if _, err := f.aas.Login(t.Context(), "carol", "carol's long password"); err == nil {
		t.Error("the old password still works")
	}
	if _, err := f.aas.Login(t.Context(), "carol", "carol's newer password"); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
	do("DELETE", "/aas/v1/users/"+user.ID+"/roles/"+role.ID, "", 204)
	do("DELETE", "/aas/v1/users/"+user.ID+"/roles/"+role.ID, "", 404)
	do("DELETE", "/aas/v1/roles/"+role.ID, "", 204)
	do("GET", "/aas/v1/roles/"+role.ID, "", 404)
	do("DELETE", "/aas/v1/users/"+user.ID, "", 204)
	do("GET", "/aas/v1/users/"+user.ID, "", 404)
	do("PUT", "/aas/v1/users/"+user.ID, `{"password":"carol's newer password"}`, 404)
}

func TestCredentials(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "AAS:credential:create:*")
	for _, tt := range []struct{ body, wantCall string }{
		{`{"type":"TA","parameters":{"host-id":"node-7"}}`, "agent:node-7 split"},
		{`{"type":"TA","parameters":{"host-id":"node-7","bus-grammar":"1"}}`, "agent:node-7 split"},
		{`{"type":"TA","parameters":{"host-id":"node-7","bus-grammar":"2"}}`, "agent:node-7 two-prefixes"},
		{`{"type":"HVS","parameters":{}}`, "service:HVS"},
	} {
		rec := f.do(t, request{method: "POST", path: "/aas/v1/credentials", token: tok, contentType: "application/json", body: tt.body})
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/plain" || !strings.Contains(rec.Body.String(), "NATS USER JWT") {
			t.Fatalf("%s: status %d, type %q, body %q", tt.body, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if last := f.creds.calls[len(f.creds.calls)-1]; last != tt.wantCall {
			t.Errorf("issued %s, want %s", last, tt.wantCall)
		}
	}
}

// TestTheIssuersRefusalIsTheAnswer: a host the issuer refuses (disabled)
// gets the refusal, in every grammar, never an empty 200.
func TestTheIssuersRefusalIsTheAnswer(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "AAS:credential:create:*")
	for _, g := range []string{"", "1", "2"} {
		body := `{"type":"TA","parameters":{"host-id":"` + disabledHost + `","bus-grammar":"` + g + `"}}`
		rec := f.do(t, request{method: "POST", path: "/aas/v1/credentials", token: tok, contentType: "application/json", body: body})
		if rec.Code != http.StatusConflict {
			t.Errorf("bus-grammar %q: status %d, body %q; want 409", g, rec.Code, rec.Body)
		}
	}
}

func TestAnUnknownBusGrammarIsRefusedAndIssuesNothing(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "AAS:credential:create:*")
	for _, g := range []string{"0", "3", "two", " 2"} {
		body := `{"type":"TA","parameters":{"host-id":"node-7","bus-grammar":"` + g + `"}}`
		rec := f.do(t, request{method: "POST", path: "/aas/v1/credentials", token: tok, contentType: "application/json", body: body})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "bus-grammar") {
			t.Errorf("bus-grammar %q: status %d, body %q; want 400 naming bus-grammar", g, rec.Code, rec.Body)
		}
	}
	if len(f.creds.calls) != 0 {
		t.Errorf("credentials issued for a refused request: %v", f.creds.calls)
	}
}

func TestAuthenticateExplainsRefusals(t *testing.T) {
	f := newFixture(t)
	tok := f.adminToken(t)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.FromContext(r.Context()) == nil {
			t.Error("no claims in the context")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	h := f.aas.Authenticate(next)
	parts := strings.Split(tok, ".")
	tests := []struct {
		name, header string
		want         int
		wantMsg      string
	}{
		{"a valid token passes", "Bearer " + tok, 204, ""},
		{"a lower-case scheme passes", "bearer " + tok, 204, ""},
		{"no header is missing", "", 401, "missing"},
		{"a basic header is malformed", "Basic YWRtaW46eA==", 401, "malformed"},
		{"a forged signature is a bad signature", "Bearer " + parts[0] + "." + parts[1] + "." + parts[2][:10] + "AAAA" + parts[2][14:], 401, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), "GET", "/x", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantMsg) {
				t.Fatalf("status %d body %q; want %d with %q", rec.Code, rec.Body, tt.want, tt.wantMsg)
			}
		})
	}
	t.Run("an expired token says so", func(t *testing.T) {
		f.clock.Advance(2 * time.Hour)
		r := httptest.NewRequestWithContext(t.Context(), "GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var body struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != 401 || body.Error != "token expired" {
			t.Fatalf("status %d body %q", rec.Code, rec.Body)
		}
	})
}

func TestRequireWithoutClaimsIsUnauthenticated(t *testing.T) {
	f := newFixture(t)
	h := f.aas.Guard().Require("HVS", "hosts:create:*")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the handler ran without claims")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "POST", "/hvs/v2/hosts", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", rec.Code)
	}
}
