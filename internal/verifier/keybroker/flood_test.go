package keybroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
	"trustedcompute.io/tc/internal/verifier/keybroker"
)

// A node with root floods its secret request subject over the real bus.
// Each request used to be decided (store reads, an audit line) while the
// broker's few slots lasted, and the other nodes' requests were dropped
// while they were full. The flood's requests beyond its budget are now
// dropped before they are decoded, and another node's request is answered.
func TestANodeFloodingSecretRequestsGetsItsBudgetAndOthersAreAnswered(t *testing.T) {
	e := newEnv(t)
	b := agentclienttest.NewBus(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.broker.Serve(ctx, b.ServiceConn(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("key broker: %v", err)
		}
	})
	g := bus.GrammarTwoPrefixes
	request := func(names ...string) []byte {
		body, _ := json.Marshal(bus.SecretRequest{Names: names, Nonce: make([]byte, bus.SecretNonceSize)})
		return body
	}

	// The other node's request is answered once the broker has subscribed.
	other := b.AgentConn(t, "edge-other")
	otherAsk, _ := g.SecretRequestSubject("edge-other")
	otherAnswer, _ := g.SecretAnswerSubject("edge-other")
	answers, err := other.SubscribeSync(otherAnswer)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Flush(); err != nil {
		t.Fatal(err)
	}
	for answered := false; !answered; {
		if err := other.Publish(otherAsk, request("volume-key")); err != nil {
			t.Fatal(err)
		}
		_, err := answers.NextMsg(500 * time.Millisecond)
		answered = err == nil
	}
	decided := len(e.decisionsNow())

	// The flood, and the other node's request in the middle of it.
	attacker := b.AgentConn(t, "edge-flood")
	floodAsk, _ := g.SecretRequestSubject("edge-flood")
	const flood = 3000
	for i := range flood {
		if err := attacker.Publish(floodAsk, request("volume-key")); err != nil {
			t.Fatal(err)
		}
		if i == flood/2 {
			if err := other.Publish(otherAsk, request("volume-key")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := attacker.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := answers.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the other node's request during the flood was not answered: %v", err)
	}
	// Every request of the flood has been read once the limiter counted it
	// or a decision was made of it.
	deadline := time.Now().Add(10 * time.Second)
	for e.broker.RequestsLimited()+uint64(len(e.decisionsNow())-decided) < flood+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// One decision a request: the other node's, and the flood's burst.
	if got, want := len(e.decisionsNow())-decided, 1+keybroker.DefaultRequestBurst+1; got > want {
		t.Errorf("%d requests of the flood and the other node were decided, want at most %d (the flooding node's burst, a turn, and the other's)", got, want)
	}
}

// decisionsNow is a copy of the decisions observed so far.
func (e *env) decisionsNow() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.decisions...)
}
