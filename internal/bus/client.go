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

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

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
	pingInterval = 20 * time.Second
	maxPingsOut  = 3
)

// Log field keys.
const (
	// KeyURL and KeyTLS are shared with the embedded server's log lines.
	KeyURL = "url"
	KeyTLS = "tls"

	keyName    = "nats_name"
	keyErr     = "error"
	keySubject = "subject"
	keyAttempt = "attempt"
	keyRetryIn = "retry_in"
)

// backoff is the delay before the attempt-th retry (attempt ≥ 1): between half
// and all of min(minBackoff·2^(attempt-1), maxBackoff).
func backoff(attempt int) time.Duration {
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

// Connect dials the NATS server at url (a comma-separated list is allowed)
// with the user credentials creds (a .creds file's contents, never written to
// disk), over TLS 1.3 verified against rootCAs only. name identifies the
// connection in the server's logs.
//
// While the server is unreachable Connect keeps retrying with backoff until
// ctx is done, so an agent may start before the verifier. It gives up at once
// on errors that retrying cannot fix: refused or expired credentials, a server
// certificate that does not verify, a server without TLS. Once connected the
// connection reconnects forever on its own, and disconnects, reconnects and
// asynchronous errors (such as permission violations) are logged.
//
// extra options are applied after these defaults, e.g. nats.SetCustomDialer
// to carry the connection over something other than TCP (a serial line).
func Connect(ctx context.Context, url string, creds []byte, rootCAs *x509.CertPool, name string, logger *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if rootCAs == nil {
		return nil, errors.New("nats connect: root CAs are required")
	}
	opts, err := ClientOptions(creds, name, logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		nats.Secure(&tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS13}),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
	)
	opts = append(opts, extra...)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			logger.Info("nats connected", keyName, name, KeyURL, nc.ConnectedUrlRedacted())
			return nc, nil
		}
		if permanent(err) {
			return nil, fmt.Errorf("nats connect %s: %w", url, err)
		}
		wait := backoff(attempt)
		logger.Warn("nats server unreachable, retrying", keyName, name, KeyURL, url,
			keyAttempt, attempt, keyRetryIn, wait, keyErr, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("nats connect %s: %w (last error: %w)", url, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// ClientOptions are the options shared by every connection: identity,
// credentials from memory and logging handlers.
func ClientOptions(creds []byte, name string, logger *slog.Logger) ([]nats.Option, error) {
	if logger == nil {
		return nil, errors.New("nats connect: logger is required")
	}
	userJWT, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return nil, fmt.Errorf("nats connect: credentials: %w", err)
	}
	if _, err := jwt.DecodeUserClaims(userJWT); err != nil {
		return nil, fmt.Errorf("nats connect: credentials: user jwt: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(creds)
	if err != nil {
		return nil, fmt.Errorf("nats connect: credentials: %w", err)
	}
	return []nats.Option{
		nats.Name(name),
		nats.UserJWT(
			func() (string, error) { return userJWT, nil },
			func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) },
		),
		// A refused subscription fails the subscription, not only the log.
		nats.PermissionErrOnSubscribe(true),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", keyName, name, keyErr, err)
			} else {
				logger.Info("nats disconnected", keyName, name)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", keyName, name, KeyURL, nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				logger.Warn("nats connection closed", keyName, name, keyErr, err)
			} else {
				logger.Info("nats connection closed", keyName, name)
			}
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Error("nats error", keyName, name, keySubject, sub.Subject, keyErr, err)
				return
			}
			logger.Error("nats error", keyName, name, keyErr, err)
		}),
	}, nil
}

// permanent reports errors that retrying the same connection cannot fix.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrSecureConnWanted) || errors.Is(err, nats.ErrNkeysNotSupported) {
		return true
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &hostname) || errors.As(err, &invalid)
}
