package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Debug holds switches for measuring the verifier, all off by default.
type Debug struct {
	// PprofListen serves net/http/pprof (/debug/pprof/...) without a token
	// on this plain-HTTP address, for `go tool pprof` during a load test.
	// Loopback addresses only; empty (the default) serves nothing.
	PprofListen string `yaml:"pprof_listen" env:"TC_DEBUG_PPROF_LISTEN"`
}

// servePprof serves the profiles on addr until ctx ends; it returns once
// the address is bound, and serves in the background.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("debug.pprof_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof listener stopped", "error", err.Error())
		}
	}()
	logger.Warn("serving pprof profiles without a token", "listen", ln.Addr().String())
	return nil
}
