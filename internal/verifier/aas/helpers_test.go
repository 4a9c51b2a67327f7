package aas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/auth"
)

type request struct {
	method, path, token, contentType string
	body                             string
	remoteAddr                       string // the TCP peer; httptest's 192.0.2.1:1234 when empty
	header                           http.Header
}

func (f *fixture) do(t testing.TB, r request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req := httptest.NewRequestWithContext(context.Background(), r.method, r.path, body)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.remoteAddr != "" {
		req.RemoteAddr = r.remoteAddr
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) login(t testing.TB, user, pw string) *httptest.ResponseRecorder {
	t.Helper()
	return f.loginFrom(t, request{}, user, pw)
}

// loginFrom logs in with the peer address and headers of from.
func (f *fixture) loginFrom(t testing.TB, from request, user, pw string) *httptest.ResponseRecorder {
	t.Helper()
	b, err := json.Marshal(restapi.TokenRequest{Username: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	from.method, from.path, from.contentType, from.body = "POST", "/aas/v1/token", "application/json", string(b)
	return f.do(t, from)
}

func (f *fixture) adminToken(t testing.TB) string {
	t.Helper()
	rec := f.login(t, "admin", adminPassword)
	if rec.Code != http.StatusOK {
		t.Fatalf("admin login: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// tokenUser is the user (id and name) behind the tokens of fixture.token.
const tokenUser = "test-subject"

// token mints a token whose only permissions are the given "service:rule"s,
// on the authority of the user tokenUser (created on first use).
func (f *fixture) token(t testing.TB, perms ...string) string {
	t.Helper()
	var ps []auth.Permission
	for _, p := range perms {
		service, rule, _ := strings.Cut(p, ":")
		ps = append(ps, auth.Permission{Service: service, Rules: []string{rule}})
	}
	u, err := f.store.UserByID(context.Background(), tokenUser)
	if errors.Is(err, ErrNotFound) {
		u = User{ID: tokenUser, Name: tokenUser, CreatedAt: f.clock.Now()}
		err = f.store.CreateUser(context.Background(), u)
	}
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.aas.issue(principal{userID: u.ID, gen: u.TokenGeneration}, u.ID, "", nil, ps, f.clock.Now().Add(f.aas.cfg.TokenValidity))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(bytes.NewReader(rec.Body.Bytes())).Decode(&v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body, err)
	}
	return v
}

// createUser adds a user through the store and returns its id.
func (f *fixture) createUser(t testing.TB, name, pw string) string {
	t.Helper()
	hash, err := hashPassword(pw, f.aas.cfg.Argon2)
	if err != nil {
		t.Fatal(err)
	}
	u := User{ID: newID(), Name: name, PasswordHash: hash, CreatedAt: f.clock.Now()}
	if err := f.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func (f *fixture) createRole(t testing.TB, service, name string, perms ...string) string {
	t.Helper()
	r := Role{ID: newID(), Service: service, Name: name, Permissions: perms, CreatedAt: f.clock.Now()}
	if err := f.store.CreateRole(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r.ID
}
