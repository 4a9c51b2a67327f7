package busserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterConfig joins the embedded server to the embedded servers of the
// other verifier replicas by NATS routes (issue 14). Every replica signs
// with the same operator and account keys, since NewAuthority reads them
// from the database the replicas share; the servers of a cluster then trust
// the same operator and accept each other's users. An agent connected to any
// replica reaches the HVS of every replica, and a request from one replica
// reaches an agent connected to another.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every replica.
	Name string
	// Host and Port are the route listener's address; port 0 picks a free
	// port (tests).
	Host string
	Port int
	// Routes are the route URLs of the replicas (nats://host:port); a route
	// to the server itself is recognised and dropped, so every replica can
	// be given the same list.
	Routes []string
	// TLS secures the routes both ways; RouteTLS makes it. Required.
	TLS *tls.Config
	// NoAdvertise keeps the servers from telling clients the other
	// replicas' client addresses (set it when the addresses the servers see
	// are not those agents can dial, e.g. pod IPs behind a load balancer;
	// agents then rely on the URLs they are configured with).
	NoAdvertise bool
}

// RouteTLS is the TLS configuration of routes between replicas: TLS 1.3
// only; each side presents cert and accepts the other's only if it chains
// to roots (pinned: the verifier's CMS root, which the replicas share) for
// server authentication and names peerName, the verifier's own TLS name that
// CMS never issues to anyone else. A route peer sees every message of the
// bus, so holding some other certificate of the same CA is not enough.
func RouteTLS(cert tls.Certificate, roots *x509.CertPool, peerName string) (*tls.Config, error) {
	if roots == nil || peerName == "" {
		return nil, errors.New("route tls: pinned roots and the peer name are required")
	}
	// VerifyConnection runs on every handshake, resumed ones too.
	verify := func(cs tls.ConnectionState) error {
		certs := cs.PeerCertificates
		if len(certs) == 0 {
			return errors.New("route tls: the peer presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: peerName,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("route tls: peer certificate: %w", err)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The dialling side checks the accepting side's certificate the
		// usual way, for peerName (not the route URL's host, which is a pod
		// address in Kubernetes) ...
		RootCAs:    roots,
		ServerName: peerName,
		// ... and the accepting side checks the dialler's server
		// certificate by hand: it has no client-auth usage.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: verify,
	}, nil
}

// clusterOptions applies c to the server's options.
func (c *ClusterConfig) clusterOptions(opts *server.Options) error {
	if c.Name == "" {
		return errors.New("nats server: cluster name is required")
	}
	if c.TLS == nil || c.TLS.VerifyConnection == nil || c.TLS.RootCAs == nil {
		return errors.New("nats server: cluster routes need TLS with pinned roots (RouteTLS)")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("nats server: cluster port %d out of range", c.Port)
	}
	tlsConfig := c.TLS.Clone()
	if tlsConfig.MinVersion < tls.VersionTLS13 {
		tlsConfig.MinVersion = tls.VersionTLS13
	}
	port := cmp.Or(c.Port, server.RANDOM_PORT)
	host := cmp.Or(c.Host, "0.0.0.0")
	opts.Cluster = server.ClusterOpts{
		Name: c.Name, Host: host, Port: port, TLSConfig: tlsConfig, TLSTimeout: 5,
		NoAdvertise: c.NoAdvertise,
	}
	if len(c.Routes) > 0 {
		routes := server.RoutesFromStr(strings.Join(c.Routes, ","))
		if len(routes) != len(c.Routes) {
			return fmt.Errorf("nats server: cluster routes %q: not all are URLs", c.Routes)
		}
		opts.Routes = routes
	}
	return nil
}

// ClusterURL is the route URL of this server (nats://host:port), empty
// without a cluster. Valid once Ready.
func (s *Server) ClusterURL() string {
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("nats://%s:%d", host, addr.Port)
}

// NumRoutes is the number of route connections to other replicas.
func (s *Server) NumRoutes() int { return s.ns.NumRoutes() }

// RevocationsSubject carries the notice that a replica revoked user keys in
// the shared ledger: every replica's Renewer then signs the ledger's
// revocations into its own server, which cuts the revoked connections it
// holds. Only verifier services may publish or subscribe to it.
const RevocationsSubject = "trust-verifier.revocations"

// announceRevocation tells the other replicas to apply the ledger's
// revocations. Best effort: each replica also reconciles on its own every
// ReconcileInterval.
func announceRevocation(nc *nats.Conn, logger *slog.Logger) {
	if nc == nil {
		return
	}
	if err := nc.Publish(RevocationsSubject, nil); err != nil {
		logger.Warn("bus credentials: announce revocation", keyErr, err.Error())
	}
}

// followRevocations applies the ledger's revocations to the local server
// whenever a replica announces some, until ctx ends.
func (r *Renewer) followRevocations(ctx context.Context, nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(RevocationsSubject, func(*nats.Msg) {
		if err := r.srv.applyRevocations(ctx); err != nil {
			r.logger.Warn("bus credentials: apply another replica's revocations", keyErr, err.Error())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("credential renewer: subscribe: %w", err)
	}
	return sub, nil
}
