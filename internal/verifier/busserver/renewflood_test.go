package busserver

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
)

// A node with root floods its renewal subject. Each renewal used to mint a
// key and record it: thousands a second from one node, each a write to the
// store's one writer. Its renewals beyond the budget are now dropped before
// they are decoded, and another node still renews.
func TestANodeFloodingRenewalsGetsItsBudgetAndOthersStillRenew(t *testing.T) {
	b := newTestBus(t)
	r := startRenewerWith(t, b.srv, b.auth, newFakeHosts("H1", "H2"),
		RenewerConfig{TTL: time.Hour, ReconcileInterval: time.Hour, RenewalInterval: time.Minute})
	g := bus.GrammarTwoPrefixes
	nc, _ := b.dial(t, mustCreds(t)(b.auth.AgentCredentials("H1", g, time.Hour)), "agent-H1")
	renew, _ := g.RenewSubject("H1")
	issued, _ := g.IssuedSubject("H1")
	var answered atomic.Int64
	sub, err := nc.Subscribe(issued, func(*nats.Msg) { answered.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	const flood = 2000
	for i := range flood {
		body, _ := json.Marshal(bus.RenewRequest{Nonce: "n-" + strconv.Itoa(i), Grammar: g})
		if err := nc.Publish(renew, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Another node renews during the flood.
	raw := mustCreds(t)(b.auth.AgentCredentials("H2", g, time.Hour))
	current, err := bus.ParseCredentials(raw)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := b.dial(t, raw, "agent-H2")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := bus.RenewCredentials(ctx, natsbus.Adapt(other), "H2", current); err != nil {
		t.Fatalf("another node's renewal during the flood: %v", err)
	}

	// Every renewal of the flood has been read once the answers stop.
	deadline := time.Now().Add(10 * time.Second)
	for last := int64(-1); answered.Load() != last || r.RenewalsLimited()+uint64(answered.Load()) < flood; {
		if time.Now().After(deadline) {
			break
		}
		last = answered.Load()
		time.Sleep(200 * time.Millisecond)
	}
	if got := answered.Load(); got > DefaultRenewalBurst {
		t.Errorf("%d renewals of one node were answered (and minted), want at most its burst of %d", got, DefaultRenewalBurst)
	}
	if got := r.RenewalsLimited(); got < flood-DefaultRenewalBurst {
		t.Errorf("%d renewals counted as limited, want at least %d", got, flood-DefaultRenewalBurst)
	}
}
