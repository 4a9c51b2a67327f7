package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/tpm"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
	"trustedcompute.io/tc/internal/verifier/report"
)

// revocation is what the verifier pushes when the host's report turns
// untrusted.
var revocation = bus.SecretAnswer{Refused: []bus.SecretRefusal{{Name: "volume-key", Reason: bus.ReasonRevoked}}}

// fakeKeyTPM unwraps the blobs made for it: their duplicate is its name.
// (The real import is played on swtpm in package keybroker.)
type fakeKeyTPM struct {
	name string
	key  []byte
}

func (f fakeKeyTPM) Import(b tpm.ImportBlob) ([]byte, error) {
	if string(b.Duplicate) != f.name {
		return nil, errors.New("integrity check failed: not this TPM's blob")
	}
	return bytes.Clone(f.key), nil
}

// fakeBus hands the keeper's requests to answer and delivers its answers,
// made into a message by msg (default: signed by the broker).
type fakeBus struct {
	mu       sync.Mutex
	deliver  func(*bus.Msg)
	requests int
	answer   func(n int) *bus.SecretAnswer // nil: no answer
	broker   *broker
	msg      func(nonce []byte, ans bus.SecretAnswer) []byte
	// sent are the messages delivered, in order.
	sent [][]byte
}

func (f *fakeBus) Subscribe(_ string, cb func(*bus.Msg)) (bus.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliver = cb
	return fakeSub{}, nil
}

type fakeSub struct{}

func (fakeSub) Unsubscribe() error { return nil }
func (fakeSub) Drain() error       { return nil }

func (f *fakeBus) Publish(_ string, data []byte) error {
	var req bus.SecretRequest
	if err := json.Unmarshal(data, &req); err != nil || len(req.Nonce) != bus.SecretNonceSize {
		return fmt.Errorf("request %s: want names and a %d-byte nonce", data, bus.SecretNonceSize)
	}
	f.mu.Lock()
	f.requests++
	n, cb, answer, msg := f.requests, f.deliver, f.answer, f.msg
	if msg == nil {
		msg = f.broker.message
	}
	f.mu.Unlock()
	if ans := answer(n); ans != nil {
		b := msg(req.Nonce, *ans)
		f.mu.Lock()
		f.sent = append(f.sent, b)
		f.mu.Unlock()
		go cb(&bus.Msg{Data: b})
	}
	return nil
}

// push delivers a message as if the verifier had pushed it.
func (f *fakeBus) push(msg []byte) {
	f.mu.Lock()
	deliver := f.deliver
	f.mu.Unlock()
	deliver(&bus.Msg{Data: msg})
}

// broker signs answers as the verifier's key broker does, for host, with
// the issue time issued (zero: now).
type broker struct {
	ca     *cms.CA
	signer *report.Signer
	host   string
	issued time.Time
}

// newBroker makes a CMS and the verifier's signing identity under it.
func newBroker(t testing.TB) *broker {
	t.Helper()
	ca := cmstest.NewCA(t, time.Now())
	signer, err := report.NewSigner(cmstest.VerifierSigning(t, ca, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &broker{ca: ca, signer: signer, host: "edge-1"}
}

// message is ans signed with nonce, as the key broker publishes it.
func (b *broker) message(nonce []byte, ans bus.SecretAnswer) []byte {
	issued := b.issued
	if issued.IsZero() {
		issued = time.Now()
	}
	payload, err := json.Marshal(bus.SignedSecretAnswer{HostID: b.host, Nonce: nonce, IssuedAt: issued, Released: ans.Released, Refused: ans.Refused})
	if err != nil {
		panic(err)
	}
	if ans.Signed, err = b.signer.SignSecretAnswer(payload); err != nil {
		panic(err)
	}
	msg, err := json.Marshal(ans)
	if err != nil {
		panic(err)
	}
	return msg
}

func unsigned(_ []byte, ans bus.SecretAnswer) []byte {
	msg, _ := json.Marshal(ans)
	return msg
}

func released(t testing.TB, tpmName, hostID, name string, version int64, value string, lease time.Duration) bus.SealedSecret {
	t.Helper()
	s := bus.SealedSecret{Name: name, SecretID: "id-" + name, Version: version, ExpiresAt: time.Now().Add(lease), Duplicate: []byte(tpmName)}
	if err := bus.EncryptValue(&s, bytes.Repeat([]byte{7}, bus.SecretKeySize), hostID, []byte(value)); err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeeper(t testing.TB, cfg agent.SecretsConfig) *agent.Secrets {
	t.Helper()
	a, err := agent.New(agent.Config{HostID: "edge-1"}, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.NewSecrets(cfg, fakeKeyTPM{name: "tpm-1", key: bytes.Repeat([]byte{7}, bus.SecretKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t testing.TB, s *agent.Secrets, b *fakeBus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err := s.Attach(ctx, b, bus.GrammarTwoPrefixes); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "tc-secrets-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	a, _ := agent.New(agent.Config{HostID: "edge-1"}, nil, nil, slog.New(slog.DiscardHandler))
	if _, err := a.NewSecrets(agent.SecretsConfig{Dir: dir}, fakeKeyTPM{}); errors.Is(err, agent.ErrNotTmpfs) {
		t.Skip("/dev/shm is not a tmpfs here")
	}
	return dir
}

func TestASecretsDirectoryMustBeOnATmpfs(t *testing.T) {
	a, err := agent.New(agent.Config{HostID: "edge-1"}, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.NewSecrets(agent.SecretsConfig{Dir: "/var/tmp"}, fakeKeyTPM{}); err == nil {
		t.Skip("/var/tmp is a tmpfs here: no directory on disk to refuse")
	} else if !errors.Is(err, agent.ErrNotTmpfs) {
		t.Fatalf("a directory on disk (/var/tmp): %v, want ErrNotTmpfs", err)
	}
	if _, err := a.NewSecrets(agent.SecretsConfig{Dir: tmpfsDir(t)}, fakeKeyTPM{}); err != nil {
		t.Fatalf("a tmpfs directory: %v", err)
	}
}

func TestAReleasedSecretLivesOnTheTmpfsUntilRevoked(t *testing.T) {
	dir := tmpfsDir(t)
	br := newBroker(t)
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Dir: dir, Retry: time.Hour, Roots: br.ca.RootPool()})
	b := &fakeBus{broker: br, answer: func(int) *bus.SecretAnswer {
		return &bus.SecretAnswer{Released: []bus.SealedSecret{released(t, "tpm-1", "edge-1", "volume-key", 1, "v1", time.Hour)}}
	}}
	run(t, s, b)
	path := filepath.Join(dir, "volume-key")
	eventually(t, "the secret file is written", func() bool {
		got, err := os.ReadFile(path)
		return err == nil && string(got) == "v1"
	})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("secret file mode %v (%v), want 0400", fi.Mode(), err)
	}
	// The verifier pushes a revocation: the host's report turned untrusted.
	time.Sleep(time.Millisecond) // issued after the release
	b.push(br.message(nil, revocation))
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the secret file survived the revocation: %v", err)
	}
	if _, ok := s.Get("volume-key"); ok {
		t.Error("the revoked secret is still held")
	}
}

func TestASecretIsDroppedWhenItsLeaseEndsWithoutARenewal(t *testing.T) {
	br := newBroker(t)
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour, Roots: br.ca.RootPool()})
	b := &fakeBus{broker: br, answer: func(n int) *bus.SecretAnswer {
		if n > 1 { // the verifier is gone: renewals go unanswered
			return nil
		}
		return &bus.SecretAnswer{Released: []bus.SealedSecret{released(t, "tpm-1", "edge-1", "volume-key", 1, "v1", 1500*time.Millisecond)}}
	}}
	run(t, s, b)
	eventually(t, "the secret is held", func() bool { _, ok := s.Get("volume-key"); return ok })
	eventually(t, "the secret is dropped at the end of its lease", func() bool { _, ok := s.Get("volume-key"); return !ok })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.requests < 2 {
		t.Errorf("%d requests, want a renewal before the lease ended", b.requests)
	}
}

func TestABlobForAnotherTPMOrHostIsNotKept(t *testing.T) {
	br := newBroker(t)
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"a", "b"}, Retry: time.Hour, Roots: br.ca.RootPool()})
	b := &fakeBus{broker: br, answer: func(int) *bus.SecretAnswer {
		return &bus.SecretAnswer{Released: []bus.SealedSecret{
			released(t, "tpm-2", "edge-1", "a", 1, "for another tpm", time.Hour),
			released(t, "tpm-1", "edge-2", "b", 1, "for another host", time.Hour),
		}}
	}}
	run(t, s, b)
	time.Sleep(300 * time.Millisecond)
	for _, name := range []string{"a", "b"} {
		if v, ok := s.Get(name); ok {
			t.Errorf("secret %s kept: %q", name, v)
		}
	}
}
