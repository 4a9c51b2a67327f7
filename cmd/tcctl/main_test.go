package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/tcctl"
)

// TestSandboxScenariosAsANewUserRunsThem builds tcctl and tc-sandbox and runs
// `tcctl sandbox --scenario all` as a user would: a verifier, three node
// processes with simulated TPMs and measured boots, the local attestation
// manager; tamper, reboot, secureboot-off and onboard must behave as
// described (the command exits non-zero otherwise).
func TestSandboxScenariosAsANewUserRunsThem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tcctl and runs the whole sandbox")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tcctl")
	build := exec.Command("go", "build", "-o", dir+"/", ".", "../tc-sandbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "sandbox", "--scenario", "all", "--nodes", "3", "--data", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tcctl sandbox --scenario all: %v\n%s", err, out)
	}
	for _, want := range []string{"tamper", "reboot", "secureboot-off", "onboard"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention the %s scenario:\n%s", want, out)
		}
	}
}

// TestTheRootOffersEveryCommandAndCompletion checks the wiring of main:
// the tcctl commands next to sandbox, and shell completion scripts.
func TestTheRootOffersEveryCommandAndCompletion(t *testing.T) {
	root := newRoot(tcctl.Env{})
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	for _, want := range []string{"login", "host", "flavor", "flavorgroup", "report", "user", "role", "credentials", "node", "sandbox", "version"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("tcctl lacks the %s command (has %v)", want, names)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		root := newRoot(tcctl.Env{})
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil {
			t.Fatalf("completion %s: %v", shell, err)
		}
		if !strings.Contains(out.String(), "tcctl") {
			t.Errorf("completion %s script does not mention tcctl:\n%.300s", shell, out.String())
		}
	}
}

func TestVersionNamesTheBuild(t *testing.T) {
	root := newRoot(tcctl.Env{})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "tcctl "+version) || !strings.Contains(got, "go1.") {
		t.Errorf("version printed %q", got)
	}
}
