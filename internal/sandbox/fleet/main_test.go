package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"trustedcompute.io/tc/internal/cluster/clustertest"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

// nodeEnv makes the test binary a sandbox node process (see TestMain).
const nodeEnv = "TC_SANDBOX_NODE"

// TestMain turns the test binary into a node process when the sandbox
// starts it with nodeEnv set, as tcctl does with its hidden "sandbox node".
func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := fleet.NodeMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(clustertest.Run(m))
}
