package dashboard_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

// TestLoginThroughTheVerifiersAAS logs in to a real verifier's dashboard,
// whose AAS checks passwords, permissions and revocation in process.
func TestLoginThroughTheVerifiersAAS(t *testing.T) {
	v := startWithDashboard(t)
	admin := string(call(t, v, http.MethodPost, "/aas/v1/token", "", restapi.TokenRequest{Username: "admin", Password: verifiertest.AdminPassword}))
	viewer := createUser(t, v, admin, "viewer", "hosts:retrieve:*", "reports:retrieve:*")
	createUser(t, v, admin, "enroller", "hosts:create:*")
	base := "https://" + v.DashboardAddr()

	tests := []struct {
		name, user, password string
		wantCode             int
		wantPath, wantText   string
	}{
		{"a viewer with both read permissions sees the fleet", "viewer", userPassword, http.StatusOK, "/", `id="nodes"`},
		{"a wrong password is refused", "viewer", "not the password", http.StatusUnauthorized, "/login", "Invalid username or password."},
		{"an unknown user is refused as a wrong password is", "mallory", userPassword, http.StatusUnauthorized, "/login", "Invalid username or password."},
		{"a user without the read permissions is refused", "enroller", userPassword, http.StatusForbidden, "/login", "HVS:reports:retrieve:*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := browserClient(t, v)
			res := dashboardLogin(t, c, base, tt.user, tt.password)
			if res.code != tt.wantCode || res.path != tt.wantPath || !strings.Contains(res.body, tt.wantText) {
				t.Errorf("login: status %d at %s, want %d at %s with %q:\n%s", res.code, res.path, tt.wantCode, tt.wantPath, tt.wantText, res.body)
			}
		})
	}

	t.Run("deleting the user ends its session at once", func(t *testing.T) {
		c := browserClient(t, v)
		if res := dashboardLogin(t, c, base, "viewer", userPassword); res.code != http.StatusOK {
			t.Fatalf("login: status %d", res.code)
		}
		call(t, v, http.MethodDelete, "/aas/v1/users/"+viewer, admin, nil)
		if res := get(t, c, base+"/"); res.path != "/login" {
			t.Errorf("fleet page after the user was deleted: status %d at %s, want the login page", res.code, res.path)
		}
	})
}

const userPassword = "a long enough password"

// startWithDashboard runs a real verifier with its dashboard on.
func startWithDashboard(t *testing.T) *verifiertest.Verifier {
	t.Helper()
	return verifiertest.Start(t, t.TempDir(), func(c *verifier.Config) {
		c.Dashboard = verifier.DashboardConfig{Listen: "127.0.0.1:0"}
	})
}

// createUser creates a user with a role of the given HVS rules; it returns
// the user's id.
func createUser(t *testing.T, v *verifiertest.Verifier, admin, name string, rules ...string) string {
	t.Helper()
	post := func(path string, in, out any) {
		t.Helper()
		if b := call(t, v, http.MethodPost, path, admin, in); out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var u restapi.User
	post("/aas/v1/users", restapi.UserRequest{Username: name, Password: userPassword}, &u)
	var r restapi.Role
	post("/aas/v1/roles", restapi.RoleRequest{Service: "HVS", Name: "Role-" + name, Permissions: rules}, &r)
	post("/aas/v1/users/"+u.ID+"/roles", restapi.UserRolesRequest{RoleIDs: []string{r.ID}}, nil)
	return u.ID
}

// call sends a JSON request to the verifier's API and returns the body of
// a 2xx answer.
func call(t *testing.T, v *verifiertest.Verifier, method, path, token string, in any) []byte {
	t.Helper()
	status, out := v.DoJSON(t, method, path, token, in)
	if status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	return bytes.TrimSpace(out)
}

// browserClient keeps cookies and trusts the CMS root only.
func browserClient(t *testing.T, v *verifiertest.Verifier) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: api.ClientTLSConfig(v.Roots)}}
}

type page struct {
	code       int
	path, body string
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, c, req)
}

func send(t *testing.T, c *http.Client, req *http.Request) page {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{code: res.StatusCode, path: res.Request.URL.Path, body: string(b)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// dashboardLogin fills in and posts the login form as a browser would.
func dashboardLogin(t *testing.T, c *http.Client, base, user, password string) page {
	t.Helper()
	form := get(t, c, base+"/login")
	m := csrfField.FindStringSubmatch(form.body)
	if m == nil {
		t.Fatalf("no login form:\n%s", form.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/login",
		strings.NewReader(url.Values{"csrf": {m[1]}, "username": {user}, "password": {password}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	return send(t, c, req)
}
