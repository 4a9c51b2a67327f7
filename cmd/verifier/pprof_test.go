package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestTheDefaultConfigurationServesNoProfiles(t *testing.T) {
	if addr := defaultConfig().Debug.PprofListen; addr != "" {
		t.Fatalf("debug.pprof_listen defaults to %q, want off", addr)
	}
}

func TestPprofServesProfilesUntilTheContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	if err := servePprof(ctx, addr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(b) == 0 {
		t.Fatalf("GET /debug/pprof/cmdline = %d %q", resp.StatusCode, b)
	}
	cancel()
	for range 100 {
		if _, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the pprof listener still accepts connections after the context ended")
}
