package graceful_test

import (
	"os/exec"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/graceful"
)

func TestStop(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		wantKilled bool
	}{
		{"a process that ends at SIGTERM is not killed", "sleep 60", false},
		{"a process that ignores SIGTERM is killed after the grace period", `trap "" TERM; while :; do sleep 0.1; done`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tt.script)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			time.Sleep(100 * time.Millisecond) // let sh set its trap
			start := time.Now()
			graceful.Stop(cmd.Process, exited, 500*time.Millisecond)
			took := time.Since(start)
			killed := cmd.ProcessState.String() == "signal: killed"
			if killed != tt.wantKilled {
				t.Errorf("process ended with %q after %s, want killed %v", cmd.ProcessState, took, tt.wantKilled)
			}
			if !tt.wantKilled && took >= 500*time.Millisecond {
				t.Errorf("Stop took %s, longer than the grace period", took)
			}
		})
	}
}
