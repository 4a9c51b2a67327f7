//go:build cgo && !tc_nosimulator

package fleet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/sandbox/fleet"
)

func TestTheSecretScenarioReleasesToAVerifiedNodeAndRevokesOnTamper(t *testing.T) {
	f := startFleet(t, 2)
	var out bytes.Buffer
	err := fleet.RunScenario(context.Background(), f, "secret", &out)
	t.Log("\n" + out.String())
	if err != nil {
		// The node's log says what its keeper was told.
		log, _ := os.ReadFile(filepath.Join(f.Dir(), "nodes", "edge-1", "node.log"))
		t.Fatalf("%v\nedge-1's log:\n%s", err, log)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`secret sandbox-volume-key created .* value sha256 ([0-9a-f]{16})`),
		regexp.MustCompile(`edge-1: released, sealed to its TPM's EK and unwrapped there, .*, 32 bytes, sha256 [0-9a-f]{16} \(the created value\)`),
		regexp.MustCompile(`edge-1: the key broker revoked sandbox-volume-key and the agent dropped it, .* after the tamper`),
		regexp.MustCompile(`edge-1: asks again: refused \((not_verified|attestation_failed)\)`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("the scenario's output has no line matching %s", want)
		}
	}
	assertCordoned(t, f, "edge-1", cluster.StatusAttestationFailed, cluster.ReasonAttestationFailed)
	assertUntouched(t, f, "edge-2")
}
