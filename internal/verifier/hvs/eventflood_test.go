package hvs

import (
	"context"
	"errors"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/eventually"
	"trustedcompute.io/tc/internal/verifier/agentclient/agentclienttest"
)

// A node with root (or a thief of its bus credentials) publishes its event
// subjects as fast as the bus carries them. Each event used to queue a
// report of its own: one node kept the workers and the store's writer busy
// and wrote a report a millisecond. Its events now fold into one report a
// turn, and the last of them still gets one.
func TestANodeFloodingItsEventsGetsOneReportATurn(t *testing.T) {
	const interval = 300 * time.Millisecond
	b := agentclienttest.NewBus(t)
	attacker, honest := newNode(t, "edge-flood"), newNode(t, "edge-honest")
	e := newEnv(t, []*node{attacker, honest}, func(cfg *Config, d *Deps) {
		d.NATS = b.ServiceConn(t)
		cfg.EventInterval = interval
	})
	e.baseline(t, attacker)
	e.baseline(t, honest)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("hvs: %v", err)
		}
	})
	reports := func(n *node) int { return len(e.pub.published("trust-reports." + n.id)) }

	// The honest node's event is reported once HVS has subscribed.
	hc := b.AgentConn(t, honest.id)
	hsubj, err := bus.EventSubject(honest.id, bus.IMAEvent)
	if err != nil {
		t.Fatal(err)
	}
	publishUntil(t, hc, hsubj, func() bool { return reports(honest) > 0 })

	// The flood: one second of events, as fast as the bus takes them.
	ac := b.AgentConn(t, attacker.id)
	asubj, err := bus.EventSubject(attacker.id, bus.IMAEvent)
	if err != nil {
		t.Fatal(err)
	}
	const flood = time.Second
	sent := 0
	var honestSent, honestSeen time.Time
	honestBefore, before := reports(honest), reports(attacker)
	floodStart := time.Now()
	for start := time.Now(); time.Since(start) < flood; sent++ {
		if err := ac.Publish(asubj, nil); err != nil {
			t.Fatal(err)
		}
		if honestSent.IsZero() && time.Since(start) > flood/2 {
			honestSent = time.Now()
			if err := hc.Publish(hsubj, nil); err != nil {
				t.Fatal(err)
			}
		}
		if !honestSent.IsZero() && honestSeen.IsZero() && sent%256 == 0 && reports(honest) > honestBefore {
			honestSeen = time.Now()
		}
	}
	if err := ac.Flush(); err != nil {
		t.Fatal(err)
	}
	atEnd := reports(attacker)
	// The events still folded at the flood's end are reported at the
	// attacker's next turn.
	eventually.True(t, 10*time.Second, "a report of the events folded at the end of the flood", func() bool { return reports(attacker) > atEnd })
	time.Sleep(3 * interval)
	// A burst, then one a turn since the flood began (the events may reach
	// HVS later than they were sent, never earlier).
	want := EventBurst + int(time.Since(floodStart)/interval) + 1
	got := reports(attacker) - before
	t.Logf("%d events in %s made %d reports (at most %d); %d events folded", sent, flood, got, want, e.svc.EventsFolded())
	if got > want {
		t.Errorf("%d events in %s made %d reports of the flooding node, want at most %d (one a %s turn)", sent, flood, got, want, interval)
	}
	if honestSeen.IsZero() {
		eventually.True(t, 10*time.Second, "the honest node's report", func() bool { return reports(honest) > honestBefore })
		honestSeen = time.Now()
	}
	if took := honestSeen.Sub(honestSent); took > 3*time.Second {
		t.Errorf("the honest node's event during the flood was reported after %s, want within 3s", took)
	}
}

// publishUntil publishes an empty message on subject every 50 ms until
// done.
func publishUntil(t *testing.T, nc interface{ Publish(string, []byte) error }, subject string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("nothing came of the events on %s", subject)
		}
		if err := nc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
