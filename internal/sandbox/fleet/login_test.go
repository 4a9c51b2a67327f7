//go:build cgo && !tc_nosimulator

package fleet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/tcctl"
)

// TestThePrintedLoginLineAndDashboardWork runs the tcctl login line the
// sandbox prints, word for word, then lists the sandbox's hosts with the
// stored login, and opens the dashboard it names with the pinned root.
func TestThePrintedLoginLineAndDashboardWork(t *testing.T) {
	f := startFleet(t, 1)
	dir := filepath.Join(t.TempDir(), "tcctl")
	run := func(args ...string) string {
		t.Helper()
		root := &cobra.Command{Use: "tcctl", SilenceUsage: true, SilenceErrors: true}
		tcctl.AddTo(root, tcctl.Env{Getenv: func(string) string { return "" }})
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"--config-dir", dir}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("tcctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	words := strings.Fields(f.LoginCommand())
	if words[0] != "tcctl" {
		t.Fatalf("login line %q does not start with tcctl", f.LoginCommand())
	}
	run(words[1:]...)
	if out := run("host", "list"); !strings.Contains(out, "edge-1") {
		t.Errorf("host list after the printed login:\n%s", out)
	}

	pem, err := os.ReadFile(filepath.Join(dir, "cms-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the stored CMS root")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	resp, err := c.Get(f.DashboardURL() + "login")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %slogin: %s", f.DashboardURL(), resp.Status)
	}
}
