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

func TestPprofListenTakesOnlyLoopbackAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"an empty address serves nothing and is valid", "", true},
		{"an IPv4 loopback address is accepted", "127.0.0.1:6060", true},
		{"an IPv6 loopback address is accepted", "[::1]:6060", true},
		{"localhost is accepted", "localhost:6060", true},
		{"every interface is refused", ":6060", false},
		{"a routable address is refused", "10.0.0.5:6060", false},
		{"a host name other than localhost is refused", "verifier.example:6060", false},
		{"an address without a port is refused", "127.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := validatePprofListen(tc.addr); (err == nil) != tc.ok {
				t.Fatalf("validatePprofListen(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}

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
