package tcctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/tcctl"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Run(m)) }

const adminPassword = verifiertest.AdminPassword

// harness is a whole verifier (SQLite, embedded NATS) on loopback.
type harness struct {
	v    *verifiertest.Verifier
	base string
	pin  string
}

// startVerifier runs a verifier until the test ends.
func startVerifier(t *testing.T) *harness {
	t.Helper()
	v := verifiertest.Start(t, t.TempDir())
	return &harness{v: v, base: v.Base, pin: v.CA().RootSHA384()}
}

// cli runs tcctl command lines with one configuration directory and a
// fixed environment, as a user at a shell without a terminal would.
type cli struct {
	dir string
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{dir: filepath.Join(t.TempDir(), "tcctl"), env: map[string]string{}}
}

// run runs one command line and returns its stdout and stderr.
func (c *cli) run(args ...string) (stdout, stderr string, err error) {
	root := &cobra.Command{Use: "tcctl", SilenceUsage: true, SilenceErrors: true}
	tcctl.AddTo(root, tcctl.Env{Getenv: func(k string) string { return c.env[k] }})
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--config-dir", c.dir}, args...))
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// must runs a command line that must succeed and returns its stdout.
func (c *cli) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		t.Fatalf("tcctl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// secretFile writes a password file readable by its owner only.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loggedIn is a CLI logged in to h as admin by the pinned digest.
func loggedIn(t *testing.T, h *harness) *cli {
	t.Helper()
	c := newCLI(t)
	c.must(t, "login", "--url", h.base, "--root-sha384", h.pin, "--username", "admin", "--password-file", secretFile(t, adminPassword))
	return c
}

// tableRows splits table output into rows of cells (cells are separated by
// at least two spaces, as tabwriter pads them with three).
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var cells []string
		for _, c := range strings.Split(line, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				cells = append(cells, c)
			}
		}
		rows = append(rows, cells)
	}
	return rows
}
