package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Msg is a message delivered to a subscription.
type Msg struct {
	Subject string
	// Reply is where an answer goes; empty when none is wanted.
	Reply string
	Data  []byte
}

// Subscription is an interest in a subject; its handler is called for one
// message at a time.
type Subscription interface {
	// Unsubscribe stops the deliveries at once.
	Unsubscribe() error
	// Drain stops taking messages and returns once the handler has
	// finished those the server sent already (bounded, about 10 s).
	Drain() error
}

// Conn is a bus connection as the trust agent and the renewals use it. Two
// implementations: natsconn (the trust agent's own small client) and
// natsbus.Adapt (a nats.go connection, for the verifier, the manager and
// in-process agents).
type Conn interface {
	Publish(subject string, data []byte) error
	Subscribe(subject string, h func(*Msg)) (Subscription, error)
	QueueSubscribe(subject, queue string, h func(*Msg)) (Subscription, error)
	// Request publishes data with a fresh reply subject and waits for
	// the first answer until ctx ends.
	Request(ctx context.Context, subject string, data []byte) (*Msg, error)
	// Flush returns once the server has processed what was sent before,
	// with the error the server reported for it (a permission violation).
	Flush(ctx context.Context) error
	IsConnected() bool
	// Close drops the connection at once.
	Close()
}

// Reconnect backoff: exponential from minBackoff, capped at maxBackoff, with
// jitter so that a fleet of agents does not reconnect in step after the
// verifier restarts.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Ping settings: edge nodes sit behind NAT, whose idle timeouts drop silent
// connections; pinging every 20 s keeps the mapping and finds a dead
// connection within a minute.
const (
	PingInterval = 20 * time.Second
	MaxPingsOut  = 3
)

// Log field keys of connections.
const (
	// KeyURL and KeyTLS are shared with the embedded server's log lines.
	KeyURL = "url"
	KeyTLS = "tls"

	KeyName    = "nats_name"
	KeyErr     = "error"
	KeySubject = "subject"
	KeyAttempt = "attempt"
	KeyRetryIn = "retry_in"
)

// Backoff is the delay before the attempt-th retry (attempt ≥ 1): between
// half and all of min(minBackoff·2^(attempt-1), maxBackoff).
func Backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 20 {
		if e := minBackoff << (attempt - 1); e < maxBackoff {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // G404: retry jitter needs no unpredictability
}

// Dial calls connect until it succeeds, until it fails in a way permanent
// says a retry cannot mend, or until ctx ends. It waits Backoff(attempt)
// after the attempt-th failure (attempts count from 1) and logs each one.
func Dial[C any](ctx context.Context, url string, logger *slog.Logger, permanent func(error) bool, connect func(attempt int) (C, error)) (C, error) {
	for attempt := 1; ; attempt++ {
		c, err := connect(attempt)
		if err == nil {
			return c, nil
		}
		if permanent(err) {
			return c, fmt.Errorf("nats connect %s: %w", url, err)
		}
		wait := Backoff(attempt)
		logger.Warn("nats server unreachable, retrying", KeyURL, url,
			KeyAttempt, attempt, KeyRetryIn, wait, KeyErr, err.Error())
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("nats connect %s: %w (last error: %w)", url, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// CertificateRefused reports an error that says the server's TLS certificate
// did not verify: retrying the same connection cannot fix it.
func CertificateRefused(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &hostname) || errors.As(err, &invalid)
}
