// Package natsconn is the trust agent's NATS client: the part of the NATS
// client protocol the agent uses (CONNECT with a user JWT and the server's
// nonce signed by the user seed, SUB and queue SUB, UNSUB, PUB,
// request/reply through an inbox, PING/PONG both ways), over TLS 1.3
// verified against pinned roots only, with reconnection, jittered backoff
// and re-subscription. It links neither nats.go nor jwt/v2 and keeps no
// buffer as large as a message: a reply is written straight to the
// connection, so the agent stays small (docs/performance.md).
//
// Not supported, because the bus does not use them: JetStream, headers
// (HMSG is read, its headers dropped), publishing while disconnected
// (Publish fails instead of buffering), websocket, the servers a cluster
// announces in INFO (the configured URLs are tried in turn).
package natsconn

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/bus"
)

// Options configure a connection.
type Options struct {
	// URL is the server, or a comma-separated list tried in turn
	// (nats://host:port or tls://host:port; TLS is always used).
	URL string
	// Creds are the user credentials.
	Creds *bus.Credentials
	// RootCAs verify the server's certificate (required).
	RootCAs *x509.CertPool
	// Name names the connection in the server's logs.
	Name   string
	Logger *slog.Logger
	// Dial opens the byte stream to addr (host:port); nil dials TCP.
	// The serial-line dialer of the trust agent plugs in here.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// ConnectTimeout bounds one attempt, TLS handshake and CONNECT
	// included (default 5 s).
	ConnectTimeout time.Duration
	// PingInterval paces the pings that detect a dead connection after
	// bus.MaxPingsOut unanswered ones (default bus.PingInterval).
	PingInterval time.Duration
}

// Errors.
var (
	// ErrNotConnected is returned by operations while the connection is
	// down (it reconnects on its own) and after Close.
	ErrNotConnected = errors.New("nats: not connected")
	// ErrPermission wraps a permission violation the server reported.
	ErrPermission = errors.New("nats: permission violation")
	// ErrAuthorization wraps a refused CONNECT (bad, expired or revoked
	// credentials): retrying cannot help.
	ErrAuthorization = errors.New("nats: authorization refused")
	// ErrMaxPayload is returned for a message larger than the server takes.
	ErrMaxPayload = errors.New("nats: message larger than the server's max payload")
)

// Subscription queue: messages wait here for their handler. The agent's
// subscriptions get few, small messages; a flood beyond this is dropped and
// logged (as nats.go does for a slow consumer).
const pendingMsgs = 64

// writeBuffer is the size of the write buffer; larger payloads go to the
// connection without a copy.
const writeBuffer = 4096

// Conn is a connection to a NATS server. It is safe for concurrent use.
type Conn struct {
	opts    Options
	servers []*url.URL
	logger  *slog.Logger

	// wmu serializes writes to the current session.
	wmu sync.Mutex

	mu       sync.Mutex
	cur      *session // nil while disconnected
	closed   bool
	subs     map[uint64]*Subscription
	nextSID  uint64
	pongs    []chan struct{} // flushes waiting for a PONG, in PING order; nil for keep-alive pings
	pingsOut int
	// pending are the permission violations the server reported since
	// the last Flush returned (at most maxPendingErrs).
	pending   []error
	inbox     string // prefix of this connection's reply subjects
	inboxSub  *Subscription
	responses map[string]chan *bus.Msg

	stop chan struct{} // closed by Close
	done chan struct{} // closed when the connection loop ends
}

// session is one network connection to the server.
type session struct {
	conn       net.Conn
	r          *reader
	w          *bufio.Writer
	maxPayload int
	url        string
}

// serverInfo is the part of INFO the client uses.
type serverInfo struct {
	ServerID    string `json:"server_id"`
	MaxPayload  int    `json:"max_payload"`
	TLSRequired bool   `json:"tls_required"`
	TLSVerify   bool   `json:"tls_verify"`
	TLSAvail    bool   `json:"tls_available"`
	Nonce       string `json:"nonce"`
}

// connectInfo is the CONNECT operation.
type connectInfo struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	JWT          string `json:"jwt"`
	Sig          string `json:"sig"`
	TLSRequired  bool   `json:"tls_required"`
	Name         string `json:"name,omitempty"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	Echo         bool   `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
}

// Dial connects to the server. While the server is unreachable it keeps
// retrying with backoff until ctx is done, so an agent may start before the
// verifier. It gives up at once on errors that retrying cannot fix: refused
// or expired credentials, a server certificate that does not verify, a
// server without TLS. Once connected the connection reconnects on its own,
// with backoff, until Close, and subscribes again.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	if opts.Creds == nil || opts.RootCAs == nil || opts.Logger == nil {
		return nil, errors.New("nats connect: credentials, root CAs and logger are required")
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = bus.PingInterval
	}
	servers, err := parseURLs(opts.URL)
	if err != nil {
		return nil, err
	}
	c := &Conn{opts: opts, servers: servers, logger: opts.Logger.With(bus.KeyName, opts.Name),
		subs: map[uint64]*Subscription{}, responses: map[string]chan *bus.Msg{},
		stop: make(chan struct{}), done: make(chan struct{})}
	s, err := bus.Dial(ctx, opts.URL, c.logger, permanent, func(attempt int) (*session, error) {
		return c.handshake(ctx, servers[(attempt-1)%len(servers)])
	})
	if err != nil {
		return nil, err
	}
	c.cur = s
	c.logger.Info("nats connected", bus.KeyURL, s.url)
	// The connection outlives ctx, which bounds the dial only.
	go c.loop(context.WithoutCancel(ctx), s)
	go c.pinger()
	return c, nil
}

func parseURLs(list string) ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("nats url %q: %w", s, err)
		}
		if u.Scheme != "nats" && u.Scheme != "tls" {
			return nil, fmt.Errorf("nats url %q: scheme must be nats or tls", s)
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), "4222")
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("nats connect: no server url")
	}
	return out, nil
}

// permanent reports errors that retrying the same connection cannot fix.
func permanent(err error) bool {
	return errors.Is(err, ErrAuthorization) || errors.Is(err, errNoTLS) || bus.CertificateRefused(err)
}

var errNoTLS = errors.New("the server does not offer TLS")

// handshake opens one session: INFO, TLS 1.3, CONNECT, PING, and waits for
// the PONG that says the server took the credentials.
func (c *Conn) handshake(ctx context.Context, u *url.URL) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	dial := c.opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	raw, err := dial(ctx, u.Host)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = raw.Close()
		}
	}()
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	// INFO comes in clear; the server then waits for the TLS client hello,
	// so this reader holds nothing of the TLS stream.
	f, err := newReader(raw, 0).next()
	if err != nil {
		return nil, fmt.Errorf("read server info: %w", err)
	}
	if f.op != opInfo {
		return nil, fmt.Errorf("%w: expected INFO first", errProtocol)
	}
	var info serverInfo
	if err := json.Unmarshal([]byte(f.arg), &info); err != nil {
		return nil, fmt.Errorf("%w: server info: %w", errProtocol, err)
	}
	if !info.TLSRequired && !info.TLSAvail {
		return nil, errNoTLS
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: c.opts.RootCAs, ServerName: u.Hostname(), MinVersion: tls.VersionTLS13})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	sig, err := c.opts.Creds.Sign([]byte(info.Nonce))
	if err != nil {
		return nil, err
	}
	connect, err := json.Marshal(connectInfo{JWT: c.opts.Creds.JWT(), Sig: base64.RawURLEncoding.EncodeToString(sig),
		TLSRequired: true, Name: c.opts.Name, Lang: "go", Version: "tc-natsconn", Protocol: 1, Echo: true})
	if err != nil {
		return nil, err
	}
	s := &session{conn: tc, w: bufio.NewWriterSize(tc, writeBuffer), url: u.Redacted(),
		maxPayload: min(max(info.MaxPayload, 0), maxPayloadCap)}
	if s.maxPayload == 0 {
		s.maxPayload = 1 << 20 // the NATS default
	}
	s.r = newReader(tc, s.maxPayload)
	if _, err := fmt.Fprintf(s.w, "CONNECT %s\r\nPING\r\n", connect); err != nil {
		return nil, err
	}
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	for {
		f, err := s.r.next()
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		switch f.op {
		case opPong:
			_ = tc.SetDeadline(time.Time{})
			ok = true
			return s, nil
		case opErr:
			return nil, serverError(f.arg)
		case opPing:
			if _, err := s.w.WriteString("PONG\r\n"); err != nil {
				return nil, err
			}
			if err := s.w.Flush(); err != nil {
				return nil, err
			}
		case opOK, opInfo:
		default:
			return nil, fmt.Errorf("%w: unexpected message before the connection is up", errProtocol)
		}
	}
}

// serverError makes the error of a -ERR.
func serverError(msg string) error {
	l := strings.ToLower(msg)
	switch {
	case strings.HasPrefix(l, "permissions violation"):
		return fmt.Errorf("%w: %s", ErrPermission, msg)
	case strings.HasPrefix(l, "authorization violation"), strings.Contains(l, "authentication expired"),
		strings.Contains(l, "authentication revoked"), strings.Contains(l, "account authentication expired"):
		return fmt.Errorf("%w: %s", ErrAuthorization, msg)
	}
	return fmt.Errorf("nats: server error: %s", msg)
}

// loop reads from the session until it fails, then reconnects, until Close.
func (c *Conn) loop(ctx context.Context, s *session) {
	defer close(c.done)
	for {
		err := c.read(s)
		if !c.lost(s, err) {
			return
		}
		if s = c.reconnect(ctx); s == nil {
			return
		}
	}
}

// read handles the server's operations until the session fails.
func (c *Conn) read(s *session) error {
	for {
		f, err := s.r.next()
		if err != nil {
			return err
		}
		switch f.op {
		case opMsg:
			c.deliver(f)
		case opPing:
			if err := c.writeTo(s, func(w *bufio.Writer) error { _, err := w.WriteString("PONG\r\n"); return err }); err != nil {
				return err
			}
		case opPong:
			c.pong()
		case opErr:
			err := serverError(f.arg)
			if !errors.Is(err, ErrPermission) {
				// Any other -ERR: the server closes the connection.
				return err
			}
			c.mu.Lock()
			if len(c.pending) < maxPendingErrs {
				c.pending = append(c.pending, err)
			}
			c.mu.Unlock()
			c.logger.Error("nats error", bus.KeyErr, err.Error())
		case opOK, opInfo:
		}
	}
}

// lost ends a failed session; it reports whether to reconnect.
func (c *Conn) lost(s *session, err error) bool {
	_ = s.conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = nil
	for _, ch := range c.pongs {
		if ch != nil {
			close(ch)
		}
	}
	c.pongs, c.pingsOut = nil, 0
	if c.closed {
		return false
	}
	c.logger.Warn("nats disconnected", bus.KeyErr, err.Error())
	return true
}

// reconnect dials with backoff until it has a session subscribed as the
// last one was, or until Close (then nil).
func (c *Conn) reconnect(ctx context.Context) *session {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for attempt := 1; ; attempt++ {
		select {
		case <-c.stop:
			return nil
		case <-time.After(bus.Backoff(attempt)):
		}
		s, err := c.handshake(ctx, c.servers[attempt%len(c.servers)])
		if err != nil {
			c.logger.Warn("nats reconnect failed", bus.KeyAttempt, attempt, bus.KeyErr, err.Error())
			continue
		}
		c.wmu.Lock()
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			c.wmu.Unlock()
			_ = s.conn.Close()
			return nil
		}
		for _, sub := range c.subs {
			if !sub.draining && err == nil {
				err = sub.writeSub(s.w)
			}
		}
		if err == nil {
			err = s.w.Flush()
		}
		if err == nil {
			c.cur = s
		}
		c.mu.Unlock()
		c.wmu.Unlock()
		if err != nil {
			_ = s.conn.Close()
			continue
		}
		c.logger.Info("nats reconnected", bus.KeyURL, s.url)
		return s
	}
}

// pinger pings the server every PingInterval and drops the session when
// bus.MaxPingsOut pings went unanswered.
func (c *Conn) pinger() {
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		s := c.cur
		stale := s != nil && c.pingsOut >= bus.MaxPingsOut
		if s != nil && !stale {
			c.pingsOut++
			c.pongs = append(c.pongs, nil)
		}
		c.mu.Unlock()
		switch {
		case s == nil:
		case stale:
			c.logger.Warn("nats server stopped answering pings")
			_ = s.conn.Close()
		default:
			_ = c.writeTo(s, func(w *bufio.Writer) error { _, err := w.WriteString("PING\r\n"); return err })
		}
	}
}

func (c *Conn) pong() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pingsOut = 0
	if len(c.pongs) == 0 {
		return
	}
	ch := c.pongs[0]
	c.pongs = c.pongs[1:]
	if ch != nil {
		close(ch)
	}
}

// writeTo writes to session s (if it is still the current one) and flushes.
// The deadline allows a slow link (a serial line moves about 11 KiB/s).
func (c *Conn) writeTo(s *session, write func(w *bufio.Writer) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(s, 0, write)
}

func (c *Conn) writeLocked(s *session, size int, write func(w *bufio.Writer) error) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(10*time.Second + time.Duration(size/8)*time.Millisecond))
	err := write(s.w)
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		_ = s.conn.Close() // the read loop reconnects
		s.w.Reset(s.conn)
	}
	return err
}

// write writes an operation with a payload of size bytes to the current
// session.
func (c *Conn) write(size int, write func(w *bufio.Writer) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	s := c.cur
	c.mu.Unlock()
	if s == nil {
		return ErrNotConnected
	}
	if size < 0 || size > s.maxPayload {
		return fmt.Errorf("%w: %d bytes, max %d", ErrMaxPayload, size, s.maxPayload)
	}
	return c.writeLocked(s, size, write)
}

// Publish sends data on subject. The payload goes to the connection as it
// is: a large reply is not copied into a buffer first.
func (c *Conn) Publish(subject string, data []byte) error {
	return c.publish(subject, "", len(data), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// PublishStream sends a message of exactly size bytes on subject, which
// write produces straight onto the connection: a large reply is never held
// whole in memory. A write that fails or produces another size leaves a
// broken message on the wire, so the connection is dropped (and reconnects).
func (c *Conn) PublishStream(subject string, size int, write func(w io.Writer) error) error {
	return c.publish(subject, "", size, write)
}

func (c *Conn) publish(subject, reply string, size int, body func(w io.Writer) error) error {
	if err := checkSubject(subject); err != nil {
		return err
	}
	return c.write(size, func(w *bufio.Writer) error {
		hdr := make([]byte, 0, 24+len(subject)+len(reply))
		hdr = append(append(hdr, "PUB "...), subject...)
		if reply != "" {
			hdr = append(append(hdr, ' '), reply...)
		}
		hdr = append(strconv.AppendInt(append(hdr, ' '), int64(size), 10), "\r\n"...)
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		cw := &countingWriter{w: w}
		if err := body(cw); err != nil {
			return fmt.Errorf("nats publish %s: %w", subject, err)
		}
		if cw.n != size {
			return fmt.Errorf("nats publish %s: wrote %d bytes of %d", subject, cw.n, size)
		}
		_, err := w.WriteString("\r\n")
		return err
	})
}

// countingWriter counts what a message body writes.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// checkSubject refuses a subject that would break the protocol line.
func checkSubject(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("nats: invalid subject %q", s)
	}
	return nil
}

// maxPendingErrs bounds the permission violations kept for Flush.
const maxPendingErrs = 16

// Flush returns once the server has answered a PING sent after everything
// written before, with the permission violations it reported since the
// last Flush returned.
func (c *Conn) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	c.wmu.Lock()
	c.mu.Lock()
	s := c.cur
	if s != nil {
		c.pongs = append(c.pongs, ch)
	}
	c.mu.Unlock()
	if s == nil {
		c.wmu.Unlock()
		return ErrNotConnected
	}
	err := c.writeLocked(s, 0, func(w *bufio.Writer) error { _, err := w.WriteString("PING\r\n"); return err })
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("nats flush: %w", ctx.Err())
	case <-ch:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != s {
		return ErrNotConnected
	}
	err = errors.Join(c.pending...)
	c.pending = nil
	return err
}

// IsConnected reports whether the connection is up now.
func (c *Conn) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// Close drops the connection and ends its subscriptions' handlers.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.closed = true
	s := c.cur
	subs := c.subs
	c.subs = map[uint64]*Subscription{}
	c.mu.Unlock()
	close(c.stop)
	if s != nil {
		_ = s.conn.Close()
	}
	for _, sub := range subs {
		sub.end()
	}
	<-c.done
	c.logger.Info("nats connection closed")
}

// Request publishes data on subject with a reply subject of this
// connection's inbox and returns the first answer.
func (c *Conn) Request(ctx context.Context, subject string, data []byte) (*bus.Msg, error) {
	prefix, err := c.ensureInbox(ctx)
	if err != nil {
		return nil, err
	}
	token := newToken()
	ch := make(chan *bus.Msg, 1)
	c.mu.Lock()
	c.responses[token] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.responses, token)
		c.mu.Unlock()
	}()
	if err := c.publish(subject, prefix+token, len(data), func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("nats request %s: %w", subject, ctx.Err())
	case m := <-ch:
		return m, nil
	}
}

// ensureInbox subscribes to this connection's inbox once.
func (c *Conn) ensureInbox(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.inboxSub != nil {
		defer c.mu.Unlock()
		return c.inbox, nil
	}
	c.mu.Unlock()
	prefix := "_INBOX." + newToken() + "."
	sub, err := c.subscribe(ctx, prefix+"*", "", func(m *bus.Msg) {
		c.mu.Lock()
		ch := c.responses[strings.TrimPrefix(m.Subject, prefix)]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inboxSub != nil { // another request won the race
		go func() { _ = sub.Unsubscribe() }()
		return c.inbox, nil
	}
	c.inbox, c.inboxSub = prefix, sub
	return prefix, nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
