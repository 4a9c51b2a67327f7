// Package docs_test runs the command blocks of the user documentation with
// the real binaries, so that a page which drifts from the code fails CI.
//
// Every ```sh block of the pages in runPages runs, in page order, in bash
// with -euo pipefail, from the repository root. What a reader brings is
// given, and only that: a HOME of its own, free ports for the verifier
// (TC_LISTEN, TC_NATS_LISTEN), the host names and directories of the pages
// mapped into a temp dir (pathMap), and after the verifier has started the
// digest it logged as PIN and the administrator's password in ~/.tc-admin.
//
// A block whose last command is `verifier run` starts it in the background
// for the blocks that follow. A block whose lines start with "$ " is a
// transcript: each command runs and its output must match the lines below
// it, with report ids, host ids and times free (an id printed there stands
// for the one printed when the test ran, in later commands too).
//
// The install guide (docs/install.md) runs in TestInstallGuideRuns, against
// a real kube-apiserver with the real kubectl and helm (install_test.go).
package docs_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/graceful"
)

// runPages are the pages whose command blocks run, in this order: the
// verifier's page starts the verifier that the others talk to.
var runPages = []string{"docs/verifier.md", "docs/cli.md"}

// block is one fenced code block of a page.
type block struct {
	where string // file:line of the opening fence
	text  string
}

// shBlocks returns the ```sh blocks of a Markdown page.
func shBlocks(t *testing.T, page string) []block {
	t.Helper()
	md, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out   []block
		cur   *block
		lines []string
	)
	for i, line := range strings.Split(string(md), "\n") {
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		switch {
		case cur == nil && fence && strings.TrimSpace(line) == "```sh":
			cur = &block{where: page + ":" + strconv.Itoa(i+1)}
			lines = nil
		case cur != nil && fence:
			cur.text = strings.Join(lines, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			lines = append(lines, line)
		}
	}
	if cur != nil {
		t.Fatalf("%s: the code block is not closed", cur.where)
	}
	return out
}

// commands joins continuation lines: one entry a command line.
func commands(text string) []string {
	var out []string
	pending := ""
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if strings.HasSuffix(l, `\`) {
			pending += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		out = append(out, pending+l)
		pending = ""
	}
	return out
}

var (
	startsVerifier = regexp.MustCompile(`(^|\s)verifier run(\s|$)`)
	uuidRE         = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE         = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	rootDigestRE   = regexp.MustCompile(`"cms_root_sha384":"([0-9a-f]{96})"`)
)

// runner runs the blocks of the pages in one environment.
type runner struct {
	t       *testing.T
	root    string   // repository root: the working directory
	env     []string // the whole environment of every block
	paths   *strings.Replacer
	ids     map[string]string // an id printed in a transcript -> the one printed here
	tmp     string
	started bool
}

func TestDocumentedCommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and starts a verifier")
	}
	for _, tool := range []string{"bash", "curl", "openssl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test installs it: hack/deps.sh test)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	goBuild(t, root, bin, "./cmd/verifier")
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	port, natsPort := freePort(t), freePort(t)
	env := []string{
		"HOME=" + home,
		"PATH=" + filepath.Join(root, "bin") + ":" + bin + ":" + os.Getenv("PATH"),
		"TMPDIR=" + tmp,
		"LANG=C.UTF-8",
		"TC_LISTEN=127.0.0.1:" + port,
		"TC_NATS_LISTEN=127.0.0.1:" + natsPort,
	}
	env = append(env, goEnv(t)...)
	r := &runner{
		t: t, root: root, env: env, tmp: tmp, ids: map[string]string{},
		paths: strings.NewReplacer(
			"/etc/trusted-compute", filepath.Join(tmp, "etc/trusted-compute"),
			"/var/lib/trusted-compute", filepath.Join(tmp, "var/lib/trusted-compute"),
			"https://verifier:8443", "https://localhost:"+port,
		),
	}
	ran := 0
	for _, page := range runPages {
		for _, b := range shBlocks(t, filepath.Join(root, page)) {
			b.where = strings.TrimPrefix(b.where, root+"/")
			r.run(b)
			ran++
		}
	}
	if !r.started {
		t.Errorf("no page started the verifier (a block ending in `verifier run`)")
	}
	t.Logf("ran %d command blocks of %s", ran, strings.Join(runPages, ", "))
}

// goEnv is the settings of go, for a page that runs it to build: its
// caches and module settings stay although HOME is elsewhere.
func goEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN", "CGO_ENABLED"} {
		v, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		env = append(env, k+"="+strings.TrimSpace(string(v)))
	}
	return env
}

func (r *runner) run(b block) {
	r.t.Helper()
	text := r.paths.Replace(b.text)
	cmds := commands(text)
	switch {
	case strings.HasPrefix(strings.TrimSpace(text), "$ "):
		r.transcript(b.where, cmds)
	case startsVerifier.MatchString(cmds[len(cmds)-1]):
		r.startVerifier(b.where, text)
	default:
		if out, err := r.bash(text); err != nil {
			r.t.Fatalf("%s: the block fails: %v\n%s\n--- output ---\n%s", b.where, err, b.text, out)
		}
	}
}

// bash runs a script and returns its combined output.
func (r *runner) bash(script string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(r.t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = r.root, r.env
	return cmd.CombinedOutput()
}

// startVerifier runs the block in the background until the test ends and
// waits until the verifier serves; then PIN and ~/.tc-admin are given.
func (r *runner) startVerifier(where, script string) {
	t := r.t
	logPath := filepath.Join(r.tmp, "verifier.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = r.root, r.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	t.Cleanup(func() {
		// The group: bash and the verifier it started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		graceful.Stop(cmd.Process, exited, 10*time.Second)
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s: the verifier exited:\n%s", where, log)
		default:
		}
		log, _ := os.ReadFile(logPath)
		if m := rootDigestRE.FindSubmatch(log); m != nil && serves(r.listen()) {
			r.env = append(r.env, "PIN="+string(m[1]))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the verifier does not serve after 90 s:\n%s", where, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	password, err := os.ReadFile(filepath.Join(r.tmp, "etc/trusted-compute/admin-password"))
	if err != nil {
		t.Fatalf("%s: the page does not leave the admin password where the verifier reads it: %v", where, err)
	}
	home := strings.TrimPrefix(r.env[0], "HOME=")
	if err := os.WriteFile(filepath.Join(home, ".tc-admin"), password, 0o600); err != nil {
		t.Fatal(err)
	}
	r.started = true
}

func (r *runner) listen() string {
	for _, kv := range r.env {
		if v, ok := strings.CutPrefix(kv, "TC_LISTEN="); ok {
			return v
		}
	}
	return ""
}

// transcript runs each "$ " command and compares its output with the
// lines the page shows below it.
func (r *runner) transcript(where string, lines []string) {
	t := r.t
	for i := 0; i < len(lines); {
		cmdLine, ok := strings.CutPrefix(lines[i], "$ ")
		if !ok {
			t.Fatalf("%s: transcript line %q is not below a command", where, lines[i])
		}
		var want []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "$ "); i++ {
			want = append(want, lines[i])
		}
		for doc, here := range r.ids {
			cmdLine = strings.ReplaceAll(cmdLine, doc, here)
		}
		out, err := r.bash(cmdLine)
		if err != nil {
			t.Fatalf("%s: `%s` fails: %v\n%s", where, cmdLine, err, out)
		}
		got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(got) != len(want) {
			t.Fatalf("%s: `%s` prints %d lines, the page shows %d:\n%s", where, cmdLine, len(got), len(want), out)
		}
		for j := range want {
			if normalize(got[j]) != normalize(want[j]) {
				t.Fatalf("%s: `%s` line %d:\n got: %s\nwant: %s", where, cmdLine, j+1, got[j], want[j])
			}
			docIDs, ids := uuidRE.FindAllString(want[j], -1), uuidRE.FindAllString(got[j], -1)
			for k := range docIDs {
				r.ids[docIDs[k]] = ids[k]
			}
		}
	}
}

// normalize makes ids and times free and folds white space: the columns of
// a table are as wide as what they hold.
func normalize(s string) string {
	s = uuidRE.ReplaceAllString(s, "<id>")
	s = timeRE.ReplaceAllString(s, "<time>")
	return strings.Join(strings.Fields(s), " ")
}

func serves(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestTranscriptsCompareWhatMatters plays the comparison on its own.
func TestTranscriptsCompareWhatMatters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want string
		same      bool
	}{
		{"ids, times and column widths are free", "01a21c61-1470-7bf4-96c8-330132556e8e   edge-2  no   2026-11-27T09:40:54Z",
			"9f0e1d2c-0000-4000-8000-000000000001 edge-2    no 2025-01-01T00:00:00.123Z", true},
		{"another host is not", "x edge-3", "x edge-2", false},
		{"another verdict is not", "edge-2 yes", "edge-2 no", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if same := normalize(tc.got) == normalize(tc.want); same != tc.same {
				t.Errorf("normalize(%q) == normalize(%q) is %v, want %v", tc.got, tc.want, same, tc.same)
			}
		})
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, "a \\")
	fmt.Fprintln(&b, "  b")
	fmt.Fprintln(&b, "c")
	if got := commands(b.String()); len(got) != 2 || strings.Fields(got[0])[1] != "b" {
		t.Errorf("commands joins continuation lines: got %q", got)
	}
}

// goBuild builds the packages of the repository at root into dir.
func goBuild(t *testing.T, root, dir string, pkgs ...string) {
	t.Helper()
	build := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
}
