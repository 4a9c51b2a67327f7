package busserver

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
)

// BenchmarkRequestReply measures one request/reply between a service and an
// echoing agent connected over TCP+TLS, with the service over TLS or in
// process.
func BenchmarkRequestReply(b *testing.B) {
	ca := newTestCA(b)
	auth := newTestAuthority(b)
	srv, _ := startServer(b, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
	agent, _ := client(b, srv.ClientURL(), mustCreds(b)(auth.AgentCredentials("H1", bus.GrammarSplit, time.Hour)), ca.pool, "agent-H1")
	echoAgent(b, agent, "H1")
	svcCreds := mustCreds(b)(auth.ServiceCredentials("hvs", time.Hour))
	tlsSvc, _ := client(b, srv.ClientURL(), svcCreds, ca.pool, "hvs")
	inProc, err := ConnectInProcess(srv, svcCreds, "hvs-inprocess", discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(inProc.Close)
	subj, err := bus.AgentRequestSubject("H1", bus.QuoteRequest)
	if err != nil {
		b.Fatal(err)
	}

	for _, svc := range []struct {
		name string
		nc   *nats.Conn
	}{{"service tls", tlsSvc}, {"service in-process", inProc}} {
		for _, size := range []int{128, 64 << 10} {
			b.Run(fmt.Sprintf("%s/%dB", svc.name, size), func(b *testing.B) {
				payload := bytes.Repeat([]byte{'x'}, size)
				b.SetBytes(int64(size))
				for b.Loop() {
					msg, err := svc.nc.Request(subj, payload, 5*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					if len(msg.Data) != size+len("H1:") {
						b.Fatalf("reply of %d bytes", len(msg.Data))
					}
				}
			})
		}
	}
}
