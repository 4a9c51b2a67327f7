package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
)

// Dialer connects to the bus with creds.
type Dialer func(ctx context.Context, creds *bus.Credentials) (*nats.Conn, error)

// Subscriber sets up the subscriptions of a fresh connection and returns them
// once the server has them.
type Subscriber func(nc *nats.Conn) ([]*nats.Subscription, error)

// renewRoundTrip bounds one renewal: the round trip to the verifier and the
// dial of the new connection.
const renewRoundTrip = 30 * time.Second

// keyExpires is the log field key of a credential's expiry.
const keyExpires = "expires"

// ManagerConn is an attestation manager's bus connection that keeps its
// credentials fresh without a restart: at two thirds of their lifetime it
// asks the verifier for new ones over the bus (RenewManagerCredentials),
// dials a second connection with them, subscribes there and only then drains
// the old one, so that no message published during the hand-over is lost (a
// message may arrive twice then, once on each connection). A failed renewal
// is retried (RenewRetry) until the credentials expire.
type ManagerConn struct {
	dial      Dialer
	subscribe Subscriber
	logger    *slog.Logger
	saved     func(*bus.Credentials)

	cur   atomic.Pointer[nats.Conn]
	subs  []*nats.Subscription
	creds *bus.Credentials
}

// DialManager connects with creds (credentials of a manager:<name> user) and
// subscribes with subscribe. saved, if set, is told of every renewal.
func DialManager(ctx context.Context, creds *bus.Credentials, dial Dialer, subscribe Subscriber, saved func(*bus.Credentials), logger *slog.Logger) (*ManagerConn, error) {
	if creds == nil || dial == nil || subscribe == nil || logger == nil {
		return nil, errors.New("manager connection: credentials, dialer, subscriber and logger are required")
	}
	if _, ok := bus.ManagerName(creds.Name()); !ok {
		return nil, fmt.Errorf("manager connection: %q is not an attestation manager", creds.Name())
	}
	nc, subs, err := dialSubscribed(ctx, creds, dial, subscribe)
	if err != nil {
		return nil, err
	}
	c := &ManagerConn{dial: dial, subscribe: subscribe, logger: logger, saved: saved, subs: subs, creds: creds}
	c.cur.Store(nc)
	return c, nil
}

func dialSubscribed(ctx context.Context, creds *bus.Credentials, dial Dialer, subscribe Subscriber) (*nats.Conn, []*nats.Subscription, error) {
	nc, err := dial(ctx, creds)
	if err != nil {
		return nil, nil, err
	}
	subs, err := subscribe(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, subs, nil
}

// IsConnected reports whether the connection in use is connected.
func (c *ManagerConn) IsConnected() bool { return c.cur.Load().IsConnected() }

// Run renews the credentials until ctx ends, then drains and closes the
// connection.
func (c *ManagerConn) Run(ctx context.Context) error {
	defer func() { drainClose(c.cur.Load(), c.subs) }()
	retry := time.Duration(0)
	for {
		if !bus.WaitToRenew(ctx, c.creds, retry) {
			return nil
		}
		if err := c.renew(ctx); err != nil {
			retry = bus.RenewRetry(c.creds)
			c.logger.Warn("bus credentials not renewed", bus.KeyErr, err.Error(),
				keyExpires, c.creds.Expires().UTC(), bus.KeyRetryIn, retry)
			continue
		}
		retry = 0
		c.logger.Info("bus credentials renewed", keyExpires, c.creds.Expires().UTC())
		if c.saved != nil {
			c.saved(c.creds)
		}
	}
}

// renew gets fresh credentials over the current connection and moves to a new
// connection made with them.
func (c *ManagerConn) renew(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, renewRoundTrip)
	defer cancel()
	old := c.cur.Load()
	fresh, err := bus.RenewManagerCredentials(rctx, Adapt(old), c.creds)
	if err != nil {
		return err
	}
	nc, subs, err := dialSubscribed(rctx, fresh, c.dial, c.subscribe)
	if err != nil {
		return fmt.Errorf("connect with the renewed credentials: %w", err)
	}
	oldSubs := c.subs
	c.cur.Store(nc)
	c.subs, c.creds = subs, fresh
	drainClose(old, oldSubs)
	return nil
}

// drainClose lets the handlers of subs finish what the server sent already
// (for at most 10 s), then closes nc.
func drainClose(nc *nats.Conn, subs []*nats.Subscription) {
	for _, s := range subs {
		if err := s.Drain(); err != nil {
			_ = s.Unsubscribe()
		}
	}
	_ = nc.FlushTimeout(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range subs {
		for s.IsValid() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	nc.Close()
}
