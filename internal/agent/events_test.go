package agent_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/agent"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/measure"
	"trustedcompute.io/tc/internal/sandbox"
	"trustedcompute.io/tc/internal/tpm/tpmtest"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
)

// TestAgentRaisesBootAndIMAEvents runs an agent on a swtpm against the real
// embedded bus: it announces its boot with the TPM reset count, and one
// debounced IMA event follows a burst of new IMA entries.
func TestAgentRaisesBootAndIMAEvents(t *testing.T) {
	b := agentclienttest.NewBus(t)
	svc := b.ServiceConn(t)
	events, err := svc.SubscribeSync(bus.AllEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}

	nt, banks, root := agentclienttest.BootNode(t, tpmtest.New(t).Spec(), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a03", "edge-3", sandbox.BootLogSecureBootOn)
	a, err := agent.New(agent.Config{HostID: "edge-3", IMAPollInterval: 50 * time.Millisecond, IMADebounce: 300 * time.Millisecond}, nt, measure.New(root.Dir), discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, natsbus.Adapt(b.AgentConn(t, "edge-3"))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	}()

	next := func() (string, evidence.Event) {
		t.Helper()
		m, err := events.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no event: %v", err)
		}
		var ev evidence.Event
		if err := evidence.Decode(m.Data, &ev); err != nil {
			t.Fatalf("event %s does not decode: %v", m.Data, err)
		}
		return m.Subject, ev
	}
	rc, err := nt.ResetCount()
	if err != nil {
		t.Fatal(err)
	}
	subject, ev := next()
	if subject != "trust-events.edge-3.boot" || ev.Type != evidence.EventBoot || ev.ResetCount != rc {
		t.Fatalf("first event %s %+v, want the boot event with reset count %d", subject, ev, rc)
	}

	for i, f := range []string{"/usr/bin/a", "/usr/bin/b", "/usr/bin/c"} {
		if err := root.MeasureFiles(nt, banks, map[string]string{f: f}); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			time.Sleep(60 * time.Millisecond)
		}
	}
	subject, ev = next()
	if subject != "trust-events.edge-3.ima" || ev.IMAEntries != 3 {
		body, _ := json.Marshal(ev)
		t.Fatalf("second event %s %s, want one ima event with 3 entries", subject, body)
	}
	if m, err := events.NextMsg(700 * time.Millisecond); err == nil {
		t.Fatalf("a burst of IMA entries raised a second event: %s %s", m.Subject, m.Data)
	}
}

// TestTheAgentTakesNoAnswerForARequest: with two prefixes the answers to
// an agent's renewals and secret requests come under its requests
// (trust-agent.<host-id>.issued, .secret-answer); the request subscription
// passes over them without a word, and answers nothing.
func TestTheAgentTakesNoAnswerForARequest(t *testing.T) {
	b := agentclienttest.NewBus(t)
	rec := &warnings{}
	nt, _, root := agentclienttest.BootNode(t, tpmtest.New(t).Spec(), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a0a", "edge-10", sandbox.BootLogSecureBootOn)
	a, err := agent.New(agent.Config{HostID: "edge-10"}, nt, measure.New(root.Dir), slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, natsbus.Adapt(b.AgentConn(t, "edge-10"))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	}()
	svc := b.ServiceConn(t)
	waitAnswers(t, agentclient.New(svc, 10*time.Second), "edge-10")
	issued, _ := bus.GrammarTwoPrefixes.IssuedSubject("edge-10")
	answer, _ := bus.GrammarTwoPrefixes.SecretAnswerSubject("edge-10")
	unknown := "trust-agent.edge-10.reboot"
	for _, subject := range []string{issued, answer, unknown} {
		reply, err := svc.Request(subject, []byte(`{"nonce":"n"}`), 300*time.Millisecond)
		if err == nil {
			t.Errorf("the agent answered %s: %s", subject, reply.Data)
		}
	}
	// The unknown request is warned of: the log is read.
	deadline := time.Now().Add(5 * time.Second)
	for !rec.has("trust-agent.edge-10.reboot") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := rec.all(); len(got) != 1 || !strings.Contains(got[0], "reboot") {
		t.Errorf("warnings %q, want one, of the unknown request only", got)
	}
}

// warnings records the messages and errors of warnings and errors.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.Key + "=" + a.Value.String(); return true })
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

func (w *warnings) has(s string) bool {
	return slices.ContainsFunc(w.all(), func(m string) bool { return strings.Contains(m, s) })
}
