// Command tcctl is the Trusted Compute admin CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"trustedcompute.io/tc/internal/tcctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(processEnv()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcctl:", err)
		os.Exit(1)
	}
}

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
	root.AddCommand(newSandboxCommand())
	return root
}
