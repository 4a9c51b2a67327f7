package busserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
)

// fakeHosts is the set of registered hosts.
type fakeHosts struct {
	mu    sync.Mutex
	hosts map[string]bool // registered hosts: allowed, or disabled (false)
	err   error
	// asks and lists count the calls of HostAllowed and HostsAllowed.
	asks, lists int
}

func newFakeHosts(ids ...string) *fakeHosts {
	h := &fakeHosts{hosts: map[string]bool{}}
	for _, id := range ids {
		h.hosts[id] = true
	}
	return h
}

func (h *fakeHosts) HostAllowed(_ context.Context, id string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asks++
	return h.hosts[id], h.err
}

func (h *fakeHosts) HostsAllowed(context.Context) (map[string]bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lists++
	return maps.Clone(h.hosts), h.err
}

func (h *fakeHosts) set(id string, allowed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hosts[id] = allowed
}

func (h *fakeHosts) remove(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.hosts, id)
}

// startRenewer runs a Renewer on a service connection until the test ends.
// Its agents may renew 100 times at once (the tests renew one host often).
func startRenewer(t testing.TB, srv *Server, auth *Authority, hosts Hosts, ttl time.Duration) *Renewer {
	t.Helper()
	return startRenewerWith(t, srv, auth, hosts, RenewerConfig{TTL: ttl, ReconcileInterval: time.Hour, RenewalBurst: 100})
}

// startRenewerWith runs a Renewer of cfg on a service connection until the
// test ends.
func startRenewerWith(t testing.TB, srv *Server, auth *Authority, hosts Hosts, cfg RenewerConfig) *Renewer {
	t.Helper()
	r, err := NewRenewer(cfg, auth, srv, hosts, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ConnectInProcess(srv, mustCreds(t)(auth.InProcessCredentials("hvs", time.Hour)), "hvs", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, svc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("renewer: %v", err)
		}
		svc.Close()
	})
	// Run has subscribed once a renewal is answered; wait for the
	// subscription through a round trip of the service connection.
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	return r
}

func TestRenewal(t *testing.T) {
	b := newTestBus(t)
	hosts := newFakeHosts("H1", "H2")
	startRenewer(t, b.srv, b.auth, hosts, 90*time.Second)
	hosts.remove("H2")

	tests := []struct {
		name, host string
		wantErr    error // nil: fresh credentials
	}{
		{"the agent of a registered host gets fresh credentials of the same name and lifetime", "H1", nil},
		{"the agent of a removed host is refused", "H2", bus.ErrRenewalRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := mustCreds(t)(b.auth.AgentCredentials(tt.host, bus.GrammarSplit, time.Hour))
			current, err := bus.ParseCredentials(raw)
			if err != nil {
				t.Fatal(err)
			}
			nc, _ := b.dial(t, raw, "agent-"+tt.host)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			fresh, err := bus.RenewCredentials(ctx, natsbus.Adapt(nc), tt.host, current)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("renewal: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("renewal: %v", err)
			}
			if fresh.Name() != "agent:"+tt.host || fresh.UserPublicKey() == current.UserPublicKey() {
				t.Fatalf("got %s with key %s, want agent:%s with a new key", fresh.Name(), fresh.UserPublicKey(), tt.host)
			}
			if life := fresh.Expires().Sub(fresh.IssuedAt()); life != 90*time.Second {
				t.Fatalf("renewed credentials live %s, want the configured 90s", life)
			}
			// The fresh credentials work.
			b.dial(t, fresh.Bytes(), "agent-"+tt.host+"-renewed")
		})
	}
}

func TestAgentCannotRenewOrReadCredentialsOfAnotherHost(t *testing.T) {
	b := newTestBus(t)
	startRenewer(t, b.srv, b.auth, newFakeHosts("H1", "H2"), time.Hour)
	for _, held := range []bus.AgentGrammar{bus.GrammarSplit, bus.GrammarTwoPrefixes} {
		h1, log1 := b.dial(t, mustCreds(t)(b.auth.AgentCredentials("H1", held, time.Hour)), "agent-H1-"+held.String())
		var probes []probe
		for _, g := range []bus.AgentGrammar{bus.GrammarSplit, bus.GrammarTwoPrefixes} {
			otherRenew, _ := g.RenewSubject("H2")
			otherIssued, _ := g.IssuedSubject("H2")
			otherAnswer, _ := g.SecretAnswerSubject("H2")
			otherRequest, _ := g.SecretRequestSubject("H2")
			probes = append(probes,
				probe{held.String() + " credentials: asking on another host's " + g.String() + " renewal subject is refused by the server", publishRefused(h1, log1, otherRenew)},
				probe{held.String() + " credentials: subscribing to another host's " + g.String() + " renewal answers is refused by the server", subscribeRefused(h1, otherIssued)},
				probe{held.String() + " credentials: forging another host's " + g.String() + " renewal answer is refused by the server", publishRefused(h1, log1, otherIssued)},
				probe{held.String() + " credentials: asking for another host's secrets in " + g.String() + " is refused by the server", publishRefused(h1, log1, otherRequest)},
				probe{held.String() + " credentials: reading another host's secrets in " + g.String() + " is refused by the server", subscribeRefused(h1, otherAnswer)},
				probe{held.String() + " credentials: forging another host's secret answer in " + g.String() + " is refused by the server", publishRefused(h1, log1, otherAnswer)},
			)
		}
		// An agent must not forge the verifier's answers to itself either
		// (a renewal answer names the credentials it holds next).
		ownIssued, _ := bus.GrammarTwoPrefixes.IssuedSubject("H1")
		probes = append(probes,
			probe{held.String() + " credentials: publishing its own renewal answer is refused by the server", publishRefused(h1, log1, ownIssued)},
			probe{held.String() + " credentials: subscribing to every agent's requests is refused by the server", subscribeRefused(h1, bus.AllAgentRequests)},
			probe{held.String() + " credentials: subscribing to every renewal is refused by the server", subscribeRefused(h1, bus.AllRenewalsTwoPrefixes)})
		runProbes(t, probes)
	}
}

// TestAgentsRenewIntoTheGrammarTheyAskFor: an agent renews in the grammar
// of the credentials it holds, and gets credentials of the grammar it asks
// for; an agent from before the grammar, which asks for none, keeps the
// split grammar it knows.
func TestAgentsRenewIntoTheGrammarTheyAskFor(t *testing.T) {
	b := newTestBus(t)
	startRenewer(t, b.srv, b.auth, newFakeHosts("H1"), time.Hour)
	for _, tt := range []struct {
		name       string
		held       bus.AgentGrammar
		on         bus.AgentGrammar // the subjects the renewal uses
		asked      bus.AgentGrammar // RenewRequest.Grammar
		want       bus.AgentGrammar
		bySubjects bool // renew by hand, as an older agent does
	}{
		{"an agent holding split credentials moves to two prefixes", bus.GrammarSplit, bus.GrammarSplit, bus.GrammarTwoPrefixes, bus.GrammarTwoPrefixes, false},
		{"an agent holding two prefixes keeps them", bus.GrammarTwoPrefixes, bus.GrammarTwoPrefixes, bus.GrammarTwoPrefixes, bus.GrammarTwoPrefixes, false},
		{"an agent from before the grammar keeps the split grammar", bus.GrammarSplit, bus.GrammarSplit, 0, bus.GrammarSplit, true},
		{"an agent asking for a grammar newer than any gets the newest", bus.GrammarSplit, bus.GrammarSplit, 9, bus.GrammarTwoPrefixes, true},
		{"a renewal on two prefixes gets two prefixes whatever it asks", bus.GrammarSplit, bus.GrammarTwoPrefixes, 0, bus.GrammarTwoPrefixes, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := mustCreds(t)(b.auth.AgentCredentials("H1", tt.held, time.Hour))
			current, err := bus.ParseCredentials(raw)
			if err != nil {
				t.Fatal(err)
			}
			if current.AgentGrammar() != tt.held {
				t.Fatalf("issued credentials of grammar %v, want %v", current.AgentGrammar(), tt.held)
			}
			nc, _ := b.dial(t, raw, "agent-H1")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var fresh *bus.Credentials
			if tt.bySubjects {
				fresh = renewBy(t, ctx, nc, tt.on, tt.asked)
			} else if fresh, err = bus.RenewCredentials(ctx, natsbus.Adapt(nc), "H1", current); err != nil {
				t.Fatal(err)
			}
			if got := fresh.AgentGrammar(); got != tt.want {
				t.Fatalf("renewed into %v, want %v", got, tt.want)
			}
			// The fresh credentials work, in their grammar.
			fnc, flog := b.dial(t, fresh.Bytes(), "agent-H1-renewed")
			if tt.want == bus.GrammarTwoPrefixes {
				split, _ := bus.GrammarSplit.RenewSubject("H1")
				runProbes(t, []probe{{"the split renewal subject is no longer allowed", publishRefused(fnc, flog, split)}})
			}
			if again := renewBy(t, ctx, fnc, tt.want, bus.GrammarTwoPrefixes); again.AgentGrammar() != bus.GrammarTwoPrefixes {
				t.Fatalf("renewed again into %v", again.AgentGrammar())
			}
		})
	}
}

// renewBy renews the credentials of H1 over nc by hand: on the subjects of
// on, asking for asked, and waits for the answer.
func renewBy(t *testing.T, ctx context.Context, nc *nats.Conn, on, asked bus.AgentGrammar) *bus.Credentials {
	t.Helper()
	renew, _ := on.RenewSubject("H1")
	issued, _ := on.IssuedSubject("H1")
	answers, err := nc.SubscribeSync(issued)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = answers.Unsubscribe() }()
	body, _ := json.Marshal(bus.RenewRequest{Nonce: "n-" + on.String(), Grammar: asked})
	if err := nc.Publish(renew, body); err != nil {
		t.Fatal(err)
	}
	m, err := answers.NextMsgWithContext(ctx)
	if err != nil {
		t.Fatalf("no answer on %s: %v", issued, err)
	}
	var reply bus.RenewReply
	if err := json.Unmarshal(m.Data, &reply); err != nil || reply.Error != "" || reply.Nonce != "n-"+on.String() {
		t.Fatalf("answer %s: %v", m.Data, err)
	}
	fresh, err := bus.ParseCredentials([]byte(reply.Credentials))
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

// waitDisconnected waits until nc is disconnected and returns how long it took.
func waitDisconnected(t *testing.T, nc *nats.Conn, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for nc.IsConnected() {
		if time.Since(start) > timeout {
			t.Fatalf("still connected after %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestRemovedHostIsCutOff(t *testing.T) {
	tests := []struct {
		name   string
		remove func(r *Renewer, hosts *fakeHosts)
	}{
		{"deleting a host closes its agent's connection within 2 s", func(r *Renewer, hosts *fakeHosts) {
			hosts.remove("H1")
			r.HostRemoved("H1")
		}},
		{"a host deleted while the verifier did not know its key is cut off by the reconciliation", func(r *Renewer, hosts *fakeHosts) {
			r.Reconcile(context.Background()) // the periodic round that saw it registered
			hosts.remove("H1")
			r.Reconcile(context.Background())
		}},
		{"a host disabled while the verifier did not know its key is cut off by the reconciliation", func(r *Renewer, hosts *fakeHosts) {
			hosts.set("H1", false)
			r.Reconcile(context.Background())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBus(t)
			hosts := newFakeHosts("H1", "H2")
			r := startRenewer(t, b.srv, b.auth, hosts, time.Hour)

			// In the reconciliation case the key was issued by another
			// authority object (a verifier before its restart) with the
			// same account: the ledger of auth knows nothing of it.
			issuer := *b.auth
			issuer.ledger = newMemLedger()
			creds1 := mustCreds(t)(issuer.AgentCredentials("H1", bus.GrammarSplit, time.Hour))
			h1, _ := b.dial(t, creds1, "agent-H1")
			echoAgent(t, h1, "H1")
			h2, _ := b.agent(t, "H2")
			echoAgent(t, h2, "H2")

			tt.remove(r, hosts)
			removed := time.Now()
			took := waitDisconnected(t, h1, 2*time.Second-time.Since(removed))
			t.Logf("cut off after %s", took)
			time.Sleep(500 * time.Millisecond) // the client's reconnect attempts
			if h1.IsConnected() {
				t.Fatal("the removed host's agent reconnected")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if nc, err := natsbus.Connect(ctx, b.srv.ClientURL(), creds1, b.ca.pool, "agent-H1-again", discardLogger()); err == nil {
				nc.Close()
				t.Fatal("the removed host's credentials connect again")
			}
			if !h2.IsConnected() {
				t.Fatal("the other host's agent was cut off too")
			}
			svc, err := ConnectInProcess(b.srv, mustCreds(t)(b.auth.ServiceCredentials("hvs", time.Hour)), "hvs2", discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			if _, err := svc.Request("trust-agent.H2.version-request", []byte("x"), 2*time.Second); err != nil {
				t.Fatalf("the other host's agent does not answer: %v", err)
			}
		})
	}
}

func TestRenewReplyGoesOnlyToTheHostsIssuedSubject(t *testing.T) {
	b := newTestBus(t)
	startRenewer(t, b.srv, b.auth, newFakeHosts("H1", "H2"), time.Hour)
	h1, _ := b.agent(t, "H1")
	h2, _ := b.agent(t, "H2")
	issued2, _ := bus.GrammarSplit.IssuedSubject("H2")
	sub2 := subscribed(t, h2, issued2)
	// H1 names H2's answer subject as its reply subject: the verifier
	// answers on H1's own subject anyway.
	renew1, _ := bus.GrammarSplit.RenewSubject("H1")
	body, _ := json.Marshal(bus.RenewRequest{Nonce: "n1"})
	if err := h1.PublishRequest(renew1, issued2, body); err != nil {
		t.Fatal(err)
	}
	_ = h1.Flush()
	if m, err := sub2.NextMsg(time.Second); err == nil {
		t.Fatalf("H2 received an answer meant for H1: %d bytes", len(m.Data))
	}
}

// An operator issues a node's credentials before the manager registers its
// host (docs/install.md), so the agent is connected while its host is not
// registered yet. The periodic reconciliation used to revoke it then, for
// good: the node could never be attested with those credentials. It must
// stay connected until its host is registered, and be cut off once the
// registered host is deleted.
func TestAnAgentWhoseHostIsNotRegisteredYetIsNotCutOff(t *testing.T) {
	b := newTestBus(t)
	hosts := newFakeHosts()
	r := startRenewer(t, b.srv, b.auth, hosts, time.Hour)
	h1, _ := b.agent(t, "H1")
	echoAgent(t, h1, "H1")

	for range 2 {
		r.Reconcile(context.Background())
	}
	time.Sleep(300 * time.Millisecond)
	if !h1.IsConnected() {
		t.Fatal("the agent of a host not registered yet was cut off by the reconciliation")
	}
	hosts.set("H1", true)
	r.Reconcile(context.Background())
	hosts.remove("H1")
	r.Reconcile(context.Background())
	took := waitDisconnected(t, h1, 2*time.Second)
	t.Logf("cut off %s after its registered host was deleted", took)
}

// The reconciliation asked the hosts of every connected agent one at a
// time: at 10,000 agents, 20,000 statements each minute in one burst. It
// now reads them once a round, and decides the same: the disabled host's
// agent is cut off, the others stay.
func TestTheReconciliationReadsTheHostsOnceARound(t *testing.T) {
	b := newTestBus(t)
	const agents = 12
	ids := make([]string, agents)
	conns := make([]*nats.Conn, agents)
	for i := range ids {
		ids[i] = fmt.Sprintf("H%02d", i)
	}
	hosts := newFakeHosts(ids...)
	r := startRenewer(t, b.srv, b.auth, hosts, time.Hour)
	for i, id := range ids {
		conns[i], _ = b.agent(t, id)
		echoAgent(t, conns[i], id)
	}
	hosts.set(ids[3], false)
	hosts.mu.Lock()
	hosts.asks, hosts.lists = 0, 0
	hosts.mu.Unlock()
	r.Reconcile(context.Background())
	hosts.mu.Lock()
	asks, lists := hosts.asks, hosts.lists
	hosts.mu.Unlock()
	if asks != 0 || lists != 1 {
		t.Fatalf("one round over %d agents asked HostAllowed %d times and HostsAllowed %d; want 0 and 1", agents, asks, lists)
	}
	waitDisconnected(t, conns[3], 2*time.Second)
	for i, nc := range conns {
		if i != 3 && !nc.IsConnected() {
			t.Fatalf("the agent of allowed host %s was cut off", ids[i])
		}
	}
}

// A round that cannot read the hosts revokes nothing.
func TestTheReconciliationRevokesNothingWhenTheHostsCannotBeRead(t *testing.T) {
	b := newTestBus(t)
	hosts := newFakeHosts("H1")
	r := startRenewer(t, b.srv, b.auth, hosts, time.Hour)
	h1, _ := b.agent(t, "H1")
	echoAgent(t, h1, "H1")
	r.Reconcile(context.Background())
	hosts.mu.Lock()
	hosts.hosts, hosts.err = map[string]bool{}, errors.New("database is down")
	hosts.mu.Unlock()
	r.Reconcile(context.Background())
	time.Sleep(300 * time.Millisecond)
	if !h1.IsConnected() {
		t.Fatal("a round that could not read the hosts cut off an agent")
	}
}

func TestManagerRenewsItsCredentialsAndKeepsReceivingReports(t *testing.T) {
	const lifetime = 3 * time.Second
	b := newTestBus(t)
	startRenewer(t, b.srv, b.auth, newFakeHosts("H1"), lifetime)
	creds, err := bus.ParseCredentials(mustCreds(t)(b.auth.ManagerCredentials("am", lifetime)))
	if err != nil {
		t.Fatal(err)
	}
	firstExpiry := creds.Expires()

	var mu sync.Mutex
	got := map[int]bool{}
	dial := func(ctx context.Context, c *bus.Credentials) (*nats.Conn, error) {
		return natsbus.Connect(ctx, b.srv.ClientURL(), c.Bytes(), b.ca.pool, "attestation-manager", discardLogger())
	}
	subscribe := func(nc *nats.Conn) ([]*nats.Subscription, error) {
		sub, err := nc.Subscribe(bus.AllReports, func(m *nats.Msg) {
			n, err := strconv.Atoi(string(m.Data))
			if err != nil {
				return
			}
			mu.Lock()
			got[n] = true
			mu.Unlock()
		})
		if err != nil {
			return nil, err
		}
		return []*nats.Subscription{sub}, nc.Flush()
	}
	renewals := make(chan *bus.Credentials, 16)
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc, err := natsbus.DialManager(ctx, creds, dial, subscribe, func(c *bus.Credentials) { renewals <- c }, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mc.Run(ctx) }()

	svc, err := ConnectInProcess(b.srv, mustCreds(t)(b.auth.ServiceCredentials("hvs", time.Hour)), "hvs-reports", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	stopPub := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPub:
				_ = svc.Flush()
				return
			case <-tick.C:
			}
			if err := svc.Publish("trust-reports.H1", []byte(strconv.Itoa(n))); err == nil {
				n++
			}
		}
	}()

	var last *bus.Credentials
	for i := range 3 {
		select {
		case last = <-renewals:
		case <-time.After(2 * lifetime):
			t.Fatalf("renewal %d did not happen; log:\n%s", i+1, rec.text())
		}
	}
	if !last.Expires().After(firstExpiry) {
		t.Fatalf("the last renewed credentials expire at %s, not after the first ones (%s)", last.Expires(), firstExpiry)
	}
	if !time.Now().After(firstExpiry) {
		t.Fatalf("3 renewals before the first credentials expired (%s): renewing too early", firstExpiry)
	}
	if !mc.IsConnected() {
		t.Fatal("the manager is not connected after 3 renewals")
	}
	close(stopPub)
	n := <-published
	if n < 100 {
		t.Fatalf("only %d reports published", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		var missing []int
		for i := range n {
			if !got[i] {
				missing = append(missing, i)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d reports published during the renewals were not received, first %d", len(missing), n, missing[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d reports received through 3 renewals", n)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestManagerCannotRenewOrReadCredentialsOfAnotherManager(t *testing.T) {
	b := newTestBus(t)
	startRenewer(t, b.srv, b.auth, newFakeHosts("H1"), time.Hour)
	am, log := b.manager(t, "am")

	otherRenew, _ := bus.ManagerRenewSubject("other")
	otherIssued, _ := bus.ManagerIssuedSubject("other")
	agentRenew, _ := bus.GrammarSplit.RenewSubject("H1")
	agentRenew2, _ := bus.GrammarTwoPrefixes.RenewSubject("H1")
	runProbes(t, []probe{
		{"a manager asking on another manager's renewal subject is refused by the server", publishRefused(am, log, otherRenew)},
		{"a manager asking on an agent's renewal subject is refused by the server", publishRefused(am, log, agentRenew)},
		{"a manager asking on an agent's renewal subject with two prefixes is refused by the server", publishRefused(am, log, agentRenew2)},
		{"a manager subscribing to another manager's answers is refused by the server", subscribeRefused(am, otherIssued)},
		{"a manager subscribing to every manager's answers is refused by the server", subscribeRefused(am, bus.AllManagerIssued)},
	})

	t.Run("a manager's own renewal yields credentials of that manager only", func(t *testing.T) {
		current, err := bus.ParseCredentials(mustCreds(t)(b.auth.ManagerCredentials("am", time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fresh, err := bus.RenewManagerCredentials(ctx, natsbus.Adapt(am), current)
		if err != nil {
			t.Fatal(err)
		}
		if fresh.Name() != "manager:am" {
			t.Fatalf("renewed credentials of %q, want manager:am", fresh.Name())
		}
	})
}
