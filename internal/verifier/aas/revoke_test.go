package aas

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/auth"
)

// authenticated reports the status Authenticate gives tok.
func (f *fixture) authenticated(t testing.TB, tok string) (int, string) {
	t.Helper()
	h := f.aas.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	r := httptest.NewRequestWithContext(context.Background(), "GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code, rec.Body.String()
}

// TestRevocationRefusesTheUsersTokens plays issue 11 point 2: after
// DELETE /aas/v1/users/{id} the user's tokens kept working, and a token that
// carried custom_claims:create minted fresh ones again and again.
func TestRevocationRefusesTheUsersTokens(t *testing.T) {
	reader := Role{Service: "HVS", Name: "Reader", Permissions: []string{"reports:search:*"}}
	tests := []struct {
		name   string
		revoke func(t *testing.T, f *fixture, admin, userID, roleID string) (method, path, body string)
	}{
		{"deleting the user", func(_ *testing.T, _ *fixture, _, id, _ string) (string, string, string) {
			return "DELETE", "/aas/v1/users/" + id, ""
		}},
		{"removing a role from the user", func(_ *testing.T, _ *fixture, _, id, role string) (string, string, string) {
			return "DELETE", "/aas/v1/users/" + id + "/roles/" + role, ""
		}},
		{"changing the user's password", func(_ *testing.T, _ *fixture, _, id, _ string) (string, string, string) {
			return "PUT", "/aas/v1/users/" + id, `{"password":"a brand new long password"}`
		}},
		{"deleting a role the user holds", func(_ *testing.T, _ *fixture, _, _, role string) (string, string, string) {
			return "DELETE", "/aas/v1/roles/" + role, ""
		}},
		{"narrowing the permissions of a role the user holds", func(_ *testing.T, _ *fixture, _, _, role string) (string, string, string) {
			return "PUT", "/aas/v1/roles/" + role + "/permissions", `{"permissions":[]}`
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" refuses the user's login and custom claims tokens at once", func(t *testing.T) {
			f := newFixture(t)
			admin := f.adminToken(t)
			id, tok := f.loginAs(t, "mallory", minter, reader)
			code, minted := f.mint(t, tok, customBody(t, id, 600, nil,
				[]auth.Permission{{Service: Service, Rules: []string{RuleCustomClaimsCreate}}}))
			if code != http.StatusOK {
				t.Fatalf("mint: %d %s", code, minted)
			}
			for _, tk := range []string{tok, minted} {
				if code, body := f.authenticated(t, tk); code != http.StatusNoContent {
					t.Fatalf("before: %d %s", code, body)
				}
			}
			roles, err := f.store.UserRoles(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			var roleID string
			for _, r := range roles {
				if r.Name == reader.Name {
					roleID = r.ID
				}
			}
			method, path, body := tt.revoke(t, f, admin, id, roleID)
			ct := ""
			if body != "" {
				ct = "application/json"
			}
			if rec := f.do(t, request{method: method, path: path, token: admin, contentType: ct, body: body}); rec.Code/100 != 2 {
				t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
			}
			for name, tk := range map[string]string{"login token": tok, "custom claims token": minted} {
				if code, body := f.authenticated(t, tk); code != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
					t.Errorf("the %s after revocation: %d %s, want 401 token revoked", name, code, body)
				}
			}
			if code, body := f.mint(t, minted, customBody(t, id, 60, nil, nil)); code != http.StatusUnauthorized {
				t.Errorf("minting from a revoked token: %d %s, want 401", code, body)
			}
			if code, body := f.authenticated(t, admin); code != http.StatusNoContent {
				t.Errorf("the admin's token suffered: %d %s", code, body)
			}
		})
	}
}

// TestARevocationThroughAnotherReplicaIsSeenWithinTheRecheck changes the
// store behind the AAS's back, as another replica does: the token is refused
// once the cached generation is RevocationRecheck old, never later.
func TestARevocationThroughAnotherReplicaIsSeenWithinTheRecheck(t *testing.T) {
	f := newFixture(t)
	if got := f.aas.cfg.RevocationRecheck; got <= 0 || got > 5*time.Second {
		t.Fatalf("default revocation recheck %s, want (0, 5s]", got)
	}
	id, tok := f.loginAs(t, "mallory")
	if code, body := f.authenticated(t, tok); code != http.StatusNoContent {
		t.Fatalf("before: %d %s", code, body)
	}
	if err := f.store.UpdateUserPassword(t.Context(), id, []byte("other replica")); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(f.aas.cfg.RevocationRecheck)
	if code, body := f.authenticated(t, tok); code != http.StatusUnauthorized {
		t.Fatalf("%s after another replica revoked: %d %s, want 401", f.aas.cfg.RevocationRecheck, code, body)
	}
}

func TestATokenThatNamesNoUserIsRefused(t *testing.T) {
	f := newFixture(t)
	// As issued before tokens carried uid: signed by our key, otherwise valid.
	tok, err := f.aas.issue(principal{}, "admin", "admin", nil, nil, f.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.aas.Verifier().Verify(tok); err != nil {
		t.Fatalf("offline verification: %v", err)
	}
	if code, body := f.authenticated(t, tok); code != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Fatalf("%d %s, want 401 token revoked", code, body)
	}
}

func TestAStoreThatCannotTellIsUnavailableNotUnauthenticated(t *testing.T) {
	f := newFixture(t)
	_, tok := f.loginAs(t, "alice")
	f.aas.gens.users = failingUsers{}
	if code, body := f.authenticated(t, tok); code != http.StatusServiceUnavailable {
		t.Fatalf("%d %s, want 503", code, body)
	}
}

type failingUsers struct{}

func (failingUsers) UserByID(context.Context, string) (User, error) {
	return User{}, errors.New("database down")
}

func TestTheGenerationCacheStaysBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newGenerations(nil, time.Second, func() time.Time { return now })
	for i := range maxGenerations + 10 {
		g.put(string(rune(i)), generation{at: now})
	}
	if n := len(g.m); n > maxGenerations {
		t.Fatalf("cache holds %d entries, bound is %d", n, maxGenerations)
	}
}
