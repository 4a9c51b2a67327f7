package busserver

import (
	"fmt"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// BenchmarkUserConns lists 2,100 connected agents, as the renewer's
// reconciliation and every revocation do. Connz decodes every connection's
// JWT on each call, so the list is asked for in one page: in pages of
// 1,024 it cost three times the decodes (and ten times at 10,000 agents).
func BenchmarkUserConns(b *testing.B) {
	const agents = 2100
	ca := newTestCA(b)
	auth := newTestAuthority(b)
	srv, _ := startServer(b, ServerConfig{Host: "127.0.0.1", TLS: ca.serverTLS}, auth)
	for i := range agents {
		host := fmt.Sprintf("H%d", i)
		client(b, srv.ClientURL(), mustCreds(b)(auth.AgentCredentials(host, bus.GrammarSplit, time.Hour)), ca.pool, "agent-"+host)
	}
	for b.Loop() {
		conns, err := srv.userConns()
		if err != nil {
			b.Fatal(err)
		}
		if len(conns) != agents {
			b.Fatalf("listed %d connections, want %d", len(conns), agents)
		}
	}
}
