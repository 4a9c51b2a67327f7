package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunTasksStopsEveryTaskWhenOneFails(t *testing.T) {
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := runTasks(context.Background(),
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil },
		func(context.Context) error { return boom },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("runTasks = %v, want boom", err)
	}
	select {
	case <-stopped:
	case <-time.After(time.Second):
		t.Fatal("the other task was not stopped")
	}
}

func TestRunRefusesAnInvalidConfigurationBeforeConnecting(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"run"}, &bytes.Buffer{}, &stderr, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "verifier.url is required") {
		t.Fatalf("run = %v, want the configuration problems", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "attestation-manager ") {
		t.Fatalf("version printed %q", out.String())
	}
}
