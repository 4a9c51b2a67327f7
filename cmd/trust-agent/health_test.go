package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/config/configtest"
	"trustedcompute.io/tc/internal/eventually"
)

func TestHealthCommandReadsTheHeartbeat(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		state   string // "" writes no file
		age     time.Duration
		ready   bool
		wantErr string
	}{
		{name: "a fresh heartbeat with the bus up is alive and ready", state: stateConnected, ready: true},
		{name: "a fresh heartbeat with the bus down is alive", state: stateDisconnected},
		{name: "a fresh heartbeat with the bus down is not ready", state: stateDisconnected, ready: true, wantErr: "bus connection: disconnected"},
		{name: "a stale heartbeat is not alive although it says connected", state: stateConnected, age: time.Minute, wantErr: "heartbeat is 1m0s old, want at most 30s"},
		{name: "no heartbeat file is not alive", wantErr: "no heartbeat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "health")
			if tt.state != "" {
				if err := os.WriteFile(path, []byte(tt.state+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(path, now.Add(-tt.age), now.Add(-tt.age)); err != nil {
					t.Fatal(err)
				}
			}
			err := checkHealth(path, now, 30*time.Second, tt.ready)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("checkHealth = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkHealth = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestHeartbeatFollowsTheBusConnection runs the heartbeat with a connection
// that drops, and the health command as the kubelet would run it.
func TestHeartbeatFollowsTheBusConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "health")
	var up atomic.Bool
	up.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		heartbeat(ctx, path, 10*time.Millisecond, up.Load, slog.New(slog.DiscardHandler))
	}()
	health := func(args ...string) error {
		return program().Run(t.Context(), append([]string{"health", "-file", path}, args...), io.Discard, io.Discard, configtest.Env(nil))
	}
	eventually.True(t, 5*time.Second, "ready while the bus is up", func() bool { return health("-ready") == nil })
	up.Store(false)
	eventually.True(t, 5*time.Second, "not ready once the bus is down", func() bool { return health("-ready") != nil })
	if err := health(); err != nil {
		t.Errorf("health with the bus down = %v, want alive (a verifier outage must not restart agents)", err)
	}
	cancel()
	<-done
	var out bytes.Buffer
	if err := program().Run(t.Context(), []string{"health", "-file", path}, &out, &out, configtest.Env(nil)); err == nil {
		t.Errorf("health after the agent stopped = nil, output %q, want an error", out.String())
	}
}
