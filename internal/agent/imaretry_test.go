package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/evidence"
)

// growingIMA is a Measurer whose IMA log grows once: one entry when the
// agent starts, two from then on.
type growingIMA struct {
	Measurer
	n atomic.Int64
}

func (g *growingIMA) IMAEntryCount() (int, error) { return int(min(g.n.Add(1), 2)), nil }
func (g *growingIMA) HostInfo(context.Context) (evidence.HostInfo, error) {
	return evidence.HostInfo{}, nil
}

// flakyBus refuses the first publishes, as a connection that is reconnecting
// does, then takes them.
type flakyBus struct {
	mu       sync.Mutex
	refuse   int
	subjects []string
}

func (f *flakyBus) Publish(subject string, _ []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse > 0 {
		f.refuse--
		return errors.New("nats: not connected")
	}
	f.subjects = append(f.subjects, subject)
	return nil
}

func TestAnIMAEventRefusedWhileReconnectingIsSentLater(t *testing.T) {
	a, err := New(Config{HostID: "edge-1", IMAPollInterval: 10 * time.Millisecond, IMADebounce: 20 * time.Millisecond},
		fakeTPM{}, &growingIMA{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := &flakyBus{refuse: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.watchIMA(ctx, b) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		sent := len(b.subjects)
		b.mu.Unlock()
		if sent > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no IMA event after the connection came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
