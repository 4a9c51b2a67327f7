package tcctl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/errtest"
)

func TestConfigDir(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  map[string]string
		want string
	}{
		{"the flag wins over everything", "/flag", map[string]string{EnvConfigDir: "/env", "XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/flag"},
		{"TC_CONFIG_DIR wins over XDG_CONFIG_HOME", "", map[string]string{EnvConfigDir: "/env", "XDG_CONFIG_HOME": "/xdg"}, "/env"},
		{"XDG_CONFIG_HOME gets a tcctl directory", "", map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/tcctl"},
		{"without XDG the home directory's .config is used", "", map[string]string{"HOME": "/home/u"}, "/home/u/.config/tcctl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configDir(tt.flag, func(k string) string { return tt.env[k] })
			if err != nil || got != tt.want {
				t.Errorf("configDir = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := configDir("", func(string) string { return "" }); err == nil {
		t.Error("no flag and no environment gave a directory")
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr []string
	}{
		{name: "a complete config loads", content: "url: https://v:8443\ncms_root_file: /r.pem\nusername: admin\n"},
		{name: "an unknown key is an error", content: "url: https://v:8443\ncms_root_file: /r.pem\npassword: x\n", wantErr: []string{"field password not found"}},
		{name: "every missing field is reported at once", content: "username: admin\n", wantErr: []string{"url is not set", "cms_root_file is not set"}},
		{name: "a plain http url is refused", content: "url: http://v:8443\ncms_root_file: /r.pem\n", wantErr: []string{"must start with https://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, configFile), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(dir)
			errtest.Want(t, err, tt.wantErr...)
		})
	}
	if _, err := loadConfig(t.TempDir()); !errors.Is(err, errNotLoggedIn) {
		t.Errorf("no config: %v, want not logged in", err)
	}
}

func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestTheTokenCacheHonoursTheExpiry(t *testing.T) {
	dir := t.TempDir()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	token := jwtWith(`{"sub":"admin","exp":` + jsonInt(exp.Unix()) + `}`)
	got, err := saveToken(dir, token)
	if err != nil || !got.Equal(exp) {
		t.Fatalf("saveToken = %v, %v; want %v", got, err, exp)
	}
	fi, err := os.Stat(filepath.Join(dir, tokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", fi, err)
	}
	if tok, err := loadToken(dir, exp.Add(-time.Second)); err != nil || tok != token {
		t.Errorf("a second before expiry: %v", err)
	}
	if _, err := loadToken(dir, exp); !errors.Is(err, errNotLoggedIn) || !strings.Contains(err.Error(), "expired at 2030-01-02T03:04:05Z") {
		t.Errorf("at expiry: %v, want expired and not logged in", err)
	}
	for _, bad := range []string{"not-a-jwt", jwtWith(`{"sub":"admin"}`), "a.!!!.c"} {
		if _, err := saveToken(dir, bad); err == nil {
			t.Errorf("saveToken(%q) accepted a token without a readable exp", bad)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestRender(t *testing.T) {
	raw := json.RawMessage(`{"zeta":"1","alpha":true,"list":[{"b":"true","a":null}],"n":12345678901234}`)
	tests := []struct {
		name, format, want string
	}{
		{"yaml keeps the json key order and block style", formatYAML, "zeta: \"1\"\nalpha: true\nlist:\n  - b: \"true\"\n    a: null\nn: 12345678901234\n"},
		{"json is indented", formatJSON, "{\n  \"zeta\": \"1\",\n  \"alpha\": true,\n  \"list\": [\n    {\n      \"b\": \"true\",\n      \"a\": null\n    }\n  ],\n  \"n\": 12345678901234\n}\n"},
		{"a table aligns its columns", formatTable, "ID   NAME\nh1   edge-one\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tb := &table{header: []string{"ID", "NAME"}}
			tb.add("h1", "edge-one")
			if err := render(&out, tt.format, raw, tb); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
}

func TestAPIErrorNamesStatusCauseAndRequest(t *testing.T) {
	tests := []struct {
		name string
		err  APIError
		want string
	}{
		{"a 404 carries the server's message", APIError{"GET", "/hvs/v2/hosts/edge-1", 404, `host "edge-1": not found`},
			`404 Not Found: host "edge-1": not found (GET /hvs/v2/hosts/edge-1)`},
		{"a 401 on a route suggests logging in", APIError{"GET", "/hvs/v2/hosts", 401, "token expired"},
			"401 Unauthorized: token expired (GET /hvs/v2/hosts); run tcctl login"},
		{"a 401 of the login itself does not", APIError{"POST", "/aas/v1/token", 401, "invalid username or password"},
			"401 Unauthorized: invalid username or password (POST /aas/v1/token)"},
		{"an answer without a message still names the status", APIError{"DELETE", "/aas/v1/roles/x", 502, ""},
			"502 Bad Gateway (DELETE /aas/v1/roles/x)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if got := errorMessage([]byte(`{"error":"boom","status":500}`)); got != "boom" {
		t.Errorf("errorMessage of the JSON shape = %q", got)
	}
	if got := errorMessage([]byte("<html>proxy error</html>")); got != "<html>proxy error</html>" {
		t.Errorf("errorMessage of another body = %q", got)
	}
}

func TestImportRequestTellsTheCollectionsApart(t *testing.T) {
	const fl = `{"meta":{"id":"f1","description":{"flavor_part":"OS"}},"pcrs":[{"pcr":{"index":8,"bank":"SHA256"},"measurement":"` +
		"2222222222222222222222222222222222222222222222222222222222222222" + `","pcr_matches":true}]}`
	tests := []struct {
		name       string
		file       string
		wantPlain  bool
		wantSigned bool
		wantErr    string
	}{
		{name: "flavors is a collection to sign", file: `{"flavors":[` + fl + `]}`, wantPlain: true},
		{name: "signed_flavors is a signed collection", file: `{"signed_flavors":[{"flavor":` + fl + `,"signature":"c2ln"}]}`, wantSigned: true},
		{name: "both keys are refused", file: `{"flavors":[],"signed_flavors":[]}`, wantErr: "want a flavor collection"},
		{name: "an array is refused", file: `[]`, wantErr: "not a JSON object"},
		{name: "an unknown field in a flavor is refused", file: `{"flavors":[{"meta":{"id":"x"},"extra":1}]}`, wantErr: "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := importRequest([]byte(tt.file), []string{"edge"})
			if !errtest.Want(t, err, tt.wantErr) {
				return
			}
			if (req.FlavorCollection != nil) != tt.wantPlain || (req.SignedFlavorCollection != nil) != tt.wantSigned {
				t.Errorf("request %+v", req)
			}
			if len(req.FlavorGroupNames) != 1 || req.FlavorGroupNames[0] != "edge" {
				t.Errorf("groups %v", req.FlavorGroupNames)
			}
		})
	}
}
