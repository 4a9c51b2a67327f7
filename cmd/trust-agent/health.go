package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/cli"
)

// The health file: the agent rewrites it every heartbeatInterval with
// whether its bus connection is up, and "trust-agent health" reads it. The
// agent opens no port, so the kubelet's probes run that command (exec).
const (
	heartbeatInterval = 10 * time.Second
	stateConnected    = "connected"
	stateDisconnected = "disconnected"
)

// heartbeat writes path every interval until ctx ends: "connected" while
// up reports the bus connection up, "disconnected" otherwise. A stale file
// means the agent no longer runs its loops.
func heartbeat(ctx context.Context, path string, interval time.Duration, up func() bool, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		state := stateDisconnected
		if up() {
			state = stateConnected
		}
		if err := writeFileAtomic(path, []byte(state+"\n")); err != nil {
			logger.Warn("health file not written", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			_ = os.Remove(path)
			return
		case <-t.C:
		}
	}
}

// checkHealth reports whether the health file at path was written within
// maxAge of now and, with ready, whether the bus connection was up then.
func checkHealth(path string, now time.Time, maxAge time.Duration, ready bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("no heartbeat: %w", err)
	}
	if age := now.Sub(fi.ModTime()); age > maxAge {
		return fmt.Errorf("heartbeat is %s old, want at most %s", age.Round(time.Second), maxAge)
	}
	if !ready {
		return nil
	}
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the health file (the pod spec)
	if err != nil {
		return fmt.Errorf("read heartbeat: %w", err)
	}
	if state := strings.TrimSpace(string(data)); state != stateConnected {
		return fmt.Errorf("bus connection: %s", state)
	}
	return nil
}

func cmdHealth(_ context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) error {
	fs := cli.NewFlagSet("health", stderr)
	path := fs.String("file", "", "health file the agent writes (run --health-file)")
	maxAge := fs.Duration("max-age", 3*heartbeatInterval, "oldest heartbeat that counts as alive")
	ready := fs.Bool("ready", false, "also require the bus connection to be up (readiness)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("health: -file is required")
	}
	if err := checkHealth(*path, time.Now(), *maxAge, *ready); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "ok")
	return err
}
