package eim

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"trustedcompute.io/tc/internal/eim/attestmgrv1"
	"trustedcompute.io/tc/internal/testca"
)

const (
	testHost  = "4c4c4544-0042-3510-8052-b4c04f4e4a32"
	testHost2 = "0f6e1c2a-9d1b-4e55-8a3e-6c2b7d9e0a11"
)

func newTestCA(t *testing.T) *testca.CA { return testca.New(t, "eim test ca") }

// call is one request the fake EIM received.
type call struct {
	hostGUID      string
	status        attestmgrv1.AttestationStatus
	detail        string
	authorization []string
}

// fakeEIM is a real gRPC AttestationStatusMgrService that records calls.
type fakeEIM struct {
	attestmgrv1.UnimplementedAttestationStatusMgrServiceServer

	// respond, when set, decides the answer to call number n (from 1).
	respond func(ctx context.Context, n int) error

	mu    sync.Mutex
	calls []call
	seen  chan struct{} // receives after each recorded call, when not full
}

//nolint:revive // the name is fixed by the generated service interface
func (f *fakeEIM) UpdateInstanceAttestationStatusByHostGuid(ctx context.Context, req *attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest) (*attestmgrv1.UpdateInstanceAttestationStatusByHostGuidResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.calls = append(f.calls, call{
		hostGUID:      req.GetHostGuid(),
		status:        req.GetAttestationStatus(),
		detail:        req.GetAttestationStatusDetail(),
		authorization: md.Get("authorization"),
	})
	n := len(f.calls)
	f.mu.Unlock()
	if f.seen != nil {
		select {
		case f.seen <- struct{}{}:
		default:
		}
	}
	if f.respond != nil {
		if err := f.respond(ctx, n); err != nil {
			return nil, err
		}
	}
	return &attestmgrv1.UpdateInstanceAttestationStatusByHostGuidResponse{}, nil
}

func (f *fakeEIM) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// serve runs srv over TLS with cfg on a loopback port and returns the address.
func serve(t *testing.T, srv attestmgrv1.AttestationStatusMgrServiceServer, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	attestmgrv1.RegisterAttestationStatusMgrServiceServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// tls13 is the server side of the EIM: TLS 1.3 with a certificate of ca.
func tls13(t *testing.T, ca *testca.CA) *tls.Config {
	t.Helper()
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ca.ServerCert(t, "eim.test")}}
}

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientConfig is a fast-retrying configuration for a server at addr
// signed by ca, with token in a fresh token file.
func clientConfig(t *testing.T, addr string, ca *testca.CA, token string) Config {
	t.Helper()
	dir := t.TempDir()
	return Config{
		Address:     addr,
		CAFile:      writeFile(t, dir, "ca.pem", ca.PEM),
		TokenFile:   writeFile(t, dir, "token", []byte(token+"\n")),
		Timeout:     5 * time.Second,
		MaxAttempts: 3,
		BackoffBase: time.Millisecond,
		BackoffCap:  5 * time.Millisecond,
	}
}

// serveEIM serves eim over TLS 1.3 with a certificate of a fresh CA and
// returns a client configuration that trusts it and sends token.
func serveEIM(t *testing.T, eim *fakeEIM, token string) Config {
	t.Helper()
	ca := newTestCA(t)
	return clientConfig(t, serve(t, eim, tls13(t, ca)), ca, token)
}

func newTestClient(t *testing.T, cfg Config, logger *slog.Logger) *Client {
	t.Helper()
	if logger == nil {
		logger = discardLogger()
	}
	c, err := NewClient(cfg, logger)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
