// Command tc-sandbox runs the whole Trusted Compute system on one machine:
// the verifier, N edge nodes with simulated TPMs and the product's
// attestation manager on a local Kubernetes API (or a real cluster with
// --kubeconfig). `tcctl sandbox` runs it; it is a binary of its own so that
// the admin CLI does not link the verifier's servers and databases.
package main

import (
	"trustedcompute.io/tc/internal/cli"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

func main() {
	root := fleet.NewCommand()
	root.Use = "tc-sandbox"
	cli.Main("tc-sandbox", root.ExecuteContext)
}
