package tcctl_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"trustedcompute.io/tc/internal/bus"
)

// TestLogin logs in to a real verifier the ways an operator can, and the
// ways that must fail.
func TestLogin(t *testing.T) {
	h := startVerifier(t)
	wrongPin := strings.Repeat("ab", 48)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr []string // all must be in the error; none means success
	}{
		{
			name: "the pinned digest and a password file log in",
			args: []string{"--url", h.base, "--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword)},
		},
		{
			name: "the password may come from TC_PASSWORD",
			env:  map[string]string{"TC_PASSWORD": adminPassword},
			args: []string{"--url", h.base, "--root-sha384", h.pin},
		},
		{
			name:    "a wrong digest is refused before a password is sent",
			args:    []string{"--url", h.base, "--root-sha384", wrongPin, "--password-file", secretFile(t, adminPassword)},
			wantErr: []string{"bootstrap the cms root", "no self-signed CA certificate matches the pinned SHA-384"},
		},
		{
			name:    "a digest that is not SHA-384 hex is refused",
			args:    []string{"--url", h.base, "--root-sha384", "abc", "--password-file", secretFile(t, adminPassword)},
			wantErr: []string{"96 hex digits"},
		},
		{
			name:    "a wrong password fails with the verifier's 401",
			args:    []string{"--url", h.base, "--root-sha384", h.pin, "--password-file", secretFile(t, "not the password")},
			wantErr: []string{"login admin", "401 Unauthorized", "POST /aas/v1/token"},
		},
		{
			name:    "without a password file, env or terminal there is no prompt but an error",
			args:    []string{"--url", h.base, "--root-sha384", h.pin},
			wantErr: []string{"no password", "TC_PASSWORD"},
		},
		{
			name:    "a first login needs the verifier's url",
			args:    []string{"--root-sha384", h.pin, "--password-file", secretFile(t, adminPassword)},
			wantErr: []string{"url is not set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			for k, v := range tt.env {
				c.env[k] = v
			}
			out, errOut, err := c.run(append([]string{"login"}, tt.args...)...)
			tokenPath := filepath.Join(c.dir, "token.json")
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("login succeeded:\n%s", out)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				if _, err := os.Stat(tokenPath); err == nil {
					t.Error("a failed login left a token behind")
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "logged in to "+h.base+" as admin") || !strings.Contains(out, h.pin) {
				t.Errorf("login output:\n%s", out)
			}
			fi, err := os.Stat(tokenPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("token cache mode %v, want 0600", fi.Mode().Perm())
			}
			b, err := os.ReadFile(tokenPath)
			if err != nil {
				t.Fatal(err)
			}
			var cached struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(b, &cached); err != nil || strings.Count(cached.Token, ".") != 2 {
				t.Fatalf("token cache %s (%v)", b, err)
			}
			if strings.Contains(out+errOut, cached.Token) || strings.Contains(out+errOut, adminPassword) {
				t.Error("login printed the token or the password")
			}
			// The stored root is what later commands trust: one works.
			c.env = map[string]string{}
			c.must(t, "host", "list")
		})
	}
}

func TestALaterLoginReusesTheStoredVerifierAndRoot(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	if err := os.Remove(filepath.Join(c.dir, "token.json")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("host", "list"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("host list without a token: %v, want not logged in", err)
	}
	c.must(t, "login", "--password-file", secretFile(t, adminPassword))
	c.must(t, "host", "list")
}

func TestHostCommands(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	// No agent runs: the host is registered without an enrolled AK.
	out := c.must(t, "host", "register", "--host-id", "edge-1", "--name", "edge-one")
	if !strings.Contains(out, "edge-1") || !strings.Contains(out, "the AK is not enrolled") {
		t.Errorf("register output:\n%s", out)
	}

	t.Run("list as a table has a header and one row per host", func(t *testing.T) {
		rows := tableRows(c.must(t, "host", "list"))
		if len(rows) != 2 {
			t.Fatalf("rows %q, want a header and one host", rows)
		}
		if !slices.Equal(rows[0][:3], []string{"HOST ID", "NAME", "STATUS"}) {
			t.Errorf("header %q", rows[0])
		}
		if !slices.Equal(rows[1][:4], []string{"edge-1", "edge-one", "AIK_NOT_PROVISIONED", "automatic"}) {
			t.Errorf("row %q", rows[1])
		}
	})
	t.Run("list as json is the verifier's answer", func(t *testing.T) {
		var got struct {
			Hosts []struct {
				ID       string `json:"id"`
				HostName string `json:"host_name"`
			} `json:"hosts"`
		}
		out := c.must(t, "host", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if len(got.Hosts) != 1 || got.Hosts[0].ID != "edge-1" || got.Hosts[0].HostName != "edge-one" {
			t.Errorf("hosts %+v", got.Hosts)
		}
	})
	t.Run("list as yaml keeps the json keys", func(t *testing.T) {
		var got struct {
			Hosts []map[string]any `yaml:"hosts"`
		}
		out := c.must(t, "host", "list", "-o", "yaml")
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if len(got.Hosts) != 1 || got.Hosts[0]["id"] != "edge-1" || got.Hosts[0]["connection_string"] != "nats://edge-1" {
			t.Errorf("hosts %+v", got.Hosts)
		}
		if strings.Contains(out, "{") {
			t.Errorf("yaml is not in block style:\n%s", out)
		}
	})
	t.Run("get of an unknown host names the status, the cause and the request", func(t *testing.T) {
		_, _, err := c.run("host", "get", "edge-404")
		if err == nil {
			t.Fatal("get of an unknown host succeeded")
		}
		for _, want := range []string{"get host edge-404: 404 Not Found: ", "not found", "(GET /hvs/v2/hosts/edge-404)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("completion offers the registered host ids", func(t *testing.T) {
		out := c.must(t, "__complete", "host", "get", "")
		if !strings.Contains(out, "edge-1\tedge-one") {
			t.Errorf("completion of host get:\n%s", out)
		}
	})
	t.Run("an unknown output format is refused", func(t *testing.T) {
		if _, _, err := c.run("host", "list", "-o", "xml"); err == nil || !strings.Contains(err.Error(), `unknown output format "xml"`) {
			t.Errorf("-o xml: %v", err)
		}
	})
	t.Run("delete removes the host", func(t *testing.T) {
		c.must(t, "host", "delete", "edge-1")
		if _, _, err := c.run("host", "get", "edge-1"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("get after delete: %v", err)
		}
	})
}

// TestAGrantedRoleIsWhatTheUserMayDo creates a user and a role, grants it,
// and checks as that user that exactly the role's permissions hold.
func TestAGrantedRoleIsWhatTheUserMayDo(t *testing.T) {
	h := startVerifier(t)
	admin := loggedIn(t, h)
	const alicePassword = "alice's long enough password"
	admin.must(t, "user", "create", "alice", "--password-file", secretFile(t, alicePassword))
	admin.must(t, "role", "create", "--service", "HVS", "--name", "HostReader", "--permission", "hosts:search:*")
	out := admin.must(t, "role", "grant", "alice", "HVS:HostReader")
	if !strings.Contains(out, "granted HVS:HostReader to alice") {
		t.Errorf("grant output:\n%s", out)
	}
	var roles []struct {
		Service     string   `json:"service"`
		Name        string   `json:"name"`
		Permissions []string `json:"permissions"`
	}
	if err := json.Unmarshal([]byte(admin.must(t, "role", "list", "--user", "alice", "-o", "json")), &roles); err != nil {
		t.Fatal(err)
	}
	if len(roles) != 1 || roles[0].Service != "HVS" || roles[0].Name != "HostReader" || !slices.Equal(roles[0].Permissions, []string{"hosts:search:*"}) {
		t.Fatalf("alice's roles %+v", roles)
	}
	users := tableRows(admin.must(t, "user", "list"))
	if !slices.ContainsFunc(users[1:], func(r []string) bool { return len(r) > 1 && r[1] == "alice" }) {
		t.Errorf("user list lacks alice: %q", users)
	}

	alice := newCLI(t)
	alice.must(t, "login", "--url", h.base, "--root-sha384", h.pin, "--username", "alice", "--password-file", secretFile(t, alicePassword))
	alice.must(t, "host", "list")
	_, _, err := alice.run("report", "list")
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "GET /hvs/v2/reports") {
		t.Errorf("report list without the permission: %v, want a 403", err)
	}

	const newPassword = "alice's new long enough password"
	if out := admin.must(t, "user", "passwd", "alice", "--password-file", secretFile(t, newPassword)); !strings.Contains(out, "password of alice changed") {
		t.Errorf("passwd output:\n%s", out)
	}
	if _, _, err := alice.run("login", "--url", h.base, "--root-sha384", h.pin, "--username", "alice", "--password-file", secretFile(t, alicePassword)); err == nil {
		t.Error("alice logged in with her old password after passwd")
	}
	alice.must(t, "login", "--url", h.base, "--root-sha384", h.pin, "--username", "alice", "--password-file", secretFile(t, newPassword))

	admin.must(t, "role", "revoke", "alice", "HVS:HostReader")
	admin.must(t, "user", "delete", "alice")
	if _, _, err := admin.run("user", "delete", "alice"); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("second delete: %v", err)
	}
	admin.must(t, "role", "delete", "HVS:HostReader")
}

func TestBusCredentialsAreWrittenForTheOwnerOnly(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	dir := t.TempDir()
	path := filepath.Join(dir, "edge-1.creds")
	for _, args := range [][]string{{"agent", "edge-1"}, {"manager"}} {
		path := filepath.Join(dir, args[0]+".creds")
		out := c.must(t, append(append([]string{"credentials"}, args...), "-f", path)...)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: credentials file mode %v, want 0600", args[0], fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "NATS USER JWT") || !strings.Contains(string(b), "USER NKEY SEED") {
			t.Fatalf("%s: credentials file:\n%.200s", args[0], b)
		}
		if strings.Contains(out, "SEED") || strings.Contains(out, "-----BEGIN") {
			t.Errorf("%s: the credentials were printed:\n%s", args[0], out)
		}
	}
	if _, _, err := c.run("credentials", "agent", "not a host id!", "-f", path+".2"); err == nil || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Errorf("credentials for a bad host id: %v", err)
	}
	// The grammar of the agent's subjects (bus.AgentGrammar).
	for _, tt := range []struct {
		flag []string
		want bus.AgentGrammar
	}{{nil, bus.GrammarSplit}, {[]string{"--bus-grammar", "1"}, bus.GrammarSplit}, {[]string{"--bus-grammar", "2"}, bus.GrammarTwoPrefixes}} {
		path := filepath.Join(dir, "grammar.creds")
		c.must(t, append([]string{"credentials", "agent", "edge-1", "-f", path}, tt.flag...)...)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := bus.ParseCredentials(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := creds.AgentGrammar(); got != tt.want {
			t.Errorf("credentials agent %q: grammar %v, want %v", tt.flag, got, tt.want)
		}
	}
	if _, _, err := c.run("credentials", "agent", "edge-1", "-f", path+".3", "--bus-grammar", "3"); err == nil || !strings.Contains(err.Error(), "bus-grammar must be 1") {
		t.Errorf("credentials of an unknown grammar: %v", err)
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused request wrote %s: %v", path+".3", err)
	}
}

func TestHostEnrollNamesWhyTheAKWasNotEnrolled(t *testing.T) {
	h := startVerifier(t)
	c := loggedIn(t, h)
	for _, tc := range []struct{ hostID, want string }{
		{"edge-1", `trust agent of host "edge-1"`},
		{"not a host id!", "400 Bad Request"},
	} {
		_, _, err := c.run("host", "enroll", tc.hostID)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("host enroll %q: %v, want an error containing %q", tc.hostID, err, tc.want)
		}
	}
}
