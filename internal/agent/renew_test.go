package agent_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsconn"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/busserver"
)

// registered is the verifier's set of hosts.
type registered struct {
	mu    sync.Mutex
	hosts map[string]bool
}

func (r *registered) HostAllowed(_ context.Context, id string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hosts[id], nil
}

func (r *registered) HostsAllowed(context.Context) (map[string]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.hosts), nil
}

func (r *registered) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.hosts, id)
}

// credsLifetime is the lifetime of the test's credentials: renewals every 2 s.
const credsLifetime = 3 * time.Second

// renewingAgent runs a real agent on a swtpm with credentials of grammar
// held that live lifetime, renewed by a real Renewer on the embedded bus
// into credentials that live credsLifetime. It returns the host list, the
// renewer and a channel that gets every renewal.
func renewingAgent(t *testing.T, b *agentclienttest.Bus, hostID string, held bus.AgentGrammar, lifetime time.Duration) (*registered, *busserver.Renewer, <-chan *bus.Credentials) {
	t.Helper()
	hosts := &registered{hosts: map[string]bool{hostID: true}}
	renewer, err := busserver.NewRenewer(busserver.RenewerConfig{TTL: credsLifetime, ReconcileInterval: time.Hour}, b.Authority, b.Server, hosts, discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	svc := b.ServiceConn(t)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := renewer.Run(ctx, svc); err != nil {
			t.Errorf("renewer: %v", err)
		}
	}()

	nt, _, root := agentclienttest.BootNode(t, tpmtest.New(t).Spec(), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a07", hostID, sandbox.BootLogSecureBootOn)
	a, err := agent.New(agent.Config{HostID: hostID}, nt, measure.New(root.Dir), discard)
	if err != nil {
		t.Fatal(err)
	}
	raw0, err := b.Authority.AgentCredentials(hostID, held, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := bus.ParseCredentials(raw0)
	if err != nil {
		t.Fatal(err)
	}
	// The trust agent's own client, as cmd/trust-agent dials it.
	dial := func(ctx context.Context, c *bus.Credentials) (bus.Conn, error) {
		return natsconn.Dial(ctx, natsconn.Options{URL: b.Server.ClientURL(), Creds: c, RootCAs: b.Roots, Name: "agent-" + hostID, Logger: slog.New(slog.DiscardHandler)})
	}
	renewed := make(chan *bus.Credentials, 16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.RunRenewing(ctx, creds, dial, func(c *bus.Credentials) error { renewed <- c; return nil }); err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	return hosts, renewer, renewed
}

// quoteLoop asks hostID for quotes back to back until stop is closed and
// counts answers and failures.
func quoteLoop(c *agentclient.Client, hostID string, stop <-chan struct{}, answered, failed *atomic.Int64, lastErr *atomic.Value) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		nonce := make([]byte, 32)
		_, _ = rand.Read(nonce)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Quote(ctx, hostID, evidence.QuoteRequest{Version: evidence.Version, Nonce: nonce, PCRs: []int{0, 7}, Banks: []string{"SHA256"}})
		cancel()
		if err != nil {
			failed.Add(1)
			lastErr.Store(err.Error())
			time.Sleep(20 * time.Millisecond)
			continue
		}
		answered.Add(1)
		time.Sleep(10 * time.Millisecond) // leave the shared CPU some room
	}
}

func TestAgentLivesThroughThreeRenewalsWithoutAMissedQuote(t *testing.T) {
	b := agentclienttest.NewBus(t)
	_, _, renewed := renewingAgent(t, b, "edge-7", bus.GrammarTwoPrefixes, credsLifetime)
	c := agentclient.New(b.ServiceConn(t), 10*time.Second)
	waitAnswers(t, c, "edge-7")

	var answered, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); quoteLoop(c, "edge-7", stop, &answered, &failed, &lastErr) }()

	start := time.Now()
	var keys []string
	for len(keys) < 3 {
		select {
		case cr := <-renewed:
			keys = append(keys, cr.UserPublicKey())
		case <-time.After(3 * credsLifetime):
			t.Fatalf("only %d renewals after %s", len(keys), time.Since(start))
		}
	}
	// Past the expiry of the last credentials but one: the agent must be
	// on fresh ones.
	time.Sleep(credsLifetime / 2)
	close(stop)
	<-done
	t.Logf("%d renewals in %s, %d quotes answered, %d failed", len(keys), time.Since(start), answered.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d quote requests failed across the renewals, last: %v", failed.Load(), answered.Load()+failed.Load(), lastErr.Load())
	}
	if answered.Load() < 10 {
		t.Fatalf("only %d quotes answered", answered.Load())
	}
	if keys[0] == keys[1] || keys[1] == keys[2] {
		t.Fatal("a renewal kept the user key")
	}
}

// TestAnAgentHoldingSplitCredentialsMovesToTwoPrefixes: credentials of the
// split grammar (from a verifier before the grammar, or AAS without
// bus-grammar) are renewed into two prefixes when they are due, and the
// agent answers throughout.
func TestAnAgentHoldingSplitCredentialsMovesToTwoPrefixes(t *testing.T) {
	b := agentclienttest.NewBus(t)
	start := time.Now()
	_, _, renewed := renewingAgent(t, b, "edge-9", bus.GrammarSplit, credsLifetime)
	c := agentclient.New(b.ServiceConn(t), 10*time.Second)
	waitAnswers(t, c, "edge-9")
	select {
	case cr := <-renewed:
		if g := cr.AgentGrammar(); g != bus.GrammarTwoPrefixes {
			t.Fatalf("renewed into %v, want two prefixes", g)
		}
		t.Logf("moved to two prefixes %s after the start", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * credsLifetime):
		t.Fatal("the split credentials were not renewed")
	}
	waitAnswers(t, c, "edge-9")
	// Then the credentials of two prefixes are renewed when due, into two
	// prefixes again, with answers on trust-agent.<host>.issued.
	select {
	case cr := <-renewed:
		if g := cr.AgentGrammar(); g != bus.GrammarTwoPrefixes {
			t.Fatalf("renewed again into %v", g)
		}
	case <-time.After(3 * credsLifetime):
		t.Fatal("the credentials of two prefixes were not renewed")
	}
	waitAnswers(t, c, "edge-9")
}

func TestRemovedHostsAgentIsCutOffWithinTwoSeconds(t *testing.T) {
	b := agentclienttest.NewBus(t)
	hosts, renewer, _ := renewingAgent(t, b, "edge-8", bus.GrammarTwoPrefixes, credsLifetime)
	c := agentclient.New(b.ServiceConn(t), 2*time.Second)
	waitAnswers(t, c, "edge-8")

	hosts.remove("edge-8")
	removed := time.Now()
	renewer.HostRemoved("edge-8")
	for {
		_, err := c.Version(context.Background(), "edge-8")
		if err != nil {
			break
		}
		if time.Since(removed) > 2*time.Second {
			t.Fatal("the removed host's agent still answers after 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("cut off after %s", time.Since(removed))
	// Through renewals and reconnects it stays cut off.
	time.Sleep(credsLifetime)
	if _, err := c.Version(context.Background(), "edge-8"); err == nil {
		t.Fatal("the removed host's agent answers again")
	}
}

// waitAnswers waits until the agent answers a version request.
func waitAnswers(t *testing.T, c *agentclient.Client, hostID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Version(context.Background(), hostID); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s does not answer", hostID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
