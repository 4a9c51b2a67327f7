package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/tpm"
)

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

// fakeBus hands the keeper's requests to answer and delivers its answers.
type fakeBus struct {
	mu       sync.Mutex
	deliver  func(*bus.Msg)
	requests int
	answer   func(n int) *bus.SecretAnswer // nil: no answer
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

func (f *fakeBus) Publish(_ string, _ []byte) error {
	f.mu.Lock()
	f.requests++
	n, cb, answer := f.requests, f.deliver, f.answer
	f.mu.Unlock()
	if ans := answer(n); ans != nil {
		b, _ := json.Marshal(ans)
		go cb(&bus.Msg{Data: b})
	}
	return nil
}

func released(t *testing.T, tpmName, hostID, name string, version int64, value string, lease time.Duration) bus.SealedSecret {
	t.Helper()
	s := bus.SealedSecret{Name: name, SecretID: "id-" + name, Version: version, ExpiresAt: time.Now().Add(lease), Duplicate: []byte(tpmName)}
	if err := bus.EncryptValue(&s, bytes.Repeat([]byte{7}, bus.SecretKeySize), hostID, []byte(value)); err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeeper(t *testing.T, cfg agent.SecretsConfig) *agent.Secrets {
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

func run(t *testing.T, s *agent.Secrets, b *fakeBus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err := s.Attach(ctx, b); err != nil {
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
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Dir: dir, Retry: time.Hour})
	b := &fakeBus{answer: func(int) *bus.SecretAnswer {
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
	b.mu.Lock()
	deliver := b.deliver
	b.mu.Unlock()
	msg, _ := json.Marshal(bus.SecretAnswer{Refused: []bus.SecretRefusal{{Name: "volume-key", Reason: bus.ReasonRevoked}}})
	deliver(&bus.Msg{Data: msg})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the secret file survived the revocation: %v", err)
	}
	if _, ok := s.Get("volume-key"); ok {
		t.Error("the revoked secret is still held")
	}
}

func TestASecretIsDroppedWhenItsLeaseEndsWithoutARenewal(t *testing.T) {
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"volume-key"}, Retry: time.Hour})
	b := &fakeBus{answer: func(n int) *bus.SecretAnswer {
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
	s := newKeeper(t, agent.SecretsConfig{Names: []string{"a", "b"}, Retry: time.Hour})
	b := &fakeBus{answer: func(int) *bus.SecretAnswer {
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
