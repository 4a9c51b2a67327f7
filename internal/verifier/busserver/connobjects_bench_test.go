package busserver

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"

	"trustedcompute.io/tc/internal/bus"
)

// BenchmarkAgentConnectionHeldObjects is what the garbage collector marks
// for each connected agent (docs/scaling.md#memory): heap objects and bytes
// a connection, server and client side together (both are in this
// process), with the agents' credentials as issued (six subjects, three to
// subscribe and three to publish) and with two prefixes only
// (trust-agent.<host>.> and trust-events.<host>.>), the grammar a next
// version of the bus could use. The difference is what nats-server keeps
// for the other four subjects in each connection's permission trees. Each
// agent subscribes to its requests and publishes one event, as agents do.
//
//	go test -run '^$' -bench AgentConnectionHeldObjects -benchtime 1x -count 2 ./internal/verifier/busserver
func BenchmarkAgentConnectionHeldObjects(b *testing.B) {
	const agents = 300
	for _, c := range []struct {
		name  string
		creds func(a *Authority, host string) ([]byte, error)
	}{
		{"permissions=as-issued", func(a *Authority, host string) ([]byte, error) { return a.AgentCredentials(host, time.Hour) }},
		{"permissions=two-prefixes", func(a *Authority, host string) ([]byte, error) {
			sub, err1 := bus.AgentRequests(host)
			pub := "trust-events." + host + ".>"
			perms := jwt.Permissions{
				Sub:  jwt.Permission{Allow: jwt.StringList{sub}},
				Pub:  jwt.Permission{Allow: jwt.StringList{pub}},
				Resp: &jwt.ResponsePermission{MaxMsgs: 1, Expires: ResponseWindow},
			}
			creds, err2 := a.recordedCredentials(b.Context(), Owner{OwnerAgent, host}, agentUserPrefix+host, perms, time.Hour, jwt.ConnectionTypeStandard)
			if err1 != nil {
				return nil, err1
			}
			return creds, err2
		}},
	} {
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
