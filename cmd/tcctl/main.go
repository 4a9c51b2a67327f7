// Command tcctl is the Trusted Compute admin CLI.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"trustedcompute.io/tc/internal/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcctl:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "tcctl",
		Short:         "Operate Trusted Compute: hosts, flavors, reports, nodes, and a local sandbox",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newSandbox())
	return root
}

func newSandbox() *cobra.Command {
	var opts sandbox.LocalOptions
	var verbose bool
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Boot a simulated edge node (real OVMF event log, IMA) and appraise its evidence",
		RunE: func(cmd *cobra.Command, _ []string) error {
			h := slog.DiscardHandler
			if verbose {
				h = slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug})
			}
			return sandbox.RunLocal(cmd.Context(), cmd.OutOrStdout(), opts, slog.New(h))
		},
	}
	cmd.Flags().StringVar(&opts.TPM, "tpm", "simulator", "TPM of the node: simulator | swtpm:unix:<path> | swtpm:<host>:<port>")
	cmd.Flags().BoolVar(&opts.SecureBootOff, "secure-boot-off", false, "boot the node with the Secure Boot disabled firmware log")
	cmd.Flags().StringVar(&opts.Dir, "data", "", "directory for the node's file system root (default: a temp dir)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log to stderr")
	return cmd
}
