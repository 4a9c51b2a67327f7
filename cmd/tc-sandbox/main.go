// Command tc-sandbox runs the whole Trusted Compute system on one machine:
// the verifier, N edge nodes with simulated TPMs and the product's
// attestation manager on a local Kubernetes API (or a real cluster with
// --kubeconfig). `tcctl sandbox` runs it; it is a binary of its own so that
// the admin CLI does not link the verifier's servers and databases.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"trustedcompute.io/tc/internal/sandbox/fleet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := fleet.NewCommand()
	root.Use = "tc-sandbox"
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tc-sandbox:", err)
		os.Exit(1)
	}
}
