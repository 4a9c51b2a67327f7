package busserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/eventually"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/memsecrets"
)

// replica is one verifier replica's bus: its own Authority over the seeds
// and key ledger the replicas share (the database), and its own embedded
// server joined to the others by routes.
type replica struct {
	auth *Authority
	srv  *Server
	stop func()
}

// startCluster starts n replicas in one process: the first alone, the
// others routed to it (the servers find each other through it, and stay
// joined when it goes).
func startCluster(t *testing.T, n int, ca *testca.CA) []*replica {
	t.Helper()
	secrets, ledger := memsecrets.New(), newMemLedger()
	routeTLS, err := RouteTLS(ca.ServerCert(t, "verifier.test"), ca.Pool(), "verifier.test")
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t, "localhost")}, MinVersion: tls.VersionTLS13}
	var rs []*replica
	for i := range n {
		auth, err := NewAuthority(context.Background(), secrets, errNotFound, WithLedger(ledger))
		if err != nil {
			t.Fatal(err)
		}
		cluster := &ClusterConfig{Name: "tc-test", Host: "127.0.0.1", TLS: routeTLS}
		if i > 0 {
			cluster.Routes = []string{rs[0].srv.ClusterURL()}
		}
		srv, stop := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: clientTLS, Name: fmt.Sprintf("replica-%d", i+1), Cluster: cluster}, auth)
		rs = append(rs, &replica{auth: auth, srv: srv, stop: stop})
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range rs {
		for r.srv.NumRoutes() < n-1 {
			if time.Now().After(deadline) {
				t.Fatalf("server has %d routes, want %d", r.srv.NumRoutes(), n-1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return rs
}

func urls(rs []*replica) string {
	var us []string
	for _, r := range rs {
		us = append(us, r.srv.ClientURL())
	}
	return strings.Join(us, ",")
}

// askUntil requests subject on nc until an answer comes or timeout passes.
func askUntil(nc *nats.Conn, subject string, timeout time.Duration) (*nats.Msg, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := nc.Request(subject, []byte("ping"), 500*time.Millisecond)
		if err == nil || time.Now().After(deadline) {
			return m, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReplicasShareOneOperatorAndAccount(t *testing.T) {
	rs := startCluster(t, 3, testca.New(t, "cluster test root CA"))
	for _, r := range rs[1:] {
		if r.auth.OperatorJWT() == "" || r.auth.AccountPublicKey() != rs[0].auth.AccountPublicKey() ||
			r.auth.SystemAccountPublicKey() != rs[0].auth.SystemAccountPublicKey() {
			t.Errorf("a replica's authority differs from the first's")
		}
	}
}

func TestAnAgentOnAKilledReplicaKeepsAnsweringThroughAnother(t *testing.T) {
	ca := testca.New(t, "cluster test root CA")
	rs := startCluster(t, 3, ca)
	const host = "edge-1"
	// The agent's credentials come from replica 3, it connects to replica 1
	// (listed first, not shuffled) and the verifier asks from replica 2.
	agent, _ := client(t, urls(rs), mustCreds(t)(rs[2].auth.AgentCredentials(host, bus.GrammarSplit, time.Hour)), ca.Pool(), "agent", nats.DontRandomize())
	echoAgent(t, agent, host)
	if got := agent.ConnectedServerName(); got != "replica-1" {
		t.Fatalf("agent connected to %s, want replica-1", got)
	}
	svc, err := ConnectInProcess(rs[1].srv, mustCreds(t)(rs[1].auth.ServiceCredentials("hvs", time.Hour)), "hvs", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	subject, err := bus.AgentRequestSubject(host, bus.QuoteRequest)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := askUntil(svc, subject, 5*time.Second); err != nil || string(m.Data) != host+":ping" {
		t.Fatalf("request across the cluster before the kill: %v", err)
	}
	rs[0].stop()
	start := time.Now()
	m, err := askUntil(svc, subject, 15*time.Second)
	if err != nil || string(m.Data) != host+":ping" {
		t.Fatalf("request after replica 1 was killed: %v", err)
	}
	if got := agent.ConnectedServerName(); got == "replica-1" || got == "" {
		t.Errorf("agent on %q after replica 1 stopped", got)
	}
	t.Logf("the agent answered again %s after its replica stopped, through %s", time.Since(start).Round(time.Millisecond), agent.ConnectedServerName())
}

func TestARevocationOnOneReplicaCutsTheKeyOffOnAll(t *testing.T) {
	ca := testca.New(t, "cluster test root CA")
	rs := startCluster(t, 3, ca)
	const host = "edge-1"
	hosts := newFakeHosts(host)
	var renewers []*Renewer
	for _, r := range rs {
		renewers = append(renewers, startRenewer(t, r.srv, r.auth, hosts, time.Hour))
	}
	creds := mustCreds(t)(rs[0].auth.AgentCredentials(host, bus.GrammarSplit, time.Hour))
	agent, _ := client(t, urls(rs), creds, ca.Pool(), "agent", nats.DontRandomize())
	if got := agent.ConnectedServerName(); got != "replica-1" {
		t.Fatalf("agent connected to %s, want replica-1", got)
	}
	// Every renewer subscribes to the notices before the revocation.
	time.Sleep(200 * time.Millisecond)
	if err := renewers[1].RevokeHost(t.Context(), host); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "the agent is cut off after replica 2 revoked its key", func() bool { return !agent.IsConnected() })
	for i, r := range rs {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		nc, err := natsbus.Connect(ctx, r.srv.ClientURL(), creds, ca.Pool(), "agent-again", discardLogger())
		cancel()
		if err == nil {
			nc.Close()
			t.Errorf("replica %d accepted the revoked key", i+1)
		} else if !errors.Is(err, nats.ErrAuthorization) && !errors.Is(err, nats.ErrAuthRevoked) {
			t.Errorf("replica %d refused the revoked key with %v, want an authorization error", i+1, err)
		}
	}
}

func TestARouteFromAServerWithoutTheVerifiersNameIsRefused(t *testing.T) {
	ca := testca.New(t, "cluster test root CA")
	rs := startCluster(t, 1, ca)
	// Same CA, but a certificate CMS would issue to anyone: not the
	// verifier's reserved name.
	impostorTLS, err := RouteTLS(ca.ServerCert(t, "someone-else.test"), ca.Pool(), "verifier.test")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := NewAuthority(context.Background(), memsecrets.New(), errNotFound)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t, "localhost")}, MinVersion: tls.VersionTLS13}
	impostor, _ := startServer(t, ServerConfig{Host: "127.0.0.1", TLS: clientTLS, Name: "impostor",
		Cluster: &ClusterConfig{Name: "tc-test", Host: "127.0.0.1", TLS: impostorTLS, Routes: []string{rs[0].srv.ClusterURL()}}}, auth)
	time.Sleep(2 * time.Second) // several route attempts
	if n := rs[0].srv.NumRoutes() + impostor.NumRoutes(); n != 0 {
		t.Errorf("%d routes with a server that holds another name's certificate, want none", n)
	}
}

func TestAClusterWithoutPinnedRouteTLSIsRefused(t *testing.T) {
	ca := testca.New(t, "cluster test root CA")
	_, err := NewServer(ServerConfig{AllowPlaintextForTests: true,
		Cluster: &ClusterConfig{Name: "tc-test", TLS: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ca.ServerCert(t, "x")}}}},
		newTestAuthority(t), discardLogger())
	if err == nil || !strings.Contains(err.Error(), "pinned roots") {
		t.Errorf("NewServer with unpinned route TLS = %v, want an error about pinned roots", err)
	}
}
