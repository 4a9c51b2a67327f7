package agent

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// publisher is where events go: a connection, or whichever is current.
type publisher interface {
	Publish(subject string, data []byte) error
}

// Dialer connects to the bus with creds.
type Dialer func(ctx context.Context, creds *bus.Credentials) (bus.Conn, error)

// requestQueue is the queue group of the agent's request subscription: while
// a renewal hands over from the old connection to the new one, both are
// subscribed and each request reaches exactly one of them.
const requestQueue = "trust-agent"

// Renewal timing.
const (
	renewTimeout = 30 * time.Second // one round trip to the verifier
)

// Log field keys of renewals.
const (
	keyExpires = "expires"
	keyRetryIn = "retry_in"
	keyGrammar = "bus_grammar"
)

// RunRenewing serves requests like Run, on a connection dial makes with
// creds, and keeps the credentials fresh without a restart: at two thirds of
// their lifetime it asks the verifier for new ones over the bus (the request
// is authenticated by the connection itself: only this host's agent, with
// valid and unrevoked credentials, can publish on its renewal subject), dials
// a second connection with them, moves the subscription there and drains the
// old connection, so that no request is lost in the hand-over. saved, if set,
// is told of every renewal (to write the credentials file); an error from it
// is logged.
//
// A refused renewal (the host was removed) is retried until the credentials
// expire; then the server drops the connection and the agent waits, serving
// nothing, until ctx ends or an operator gives it new credentials.
func (a *Agent) RunRenewing(ctx context.Context, creds *bus.Credentials, dial Dialer, saved func(*bus.Credentials) error) error {
	if creds == nil || dial == nil {
		return errors.New("agent: credentials and dialer are required")
	}
	nc, err := dial(ctx, creds)
	if err != nil {
		return err
	}
	sub, err := a.subscribe(ctx, nc)
	if err != nil {
		nc.Close()
		return err
	}
	cur := &currentConn{}
	cur.c.Store(&nc)
	a.connected(nc, creds)
	defer func() {
		c := cur.c.Load()
		a.drain(sub)
		(*c).Close()
	}()
	if err := a.publishEvent(ctx, nc, bus.BootEvent, -1); err != nil {
		a.logger.Warn("boot event not published", keyError, err.Error())
	}
	imaDone := make(chan struct{})
	go func() {
		defer close(imaDone)
		a.watchIMA(ctx, cur)
	}()
	defer func() { <-imaDone }()

	retry := time.Duration(0)
	// Each renewal asks for credentials of two prefixes
	// (bus.AgentGrammar): split ones move to them when they are due, not
	// at the start, since a verifier refuses (and revokes) the renewal of a
	// host not registered yet, and an agent starts before its host is.
	for {
		if !bus.WaitToRenew(ctx, creds, retry) {
			return nil
		}
		fresh, freshNC, freshSub, err := a.renew(ctx, nc, creds, dial)
		if err != nil {
			retry = bus.RenewRetry(creds)
			a.logger.Warn("bus credentials not renewed", keyError, err.Error(),
				keyExpires, creds.Expires().UTC(), keyRetryIn, retry)
			continue
		}
		retry = 0
		cur.c.Store(&freshNC)
		a.connected(freshNC, fresh)
		a.drain(sub)
		nc.Close()
		nc, sub, creds = freshNC, freshSub, fresh
		a.logger.Info("bus credentials renewed", keyExpires, creds.Expires().UTC(), keyGrammar, creds.AgentGrammar().String())
		if saved != nil {
			if err := saved(creds); err != nil {
				a.logger.Warn("renewed bus credentials not saved", keyError, err.Error())
			}
		}
	}
}

// renew gets fresh credentials over nc and returns them with a new
// connection subscribed to this host's requests.
func (a *Agent) renew(ctx context.Context, nc bus.Conn, creds *bus.Credentials, dial Dialer) (*bus.Credentials, bus.Conn, bus.Subscription, error) {
	rctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	fresh, err := bus.RenewCredentials(rctx, nc, a.cfg.HostID, creds)
	if err != nil {
		return nil, nil, nil, err
	}
	freshNC, err := dial(rctx, fresh)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect with the renewed credentials: %w", err)
	}
	sub, err := a.subscribe(ctx, freshNC)
	if err != nil {
		freshNC.Close()
		return nil, nil, nil, err
	}
	return fresh, freshNC, sub, nil
}

// subscribe subscribes nc to this host's requests, in requestQueue, and
// waits until the server has the subscription.
func (a *Agent) subscribe(ctx context.Context, nc bus.Conn) (bus.Subscription, error) {
	subject, err := bus.AgentRequests(a.cfg.HostID)
	if err != nil {
		return nil, err
	}
	// Requests are answered even while the agent stops (see drain).
	serveCtx := context.WithoutCancel(ctx)
	sub, err := nc.QueueSubscribe(subject, requestQueue, func(m *bus.Msg) { a.serve(serveCtx, nc, m) })
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	fctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	if err := nc.Flush(fctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	return sub, nil
}

// currentConn publishes on the connection in use.
type currentConn struct {
	c atomic.Pointer[bus.Conn]
}

func (c *currentConn) Publish(subject string, data []byte) error {
	return (*c.c.Load()).Publish(subject, data)
}
