package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunRefusesAnInvalidConfigurationBeforeConnecting(t *testing.T) {
	var stderr bytes.Buffer
	err := program().Run(context.Background(), []string{"run"}, &bytes.Buffer{}, &stderr, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "verifier.url is required") {
		t.Fatalf("run = %v, want the configuration problems", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := program().Run(context.Background(), []string{"version"}, &out, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "attestation-manager ") {
		t.Fatalf("version printed %q", out.String())
	}
}
