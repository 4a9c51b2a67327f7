package agent_test

import (
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Whoever may publish on trust-secrets.<host>.answer (a holder of HVS
// service bus credentials, an external NATS cluster's operators) must not
// plant a value on the node, nor make it drop its secrets: the agent takes
// only answers the verifier signed for this host and for one of its
// outstanding requests, and pushed revocations only when signed recently.

// otherSigner is a signer whose certificate the CMS issued under its
// Signing CA (as from a CSR an administrator had approved): not the
// verifier's signing identity.
func otherSigner(t testing.TB, br *broker) *report.Signer {
	t.Helper()
	s, err := report.NewSigner(cmstest.OtherSigning(t, br.ca, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAForgedReleaseIsNotKept(t *testing.T) {
	tests := []struct {
		name string
		// forge makes the attacker's message from the request's nonce and a
		// well-formed release to the node's EK.
		forge func(br *broker, nonce []byte, ans bus.SecretAnswer) []byte
	}{
		{"an unsigned well-formed release to the EK is not kept", func(_ *broker, nonce []byte, ans bus.SecretAnswer) []byte {
			return unsigned(nonce, ans)
		}},
		{"a release signed by a certificate that is not the verifier's signing identity is refused", func(br *broker, nonce []byte, ans bus.SecretAnswer) []byte {
			forged := *br
			forged.signer = otherSigner(t, br)
			return forged.message(nonce, ans)
		}},
		{"a release signed for another host is refused", func(br *broker, nonce []byte, ans bus.SecretAnswer) []byte {
			forged := *br
			forged.host = "edge-2"
			return forged.message(nonce, ans)
		}},
		{"a release signed for a nonce the agent never sent is refused", func(br *broker, _ []byte, ans bus.SecretAnswer) []byte {
			return br.message(make([]byte, bus.SecretNonceSize), ans)
		}},
		{"a release signed without a nonce is refused", func(br *broker, _ []byte, ans bus.SecretAnswer) []byte {
			return br.message(nil, ans)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := newBroker(t)
			s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour, Roots: br.ca.RootPool()})
			b := &fakeBus{broker: br, answer: func(int) *bus.SecretAnswer {
				return &bus.SecretAnswer{Released: []bus.SealedSecret{released(t, "tpm-1", "edge-1", "volume-key", 1, "planted", time.Hour)}}
			}, msg: func(nonce []byte, ans bus.SecretAnswer) []byte { return tt.forge(br, nonce, ans) }}
			run(t, s, b)
			eventually(t, "the forged answer is delivered", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.sent) > 0 })
			time.Sleep(200 * time.Millisecond)
			if v, ok := s.Get("volume-key"); ok {
				t.Fatalf("the forged release is kept: %q", v)
			}
		})
	}
}

func TestAReplayedReleaseIsRefused(t *testing.T) {
	br := newBroker(t)
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour, Roots: br.ca.RootPool()})
	b := &fakeBus{broker: br, answer: func(n int) *bus.SecretAnswer {
		if n > 1 {
			return nil
		}
		return &bus.SecretAnswer{Released: []bus.SealedSecret{released(t, "tpm-1", "edge-1", "volume-key", 1, "v1", time.Hour)}}
	}}
	run(t, s, b)
	eventually(t, "the secret is held", func() bool { _, ok := s.Get("volume-key"); return ok })
	time.Sleep(time.Millisecond)
	b.push(br.message(nil, revocation))
	if _, ok := s.Get("volume-key"); ok {
		t.Fatal("a signed revocation did not drop the secret")
	}
	// The attacker replays the verifier's signed release, whose nonce is
	// used up.
	b.mu.Lock()
	replay := b.sent[0]
	b.mu.Unlock()
	b.push(replay)
	if v, ok := s.Get("volume-key"); ok {
		t.Fatalf("the replayed release is kept: %q", v)
	}
}

// TestAReleaseHeldBackPastARevocationIsRefused plays an attacker on the bus
// who holds back the verifier's signed release (its nonce still
// outstanding) until the verifier has revoked the node's secrets, and then
// delivers it: the agent must not hold the secret again.
func TestAReleaseHeldBackPastARevocationIsRefused(t *testing.T) {
	br := newBroker(t)
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour, Roots: br.ca.RootPool()})
	heldBack := make(chan []byte, 1)
	b := &fakeBus{broker: br, answer: func(int) *bus.SecretAnswer {
		return &bus.SecretAnswer{Released: []bus.SealedSecret{released(t, "tpm-1", "edge-1", "volume-key", 1, "v1", time.Hour)}}
	}}
	b.msg = func(nonce []byte, ans bus.SecretAnswer) []byte {
		b.mu.Lock()
		first := b.requests == 1
		b.mu.Unlock()
		if !first {
			return br.message(nonce, ans)
		}
		heldBack <- br.message(nonce, ans)
		return []byte(`{}`) // what the agent gets instead: refused, unsigned
	}
	run(t, s, b)
	release := <-heldBack
	time.Sleep(time.Millisecond) // the revocation is issued after the release
	b.push(br.message(nil, revocation))
	b.push(release)
	if v, ok := s.Get("volume-key"); ok {
		t.Fatalf("the release held back past the revocation is kept: %q", v)
	}
	// A release issued after the revocation is taken.
	if err := s.Attach(t.Context(), b, bus.GrammarTwoPrefixes); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a release issued after the revocation is held", func() bool { _, ok := s.Get("volume-key"); return ok })
}

func TestAForgedRevocationLeavesTheSecretHeld(t *testing.T) {
	tests := []struct {
		name  string
		forge func(br *broker) []byte
	}{
		{"a forged unsigned revocation leaves the secret held", func(*broker) []byte {
			return unsigned(nil, revocation)
		}},
		{"a revocation signed by a certificate that is not the verifier's signing identity leaves the secret held", func(br *broker) []byte {
			forged := *br
			forged.signer = otherSigner(t, br)
			return forged.message(nil, revocation)
		}},
		{"a revocation signed for another host leaves the secret held", func(br *broker) []byte {
			forged := *br
			forged.host = "edge-2"
			return forged.message(nil, revocation)
		}},
		{"a revocation issued ten minutes ago leaves the secret held", func(br *broker) []byte {
			old := *br
			old.issued = time.Now().Add(-10 * time.Minute)
			return old.message(nil, revocation)
		}},
		{"a revocation issued before the release taken leaves the secret held", func(br *broker) []byte {
			old := *br
			old.issued = time.Now().Add(-time.Minute)
			return old.message(nil, revocation)
		}},
		{"a revocation signed for a nonce the agent never sent leaves the secret held", func(br *broker) []byte {
			return br.message(make([]byte, bus.SecretNonceSize), revocation)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := newBroker(t)
			s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour, Roots: br.ca.RootPool()})
			b := &fakeBus{broker: br, answer: func(n int) *bus.SecretAnswer {
				return &bus.SecretAnswer{Released: []bus.SealedSecret{released(t, "tpm-1", "edge-1", "volume-key", 1, "v1", time.Hour)}}
			}}
			run(t, s, b)
			eventually(t, "the secret is held", func() bool { _, ok := s.Get("volume-key"); return ok })
			time.Sleep(time.Millisecond)
			b.push(tt.forge(br))
			if v, ok := s.Get("volume-key"); !ok || string(v) != "v1" {
				t.Fatal("the forged revocation dropped the secret")
			}
		})
	}
}

// FuzzSecretAnswer feeds the keeper arbitrary answers: none is kept, as
// none is signed by the verifier for an outstanding request.
func FuzzSecretAnswer(f *testing.F) {
	br := newBroker(f)
	rel := released(f, "tpm-1", "edge-1", "volume-key", 1, "v1", time.Hour)
	f.Add(unsigned(nil, bus.SecretAnswer{Released: []bus.SealedSecret{rel}}))
	f.Add(br.message(make([]byte, bus.SecretNonceSize), bus.SecretAnswer{Released: []bus.SealedSecret{rel}}))
	f.Add(br.message(nil, revocation))
	f.Add([]byte(`{"signed":"a.b.c"}`))
	f.Add([]byte(`{"released":null,"signed":""}`))
	s := newKeeper(f, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour, Roots: br.ca.RootPool()})
	b := &fakeBus{broker: br, answer: func(int) *bus.SecretAnswer { return nil }}
	run(f, s, b)
	f.Fuzz(func(t *testing.T, data []byte) {
		b.push(data)
		if v, ok := s.Get("volume-key"); ok {
			t.Fatalf("a fuzzed answer is kept: %q", v)
		}
	})
}
