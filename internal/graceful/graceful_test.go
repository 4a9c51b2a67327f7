package graceful_test

import (
	"os/exec"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/graceful"
)

const grace = 500 * time.Millisecond

// stop starts sh -c script, stops it with graceful.Stop and returns how
// the process ended and how long Stop took.
func stop(t *testing.T, script string) (string, time.Duration) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	time.Sleep(100 * time.Millisecond) // let sh set its trap
	start := time.Now()
	graceful.Stop(cmd.Process, exited, grace)
	return cmd.ProcessState.String(), time.Since(start)
}

func TestStopEndsAProcessWithSIGTERMWithinTheGracePeriod(t *testing.T) {
	if state, took := stop(t, "sleep 60"); state != "signal: terminated" || took >= grace {
		t.Errorf("process ended with %q after %s, want terminated within %s", state, took, grace)
	}
}

func TestStopKillsAProcessThatIgnoresSIGTERMAfterTheGracePeriod(t *testing.T) {
	if state, took := stop(t, `trap "" TERM; while :; do sleep 0.1; done`); state != "signal: killed" || took < grace {
		t.Errorf("process ended with %q after %s, want killed after %s", state, took, grace)
	}
}
