package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// sandboxBinary is the program that `tcctl sandbox` runs.
const sandboxBinary = "tc-sandbox"

// newSandboxCommand is `tcctl sandbox`: it replaces tcctl with tc-sandbox
// (beside tcctl, else on PATH), passing every argument on, so that Ctrl-C
// reaches the sandbox directly. The sandbox is a binary of its own because it
// runs the verifier in process, and the CLI must not link the verifier's
// servers and databases.
func newSandboxCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "sandbox",
		Short:              "Run a verifier, N edge nodes with simulated TPMs and a local attestation manager on this machine",
		Long:               "sandbox runs " + sandboxBinary + " with the same arguments; `tcctl sandbox --help` lists them.",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findSandbox()
			if err != nil {
				return err
			}
			argv := append([]string{path}, args...)
			return syscall.Exec(path, argv, os.Environ()) //nolint:gosec // G204: our own binary, located beside tcctl or on PATH
		},
		// The sandbox's flags (--scenario and its names, ...) are its own:
		// ask it.
		ValidArgsFunction: completeSandbox,
	}
}

// completeSandbox asks tc-sandbox's own completion (cobra's hidden
// __complete command) and relays its answer.
func completeSandbox(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	path, err := findSandbox()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	argv := append(append([]string{cobra.ShellCompRequestCmd}, args...), toComplete)
	out, err := exec.CommandContext(cmd.Context(), path, argv...).Output() //nolint:gosec // G204: our own binary, as above
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	last := lines[len(lines)-1]
	directive, err := strconv.Atoi(strings.TrimPrefix(last, ":"))
	if !strings.HasPrefix(last, ":") || err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return lines[:len(lines)-1], cobra.ShellCompDirective(directive)
}

// findSandbox locates tc-sandbox beside the running tcctl, then on PATH.
func findSandbox() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), sandboxBinary)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(sandboxBinary)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("tcctl sandbox runs %s, which is neither beside tcctl nor on PATH: build both with `make build` (into ./bin) or `go build -o bin/ ./cmd/tcctl ./cmd/tc-sandbox`", sandboxBinary)
	}
	return "", fmt.Errorf("find %s: %w", sandboxBinary, err)
}
