// Package verifier is the composition root of the verifier: it opens the
// store, starts CMS, AAS, the NATS bus and HVS, and serves their HTTP APIs over
// TLS 1.3 with a CMS-issued certificate. Long-running parts are Run(ctx) error
// tasks that stop together when one fails.
package verifier

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus/natsbus"
	"trustedcompute.io/tc/internal/evidence"
	"trustedcompute.io/tc/internal/run"
	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/aas/aasstore"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/hvs"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Config is what the composition root needs; cmd/verifier fills it from its
// YAML file, environment and flags.
type Config struct {
	// Listen is the HTTPS address of the AAS, CMS and HVS APIs.
	Listen string
	// Database is sqlite:<path> or postgres://...
	Database string
	// DataDir receives the CMS root certificate (cms-root.pem) for operators,
	// and the generated key-encryption key when none is configured. It must
	// be private to the verifier's user (0700); it is created so if missing.
	DataDir string
	// KeyEncryption names the key-encryption key that seals stored secrets.
	KeyEncryption KeyEncryptionConfig
	// ServerName, DNSNames and IPs go into the TLS server certificate.
	ServerName string
	DNSNames   []string
	IPs        []net.IP
	AAS        aas.Config
	// NATS is the bus.
	NATS NATSConfig
	// Enrollment configures AK enrollment (EK CA bundles, registered EKs).
	Enrollment enroll.Config
	// HVS tunes host verification (PCRs, banks, report validity, workers).
	HVS hvs.Config
	// Metrics says where Prometheus /metrics is served (metrics.go).
	Metrics MetricsConfig
	// Dashboard turns on the operator's fleet dashboard (dashboard.go).
	Dashboard DashboardConfig
}

// NATSConfig selects the embedded NATS server or an external one.
type NATSConfig struct {
	// External is the URL of an external NATS cluster; empty runs the
	// embedded server.
	External string
	// ExternalCredsFile holds the verifier's credentials for the external bus.
	ExternalCredsFile string
	// Host and Port of the embedded server (4222 by default).
	Host string
	Port int
	// ServerName names the embedded server, unique among the replicas
	// (default: the host name).
	ServerName string
	// Cluster joins the embedded servers of the verifier replicas by
	// routes (issue 14); off without a Name.
	Cluster NATSClusterConfig
}

// NATSClusterConfig joins the embedded server to the other replicas'.
// Routes are TLS 1.3 both ways with the verifier's certificate, pinned to the
// CMS root the replicas share, and accept only a peer whose certificate names
// the verifier's ServerName (busserver.RouteTLS).
type NATSClusterConfig struct {
	// Name is the cluster's name, the same on every replica; empty: no cluster.
	Name string
	// Host and Port of the route listener (6222 by default in cmd/verifier).
	Host string
	Port int
	// Routes are the replicas' route URLs (nats://host:6222); the same list
	// on every replica is fine.
	Routes []string
	// NoAdvertise keeps the servers from advertising the other replicas'
	// client addresses to clients (busserver.ClusterConfig).
	NoAdvertise bool
}

// Verifier is a running verifier.
type Verifier struct {
	cfg     Config
	logger  *slog.Logger
	store   *store.Store
	ca      *cms.CA
	aas     *aas.AAS
	auth    *busserver.Authority
	nats    *busserver.Server
	enroll  *enroll.Enroller
	agents  agentProxy
	mux     *http.ServeMux
	metrics *metrics
	cert    *tls.Certificate
	ln      net.Listener
	// dashboard is the fleet dashboard, when configured (dashboard.go).
	dashboard dashboardPart
	// keyBroker releases secrets to Verified hosts (keybroker.go).
	keyBroker keyBrokerPart

	// ready is closed once every part serves.
	ready chan struct{}
}

// Log field keys.
const (
	keyListen = "listen"
	keyRoot   = "cms_root_sha384"
	keyError  = "error"
)

// New opens the store and builds every part. It listens but serves nothing
// until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Verifier, error) {
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, logger: logger, store: st, mux: http.NewServeMux(), ready: make(chan struct{})}
	if err := v.build(ctx); err != nil {
		_ = st.Close()
		return nil, err
	}
	return v, nil
}

func (v *Verifier) build(ctx context.Context) error {
	// CSR signing never issues the verifier's own TLS names (issue 11).
	ca, err := cms.New(ctx, cms.Config{NotFound: store.ErrNotFound, Conflict: store.ErrConflict,
		ReservedNames: append([]string{v.cfg.ServerName}, v.cfg.DNSNames...), ReservedIPs: v.cfg.IPs},
		v.store, v.logger.With("part", "cms"))
	if err != nil {
		return fmt.Errorf("cms: %w", err)
	}
	v.ca = ca
	if err := v.writeRoot(); err != nil {
		return err
	}
	v.auth, err = busserver.NewAuthority(ctx, v.store, store.ErrNotFound, busserver.WithLedger(keyLedger{v.store}))
	if err != nil {
		return fmt.Errorf("nats authority: %w", err)
	}
	v.aas, err = aas.New(ctx, v.cfg.AAS, aasstore.New(v.store), ca, credentialIssuer{v.auth, v.store}, v.logger.With("part", "aas"))
	if err != nil {
		return fmt.Errorf("aas: %w", err)
	}
	names := append([]string{v.cfg.ServerName}, v.cfg.DNSNames...)
	v.cert, err = ca.ServerCertificate(v.cfg.ServerName, names, v.cfg.IPs)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	if v.cfg.NATS.External == "" {
		natsCert, err := ca.ServerCertificate(v.cfg.ServerName, names, v.cfg.IPs)
		if err != nil {
			return fmt.Errorf("nats tls certificate: %w", err)
		}
		scfg := busserver.ServerConfig{
			Host: v.cfg.NATS.Host, Port: v.cfg.NATS.Port, Name: v.cfg.NATS.ServerName,
			TLS: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*natsCert}},
		}
		if scfg.Cluster, err = v.clusterConfig(*natsCert); err != nil {
			return err
		}
		v.nats, err = busserver.NewServer(scfg, v.auth, v.logger.With("part", "nats"))
		if err != nil {
			return fmt.Errorf("nats server: %w", err)
		}
	}
	v.enroll, err = enroll.New(ctx, v.cfg.Enrollment, v.store, &v.agents, v.logger.With("part", "enroll"))
	if err != nil {
		return fmt.Errorf("enrollment: %w", err)
	}
	ca.Routes(v.mux, v.aas.Authenticate)
	v.aas.Register(v.mux)
	v.enroll.Register(v.mux, v.require)
	v.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	v.mux.HandleFunc("GET /readyz", v.handleReady)
	v.mux.HandleFunc("GET /openapi.json", v.handleOpenAPI)
	var conns func() int
	if v.nats != nil {
		conns = v.nats.NumClients
	}
	v.metrics = newMetrics(conns)
	v.metrics.reg.MustRegister(newAttemptCollector(v.store, v.cfg.HVS.OverdueBefore))
	v.metrics.watchPools(v.store.Pools())
	v.mux.Handle("GET /metrics", v.require(metricsService, metricsRule)(v.metrics.handler()))
	return nil
}

// clusterConfig is the embedded server's cluster, nil without a name.
func (v *Verifier) clusterConfig(cert tls.Certificate) (*busserver.ClusterConfig, error) {
	c := v.cfg.NATS.Cluster
	if c.Name == "" {
		return nil, nil
	}
	routeTLS, err := busserver.RouteTLS(cert, v.ca.RootPool(), v.cfg.ServerName)
	if err != nil {
		return nil, fmt.Errorf("nats cluster: %w", err)
	}
	return &busserver.ClusterConfig{Name: c.Name, Host: c.Host, Port: c.Port, Routes: c.Routes, TLS: routeTLS,
		NoAdvertise: c.NoAdvertise}, nil
}

// require chains authentication and the route's permission check.
func (v *Verifier) require(service, rule string) func(http.Handler) http.Handler {
	return v.aas.Protect(service, rule)
}

// writeRoot writes the CMS root for operators, who pin it in agents and clients.
func (v *Verifier) writeRoot() error {
	if v.cfg.DataDir == "" {
		return nil
	}
	if err := os.MkdirAll(v.cfg.DataDir, 0o700); err != nil {
		return err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.ca.Root().Raw})
	return os.WriteFile(filepath.Join(v.cfg.DataDir, "cms-root.pem"), pemBytes, 0o644) //nolint:gosec // a CA certificate is public
}

func (v *Verifier) handleReady(w http.ResponseWriter, r *http.Request) {
	select {
	case <-v.ready:
	default:
		api.WriteError(w, r, v.logger, api.Errorf(api.KindUnavailable, "verifier is starting"))
		return
	}
	if err := v.store.Ping(r.Context()); err != nil {
		api.WriteError(w, r, v.logger, api.Wrap(api.KindUnavailable, err, "store unreachable"))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// CA returns the certificate authority.
func (v *Verifier) CA() *cms.CA { return v.ca }

// Authority returns the NATS credentials authority.
func (v *Verifier) Authority() *busserver.Authority { return v.auth }

// AAS is the verifier's authentication service: logins and token checks,
// for a front end of the same process (the sandbox's control page).
func (v *Verifier) AAS() *aas.AAS { return v.aas }

// Store returns the store.
func (v *Verifier) Store() *store.Store { return v.store }

// Addr returns the HTTPS address once Run listens.
func (v *Verifier) Addr() string {
	if v.ln == nil {
		return ""
	}
	return v.ln.Addr().String()
}

// NATSURL returns the client URL of the embedded bus, or the external one.
func (v *Verifier) NATSURL() string {
	if v.nats == nil {
		return v.cfg.NATS.External
	}
	return v.nats.ClientURL()
}

// NATSClusterURL returns the route URL of the embedded server, "" without
// a cluster.
func (v *Verifier) NATSClusterURL() string {
	if v.nats == nil {
		return ""
	}
	return v.nats.ClusterURL()
}

// Ready is closed when every part serves.
func (v *Verifier) Ready() <-chan struct{} { return v.ready }

// Listen binds the HTTPS address, and the metrics and dashboard addresses
// when they are configured; Run calls it when it was not called before.
func (v *Verifier) Listen(ctx context.Context) error {
	if v.ln != nil {
		return nil
	}
	for _, l := range []struct {
		ln         *net.Listener
		what, addr string
		optional   bool
	}{
		{&v.ln, "the API", v.cfg.Listen, false},
		{&v.metrics.ln, "metrics", v.cfg.Metrics.Listen, true},
		{&v.dashboard.ln, "the dashboard", v.cfg.Dashboard.Listen, true},
	} {
		if l.addr == "" && l.optional {
			continue
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listen for %s on %s: %w", l.what, l.addr, err)
		}
		*l.ln = ln
	}
	return nil
}

// Run serves until ctx ends or a part fails; then everything stops.
func (v *Verifier) Run(ctx context.Context) error {
	defer func() { _ = v.store.Close() }()
	if err := v.Listen(ctx); err != nil {
		return err
	}
	r, ctx := run.New(ctx)
	nc, err := v.start(ctx, r)
	if err != nil {
		r.Stop()
	}
	if werr := r.Wait(); err == nil {
		err = werr
	}
	if nc != nil {
		nc.Close() // after every part that uses it has stopped
	}
	return err
}

// start sets up and starts the verifier's parts on r: the embedded NATS
// server first (the others connect to it), then the bus credential renewer,
// HVS, the HTTPS API and the metrics listener.
func (v *Verifier) start(ctx context.Context, r *run.Runner) (*nats.Conn, error) {
	if v.nats != nil {
		r.Go("nats", v.nats.Run)
		if err := v.nats.Ready(30 * time.Second); err != nil {
			return nil, err
		}
	}
	nc, err := v.connectBus(ctx)
	if err != nil {
		return nil, err
	}
	agents := agentclient.New(nc, 30*time.Second)
	v.agents.set(agents)
	hcfg := v.cfg.HVS
	hcfg.Observe = v.keyBroker.observeReports(v.metrics.observe) //nolint:contextcheck // HVS observes reports without a context; the revocation push is best effort
	renewer, err := v.newRenewer()
	if err != nil {
		return nc, err
	}
	svc, err := hvs.New(ctx, hcfg, hvs.Deps{Store: v.store, Agent: agents, Enroller: v.enroll, CA: v.ca, NATS: nc, HostRemoved: renewer.HostRemoved}, v.logger.With("part", "hvs"))
	if err != nil {
		return nc, fmt.Errorf("hvs: %w", err)
	}
	v.metrics.countLimited("event", svc.EventsFolded)
	v.metrics.countLimited("renewal", renewer.RenewalsLimited)
	r.Go("bus-credentials", func(ctx context.Context) error { return renewer.Run(ctx, nc) })
	v.registerBusCredentials(renewer)
	svc.Register(v.mux, v.require)
	v.startKeyBroker(r, nc, svc)
	r.Go("hvs", svc.Run)
	r.Go("https", v.serveHTTP)
	if v.metrics.ln != nil {
		r.Go("metrics", v.serveMetrics)
	}
	if err := v.startDashboard(r); err != nil {
		return nc, fmt.Errorf("dashboard: %w", err)
	}
	v.logger.Info("verifier serving", keyListen, v.ln.Addr().String(), keyRoot, v.ca.RootSHA384())
	close(v.ready)
	return nc, nil
}

// connectBus connects the verifier's own user: in process to the embedded
// server, or over TLS to the external cluster with the configured credentials.
func (v *Verifier) connectBus(ctx context.Context) (*nats.Conn, error) {
	logger := v.logger.With("part", "hvs")
	if v.nats != nil {
		creds, err := v.auth.InProcessCredentials("hvs", busserver.MaxCredentialsTTL)
		if err != nil {
			return nil, err
		}
		return busserver.ConnectInProcess(v.nats, creds, "hvs", logger)
	}
	creds, err := os.ReadFile(v.cfg.NATS.ExternalCredsFile)
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	return natsbus.Connect(ctx, v.cfg.NATS.External, creds, v.ca.RootPool(), "hvs", logger)
}

// agentProxy lets parts built before the bus is up reach the agents once it is.
type agentProxy struct {
	c atomic.Pointer[agentclient.Client]
}

func (p *agentProxy) set(c *agentclient.Client) { p.c.Store(c) }

var errBusDown = api.Errorf(api.KindUnavailable, "the verifier is not connected to the bus yet")

func (p *agentProxy) AKInfo(ctx context.Context, hostID string) (*evidence.AKInfo, error) {
	c := p.c.Load()
	if c == nil {
		return nil, errBusDown
	}
	return c.AKInfo(ctx, hostID)
}

func (p *agentProxy) Activate(ctx context.Context, hostID string, req evidence.ActivateRequest) (*evidence.ActivateResponse, error) {
	c := p.c.Load()
	if c == nil {
		return nil, errBusDown
	}
	return c.Activate(ctx, hostID, req)
}

func (v *Verifier) serveHTTP(ctx context.Context) error { return v.serveTLS(ctx, v.ln, v.mux) }

// serveTLS serves h on ln over TLS 1.3 with the verifier's certificate.
func (v *Verifier) serveTLS(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         api.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return v.cert, nil }),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(v.logger.Handler(), slog.LevelWarn),
	}
	return run.Server(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") }, 10*time.Second)
}
