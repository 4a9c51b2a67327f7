package natsbus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
)

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
		nats.CustomReconnectDelay(bus.Backoff),
		nats.PingInterval(bus.PingInterval),
		nats.MaxPingsOutstanding(bus.MaxPingsOut),
	)
	opts = append(opts, extra...)
	logger = logger.With(bus.KeyName, name)
	nc, err := bus.Dial(ctx, url, logger, permanent, func(int) (*nats.Conn, error) { return nats.Connect(url, opts...) })
	if err != nil {
		return nil, err
	}
	logger.Info("nats connected", bus.KeyURL, nc.ConnectedUrlRedacted())
	return nc, nil
}

// ClientOptions are the options shared by every connection: identity,
// credentials from memory and logging handlers.
func ClientOptions(creds []byte, name string, logger *slog.Logger) ([]nats.Option, error) {
	if logger == nil {
		return nil, errors.New("nats connect: logger is required")
	}
	c, err := bus.ParseCredentials(creds)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	return []nats.Option{
		nats.Name(name),
		nats.UserJWT(
			func() (string, error) { return c.JWT(), nil },
			c.Sign,
		),
		// A refused subscription fails the subscription, not only the log.
		nats.PermissionErrOnSubscribe(true),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", bus.KeyName, name, bus.KeyErr, err)
			} else {
				logger.Info("nats disconnected", bus.KeyName, name)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", bus.KeyName, name, bus.KeyURL, nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				logger.Warn("nats connection closed", bus.KeyName, name, bus.KeyErr, err)
			} else {
				logger.Info("nats connection closed", bus.KeyName, name)
			}
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Error("nats error", bus.KeyName, name, bus.KeySubject, sub.Subject, bus.KeyErr, err)
				return
			}
			logger.Error("nats error", bus.KeyName, name, bus.KeyErr, err)
		}),
	}, nil
}

// permanent reports errors that retrying the same connection cannot fix.
func permanent(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrSecureConnWanted) || errors.Is(err, nats.ErrNkeysNotSupported) ||
		bus.CertificateRefused(err)
}
