// Package natsbus is the bus over nats.go, for the verifier, the attestation
// manager and the tests and simulators that run agents in process: Connect
// with the reconnect policy, the manager's self-renewing connection, and
// Adapt, which makes a nats.go connection a bus.Conn. The trust agent does
// not link it (it uses natsconn), so nats.go stays out of its binary.
package natsbus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
)

// Adapt makes a nats.go connection a bus.Conn, for the callers that run a
// trust agent (or a renewal) in process over nats.go.
func Adapt(nc *nats.Conn) bus.Conn { return conn{nc} }

type conn struct{ nc *nats.Conn }

func (c conn) Publish(subject string, data []byte) error { return c.nc.Publish(subject, data) }

func (c conn) Subscribe(subject string, h func(*bus.Msg)) (bus.Subscription, error) {
	return c.QueueSubscribe(subject, "", h)
}

func (c conn) QueueSubscribe(subject, queue string, h func(*bus.Msg)) (bus.Subscription, error) {
	s, err := c.nc.QueueSubscribe(subject, queue, func(m *nats.Msg) { h(&bus.Msg{Subject: m.Subject, Reply: m.Reply, Data: m.Data}) })
	if err != nil {
		return nil, err
	}
	return subscription{nc: c.nc, s: s}, nil
}

func (c conn) Request(ctx context.Context, subject string, data []byte) (*bus.Msg, error) {
	m, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, err
	}
	return &bus.Msg{Subject: m.Subject, Reply: m.Reply, Data: m.Data}, nil
}

func (c conn) Flush(ctx context.Context) error {
	return c.nc.FlushWithContext(ctx)
}

func (c conn) IsConnected() bool { return c.nc.IsConnected() }
func (c conn) Close()            { c.nc.Close() }

type subscription struct {
	nc *nats.Conn
	s  *nats.Subscription
}

func (s subscription) Unsubscribe() error { return s.s.Unsubscribe() }

// Drain lets the handler finish what the server sent already (for at most
// 10 s).
func (s subscription) Drain() error {
	if err := s.s.Drain(); err != nil {
		return s.s.Unsubscribe()
	}
	_ = s.nc.FlushTimeout(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for s.s.IsValid() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
