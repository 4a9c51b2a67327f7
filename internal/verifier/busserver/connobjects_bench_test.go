package busserver

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// BenchmarkAgentConnectionHeldObjects is what the garbage collector marks
// for each connected agent (docs/scaling.md#memory): heap objects and bytes
// a connection, server and client side together (both are in this
// process), with the agents' credentials of each grammar (bus.AgentGrammar):
// split (six subjects, three to subscribe and three to publish) and two
// prefixes (trust-agent.<host>.> and trust-events.<host>.>). The
// difference is what nats-server keeps for the other four subjects in each
// connection's permission trees. Each agent subscribes to its requests and
// publishes one event, as agents do.
//
//	go test -run '^$' -bench AgentConnectionHeldObjects -benchtime 1x -count 2 ./internal/verifier/busserver
func BenchmarkAgentConnectionHeldObjects(b *testing.B) {
	const agents = 300
	for _, g := range []bus.AgentGrammar{bus.GrammarSplit, bus.GrammarTwoPrefixes} {
		c := struct {
			name  string
			creds func(a *Authority, host string) ([]byte, error)
		}{"grammar=" + g.String(), func(a *Authority, host string) ([]byte, error) { return a.AgentCredentials(host, g, time.Hour) }}
		b.Run(c.name, func(b *testing.B) {
			ca := newTestCA(b)
			auth := newTestAuthority(b)
			srv, _ := startServer(b, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
			creds := make([][]byte, agents)
			for i := range agents {
				creds[i] = mustCreds(b)(c.creds(auth, fmt.Sprintf("H%d", i)))
			}
			before, conns := heldHeap(), 0
			for b.Loop() {
				conns += agents
				for i := range agents {
					host := fmt.Sprintf("H%d", i)
					nc, _ := client(b, srv.ClientURL(), creds[i], ca.pool, "agent-"+host)
					subscribed(b, nc, subject(b)(bus.AgentRequests(host)))
					if err := nc.Publish(subject(b)(bus.EventSubject(host, bus.IMAEvent)), []byte("{}")); err != nil {
						b.Fatal(err)
					}
					if err := nc.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			after := heldHeap()
			if n := srv.NumClients(); n < conns {
				b.Fatalf("%d clients connected, want %d", n, conns)
			}
			b.ReportMetric(float64(after.objects-before.objects)/float64(conns), "objects/conn")
			b.ReportMetric(float64(after.bytes-before.bytes)/float64(conns), "bytes/conn")
		})
	}
}

type heap struct{ objects, bytes int64 }

// heldHeap is the live heap after two collections.
func heldHeap() heap {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heap{int64(m.HeapObjects), int64(m.HeapAlloc)}
}
