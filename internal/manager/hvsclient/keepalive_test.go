package hvsclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestReportsReuseOneConnection plays the manager's steady state: a POST
// and a signed GET for every report, a 404 now and then. Each new TLS
// connection costs the verifier a handshake (an ECDSA signature and key
// exchange), so the client must keep its connection alive across requests
// and across error answers, over HTTP/2 and over HTTP/1.1 alike.
func TestReportsReuseOneConnection(t *testing.T) {
	for name, http2 := range map[string]bool{
		"over HTTP/2 every request shares one connection":             true,
		"over HTTP/1.1 sequential requests keep one connection alive": false,
	} {
		t.Run(name, func(t *testing.T) {
			var conns atomic.Int64
			f := newFixture(t, func(s *httptest.Server) {
				s.EnableHTTP2 = http2
				s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
					if st == http.StateNew {
						conns.Add(1)
					}
				}
			})
			f.fv.flavors["host-1"] = 3
			ctx := context.Background()
			for i := range 40 {
				if _, err := f.client.CreateReport(ctx, "host-1"); err != nil {
					t.Fatalf("report %d: %v", i, err)
				}
				if _, err := f.client.LatestReport(ctx, "host-unknown"); !errors.Is(err, ErrNoReport) {
					t.Fatalf("latest report of an unknown host: %v, want ErrNoReport", err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("120 requests opened %d connections, want 1", n)
			}
		})
	}
}
