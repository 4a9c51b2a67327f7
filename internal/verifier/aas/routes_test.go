package aas

import (
	"net/http"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
)

// validRequest builds, for each route, a request that succeeds with the
// right token. Every route of Routes() must have one.
var validRequest = map[string]func(t *testing.T, f *fixture) request{
	"POST /aas/v1/token": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/token", contentType: "application/json",
			body: mustJSON(t, restapi.TokenRequest{Username: "admin", Password: adminPassword})}
	},
	"GET /aas/v1/jwt-certificates": func(*testing.T, *fixture) request { return request{path: "/aas/v1/jwt-certificates"} },
	"GET /aas/v1/jwks":             func(*testing.T, *fixture) request { return request{path: "/aas/v1/jwks"} },
	"GET /.well-known/jwks.json":   func(*testing.T, *fixture) request { return request{path: "/.well-known/jwks.json"} },
	"POST /aas/v1/custom-claims-token": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/custom-claims-token", contentType: "application/json",
			body: `{"subject":"` + tokenUser + `","validity_seconds":60,"claims":{"permissions":[{"service":"AAS","rules":["custom_claims:create:*"]}]}}`}
	},
	"POST /aas/v1/credentials": func(*testing.T, *fixture) request {
		return request{path: "/aas/v1/credentials", contentType: "application/json", body: `{"type":"TA","parameters":{"host-id":"node-1"}}`}
	},
	"POST /aas/v1/users": func(*testing.T, *fixture) request {
		return request{path: "/aas/v1/users", contentType: "application/json", body: `{"username":"alice","password":"a long enough password"}`}
	},
	"GET /aas/v1/users": func(*testing.T, *fixture) request { return request{path: "/aas/v1/users?name=admin"} },
	"GET /aas/v1/users/{id}": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/users/" + f.createUser(t, "bob", "bob's long password")}
	},
	"PUT /aas/v1/users/{id}": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/users/" + f.createUser(t, "bob", "bob's long password"), contentType: "application/json",
			body: `{"password":"bob's new long password"}`}
	},
	"DELETE /aas/v1/users/{id}": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/users/" + f.createUser(t, "bob", "bob's long password")}
	},
	"POST /aas/v1/roles": func(*testing.T, *fixture) request {
		return request{path: "/aas/v1/roles", contentType: "application/json",
			body: `{"service":"HVS","name":"Reader","context":"","permissions":["hosts:retrieve:*","reports:search:*"]}`}
	},
	"GET /aas/v1/roles": func(*testing.T, *fixture) request { return request{path: "/aas/v1/roles?service=AAS"} },
	"GET /aas/v1/roles/{id}": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/roles/" + f.createRole(t, "HVS", "Reader", "hosts:retrieve:*")}
	},
	"DELETE /aas/v1/roles/{id}": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/roles/" + f.createRole(t, "HVS", "Reader", "hosts:retrieve:*")}
	},
	"PUT /aas/v1/roles/{id}/permissions": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/roles/" + f.createRole(t, "HVS", "Reader") + "/permissions", contentType: "application/json",
			body: `{"permissions":["hosts:retrieve:*"]}`}
	},
	"POST /aas/v1/users/{id}/roles": func(t *testing.T, f *fixture) request {
		u, r := f.createUser(t, "bob", "bob's long password"), f.createRole(t, "HVS", "Reader")
		return request{path: "/aas/v1/users/" + u + "/roles", contentType: "application/json", body: `{"role_ids":["` + r + `"]}`}
	},
	"GET /aas/v1/users/{id}/roles": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/users/" + f.createUser(t, "bob", "bob's long password") + "/roles"}
	},
	"DELETE /aas/v1/users/{id}/roles/{roleId}": func(t *testing.T, f *fixture) request {
		u, r := f.createUser(t, "bob", "bob's long password"), f.createRole(t, "HVS", "Reader")
		if err := f.store.AddUserRoles(t.Context(), u, []string{r}); err != nil {
			t.Fatal(err)
		}
		return request{path: "/aas/v1/users/" + u + "/roles/" + r}
	},
	"GET /aas/v1/users/{id}/permissions": func(t *testing.T, f *fixture) request {
		return request{path: "/aas/v1/users/" + f.createUser(t, "bob", "bob's long password") + "/permissions"}
	},
}

func TestEveryRouteEnforcesItsPermission(t *testing.T) {
	for _, rt := range Routes() {
		key, perm := rt.Method+" "+rt.Pattern, rt.Service+":"+rt.Rule
		build, ok := validRequest[key]
		if !ok {
			t.Errorf("route %s has no case in validRequest", key)
			continue
		}
		type tokenCase struct {
			name     string
			token    func(f *fixture) string
			wantCode func(got int) bool
		}
		is2xx := func(got int) bool { return got >= 200 && got < 300 }
		cases := []tokenCase{
			{"a request without a token is refused with 401", func(*fixture) string { return "" }, func(got int) bool { return got == 401 }},
			{"a token with the same rule in another service is refused with 403", func(f *fixture) string {
				return f.token(t, "HVS:"+rt.Rule, "CMS:*:*:*")
			}, func(got int) bool { return got == 403 }},
			{"a token with another rule of the service is refused with 403", func(f *fixture) string {
				return f.token(t, "AAS:other:retrieve:*")
			}, func(got int) bool { return got == 403 }},
			{"a token with exactly the permission succeeds", func(f *fixture) string { return f.token(t, perm) }, is2xx},
		}
		if rt.Rule == "" {
			cases = []tokenCase{
				{"a public route succeeds without a token", func(*fixture) string { return "" }, is2xx},
				{"a public route succeeds with a token without permissions", func(f *fixture) string { return f.token(t) }, is2xx},
			}
		}
		for _, c := range cases {
			t.Run(key+"/"+c.name, func(t *testing.T) {
				f := newFixture(t)
				req := build(t, f)
				req.method = rt.Method
				req.token = c.token(f)
				rec := f.do(t, req)
				if !c.wantCode(rec.Code) {
					t.Fatalf("%s %s: status %d, body %s", req.method, req.path, rec.Code, rec.Body)
				}
				if rec.Code == http.StatusForbidden && !strings.Contains(rec.Body.String(), perm) {
					t.Errorf("403 body %q does not name the missing permission %s", rec.Body, perm)
				}
			})
		}
	}
	for key := range validRequest {
		found := false
		for _, rt := range Routes() {
			found = found || rt.Method+" "+rt.Pattern == key
		}
		if !found {
			t.Errorf("validRequest has %s, which is not a route", key)
		}
	}
}

func TestEveryProtectedRouteNeedsAValidPermission(t *testing.T) {
	for _, rt := range Routes() {
		if rt.Service == "" && rt.Rule == "" {
			continue
		}
		if rt.Service != Service || strings.Count(rt.Rule, ":") != 2 {
			t.Errorf("route %s %s: permission %s:%s is not AAS:resource:action:selector", rt.Method, rt.Pattern, rt.Service, rt.Rule)
		}
	}
}
