// Command tcctl is the Trusted Compute admin CLI.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/tcctl"
)

func main() { cli.Main("tcctl", newRoot(processEnv()).ExecuteContext) }

// processEnv is the environment of the tcctl process: a password prompt
// without echo only when stdin is a terminal.
func processEnv() tcctl.Env {
	env := tcctl.Env{Getenv: os.Getenv}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		env.ReadPassword = func() ([]byte, error) { return term.ReadPassword(fd) }
	}
	return env
}

func newRoot(env tcctl.Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "tcctl",
		Short:         "Operate Trusted Compute: hosts, flavors, reports, nodes, and a local sandbox",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	tcctl.AddTo(root, env)
	root.AddCommand(newSandboxCommand(), newVersionCommand())
	return root
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// versionLine names this build: its version, the commit it was built from
// when the build recorded one, and the Go release.
func versionLine() string {
	line := "tcctl " + version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				line += " (commit " + s.Value + ")"
			}
		}
	}
	return line + " " + runtime.Version()
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print the version of tcctl", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}
