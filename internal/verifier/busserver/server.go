package busserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
)

// DefaultMaxPayload is the largest message the embedded server accepts unless
// ServerConfig says otherwise. Evidence carries the TCG event log and the IMA
// log, which outgrow NATS's 1 MiB default on busy hosts.
const DefaultMaxPayload = 8 << 20

// startTimeout bounds how long Run waits for the server to accept connections.
const startTimeout = 10 * time.Second

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Host is the address to listen on; empty means all interfaces.
	Host string
	// Port is the client port; 0 picks a free port.
	Port int
	// TLS is the server's TLS configuration (certificate from CMS). Required
	// unless AllowPlaintextForTests. Clients must use TLS; TLS 1.3 is the
	// minimum whatever MinVersion says.
	TLS *tls.Config
	// AllowPlaintextForTests lets the server run without TLS when TLS is nil.
	// Never set it outside tests.
	AllowPlaintextForTests bool
	// MaxPayload is the largest message in bytes; 0 means DefaultMaxPayload.
	MaxPayload int32
	// Name is the server's name, unique in a cluster (default tc-verifier).
	Name string
	// Cluster, when set, joins the other replicas' servers by routes
	// (cluster.go); nil runs a lone server.
	Cluster *ClusterConfig
}

// Server is the verifier's embedded NATS server. It authenticates users with
// the JWTs of an Authority (operator mode, memory account resolver) and has no
// monitoring port and no JetStream; with ServerConfig.Cluster it joins the
// other verifier replicas' servers by routes.
type Server struct {
	ns     *server.Server
	auth   *Authority
	tls    bool
	logger *slog.Logger

	running atomic.Bool
	ready   chan struct{} // closed once clients can connect
	failed  chan struct{} // closed if Run gave up before ready
	mu      sync.Mutex
	err     error // why Run failed; guarded by mu
	fatal   atomic.Pointer[string]

	// connKeys holds the user key of each connection's JWT, by the JWT,
	// for the connections of the last userConns; guarded by keysMu.
	keysMu   sync.Mutex
	connKeys map[string]connKey
}

// NewServer configures, but does not start, an embedded server that trusts
// auth's operator and knows its accounts.
func NewServer(cfg ServerConfig, auth *Authority, logger *slog.Logger) (*Server, error) {
	if auth == nil || logger == nil {
		return nil, errors.New("nats server: authority and logger are required")
	}
	var tlsConfig *tls.Config
	switch {
	case cfg.TLS != nil:
		if len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
			return nil, errors.New("nats server: tls config has no certificate")
		}
		if cfg.TLS.MaxVersion != 0 && cfg.TLS.MaxVersion < tls.VersionTLS13 {
			return nil, errors.New("nats server: tls max version below 1.3")
		}
		tlsConfig = cfg.TLS.Clone()
		if tlsConfig.MinVersion < tls.VersionTLS13 {
			tlsConfig.MinVersion = tls.VersionTLS13
		}
	case !cfg.AllowPlaintextForTests:
		return nil, errors.New("nats server: tls config required (plaintext only with AllowPlaintextForTests)")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("nats server: port %d out of range", cfg.Port)
	}
	port := cmp.Or(cfg.Port, server.RANDOM_PORT)
	maxPayload := cmp.Or(cfg.MaxPayload, DefaultMaxPayload)
	if maxPayload < 0 {
		return nil, fmt.Errorf("nats server: max payload %d is negative", maxPayload)
	}

	operator, err := jwt.DecodeOperatorClaims(auth.OperatorJWT())
	if err != nil {
		return nil, fmt.Errorf("nats server: decode operator jwt: %w", err)
	}
	resolver := &server.MemAccResolver{}
	for pub, accountJWT := range auth.AccountJWTs() {
		if err := resolver.Store(pub, accountJWT); err != nil {
			return nil, fmt.Errorf("nats server: preload account: %w", err)
		}
	}
	host := cmp.Or(cfg.Host, "0.0.0.0")
	name := cmp.Or(cfg.Name, "tc-verifier")
	opts := &server.Options{
		ServerName:       name,
		Host:             host,
		Port:             port,
		NoSigs:           true,
		NoLog:            false,
		MaxPayload:       maxPayload,
		TLSConfig:        tlsConfig,
		AllowNonTLS:      false,
		TrustedOperators: []*jwt.OperatorClaims{operator},
		AccountResolver:  resolver,
		SystemAccount:    auth.SystemAccountPublicKey(),
	}
	if cfg.Cluster != nil {
		if err := cfg.Cluster.clusterOptions(opts); err != nil {
			return nil, err
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s := &Server{
		ns:     ns,
		auth:   auth,
		tls:    tlsConfig != nil,
		logger: logger,
		ready:  make(chan struct{}),
		failed: make(chan struct{}),
	}
	// Debug and trace stay off: traces carry CONNECT, JWT included.
	ns.SetLogger(&serverLogger{logger: logger, fatal: &s.fatal}, false, false)
	return s, nil
}

// Run starts the server and serves until ctx is done, then shuts it down
// cleanly and returns nil. It returns an error if the server cannot start or
// stops on its own.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("nats server: already running")
	}
	s.ns.Start()
	if !s.waitReady() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		err := errors.New("nats server: not ready")
		if msg := s.fatal.Load(); msg != nil {
			err = fmt.Errorf("nats server: not ready: %s", *msg)
		}
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.failed)
		return err
	}
	close(s.ready)
	s.logger.Info("nats server ready", bus.KeyURL, s.ClientURL(), bus.KeyTLS, s.tls)

	stopped := make(chan struct{})
	go func() {
		s.ns.WaitForShutdown()
		close(stopped)
	}()
	select {
	case <-ctx.Done():
		s.ns.Shutdown()
		<-stopped
		s.logger.Info("nats server stopped")
		return nil
	case <-stopped:
		if msg := s.fatal.Load(); msg != nil {
			return fmt.Errorf("nats server: stopped: %s", *msg)
		}
		return errors.New("nats server: stopped unexpectedly")
	}
}

// waitReady waits up to startTimeout for the server to accept connections,
// giving up early once it has logged a fatal error (a taken port, say).
func (s *Server) waitReady() bool {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if s.ns.ReadyForConnections(50 * time.Millisecond) {
			return true
		}
		if s.fatal.Load() != nil {
			return false
		}
	}
	return false
}

// Ready waits up to timeout until clients can connect; it returns an error if
// Run failed to start the server or the time ran out.
func (s *Server) Ready(timeout time.Duration) error {
	select {
	case <-s.ready:
		return nil
	case <-s.failed:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err
	case <-time.After(timeout):
		return fmt.Errorf("nats server: not ready after %s", timeout)
	}
}

// ClientURL is the URL clients dial: tls://host:port (nats:// without TLS).
// When the server listens on all interfaces the host is the loopback address.
// Valid once Ready.
func (s *Server) ClientURL() string {
	scheme := "nats"
	if s.tls {
		scheme = "tls"
	}
	addr, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		return ""
	}
	host := s.ns.ClientURL() // carries the configured host
	if u, err := url.Parse(host); err == nil {
		host = u.Hostname()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// InProcessConn returns a connection to the server that does not go through
// the network (and so not through TLS); it makes *Server a
// nats.InProcessConnProvider. Agent credentials are refused on it.
func (s *Server) InProcessConn() (net.Conn, error) {
	return s.ns.InProcessConn()
}

var _ nats.InProcessConnProvider = (*Server)(nil)

// serverLogger adapts nats-server's printf logger to slog. Fatal messages are
// kept so that Run can report why the server did not start.
type serverLogger struct {
	logger *slog.Logger
	fatal  *atomic.Pointer[string]
}

const componentKey = "component"

func (l *serverLogger) log(level slog.Level, format string, v []any) {
	l.logger.Log(context.Background(), level, fmt.Sprintf(format, v...), componentKey, "nats-server")
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log(slog.LevelDebug, format, v) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log(slog.LevelWarn, format, v) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }
func (l *serverLogger) Tracef(string, ...any)           {}
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.fatal.Store(&msg)
	l.logger.Error(msg, componentKey, "nats-server")
}

// NumClients is the number of client connections (agents and services).
func (s *Server) NumClients() int { return s.ns.NumClients() }
