package busserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/hostlimit"
)

// DefaultCredentialsTTL is the lifetime of the credentials the verifier
// issues unless configured otherwise. Agents renew theirs at two thirds of it.
const DefaultCredentialsTTL = 30 * 24 * time.Hour

// DefaultReconcileInterval is how often a Renewer checks the connected agents
// against the registered hosts (see Renewer.Run).
const DefaultReconcileInterval = time.Minute

// Hosts tells whether a host may hold bus credentials.
type Hosts interface {
	// HostAllowed reports whether hostID is registered (and not disabled).
	// An error means it could not tell; nothing is revoked then.
	HostAllowed(ctx context.Context, hostID string) (bool, error)
	// HostsAllowed maps every registered host to HostAllowed of it: true,
	// or false when it is disabled. Reconcile reads it once for all the
	// connected agents. An error means it could not tell; nothing is
	// revoked then.
	HostsAllowed(ctx context.Context) (map[string]bool, error)
}

// RevokeHost cuts off the agent of hostID: every key the ledger holds for
// it, and the key of every connection now open under its name, are revoked
// in the ledger and in the account TC. The server closes those connections at
// once and refuses them from then on (until the revoked JWTs would have
// expired), after a restart too when the ledger persists.
func (s *Server) RevokeHost(ctx context.Context, hostID string) error {
	if err := bus.ValidateHostID(hostID); err != nil {
		return fmt.Errorf("revoke host: %w", err)
	}
	return s.revoke(ctx, Owner{OwnerAgent, hostID})
}

// RevokeManager cuts off the attestation manager name as RevokeHost cuts off
// an agent: its keys and its open connections. Credentials issued to it later
// work.
func (s *Server) RevokeManager(ctx context.Context, name string) error {
	if err := bus.ValidateHostID(name); err != nil {
		return fmt.Errorf("revoke manager: %w", err)
	}
	return s.revoke(ctx, Owner{OwnerManager, name})
}

// RevokeService cuts off every credential issued so far to the verifier
// service name (ServiceCredentials: POST /aas/v1/credentials of type HVS,
// verifier nats-export) as RevokeHost cuts off an agent: its keys and its
// open connections. The verifier's own in-process connection
// (InProcessCredentials) is no service's and stays. Credentials issued to
// that name later work.
func (s *Server) RevokeService(ctx context.Context, name string) error {
	if err := bus.ValidateHostID(name); err != nil {
		return fmt.Errorf("revoke service: %w", err)
	}
	return s.revoke(ctx, Owner{OwnerService, name})
}

func (s *Server) revoke(ctx context.Context, owner Owner) error {
	conns, err := s.userConns()
	if err != nil {
		return fmt.Errorf("revoke %s: %w", owner, err)
	}
	var extra []UserKey
	for _, c := range conns {
		if c.Owner == owner {
			extra = append(extra, c)
		}
	}
	if err := s.auth.revoke(ctx, owner, extra); err != nil {
		return err
	}
	return s.applyRevocations(ctx)
}

// applyRevocations pushes the account TC, with the ledger's revocations,
// into the running server, which closes every revoked connection. A server
// started later gets them with the account JWT (NewAuthority, WithLedger).
func (s *Server) applyRevocations(ctx context.Context) error {
	ac, err := s.auth.accountClaims(ctx)
	if err != nil {
		return err
	}
	acc, err := s.ns.LookupAccount(s.auth.AccountPublicKey())
	if err != nil {
		return fmt.Errorf("revoke: look up account: %w", err)
	}
	s.ns.UpdateAccountClaims(acc, ac)
	return nil
}

// userConns lists the agent and manager connections open now, each as the
// key it authenticated with. It asks for every connection in one page:
// Connz decodes the JWT of every connection on each call, whatever the
// page, so pages of DefaultConnListSize made a list of 10,000 agents cost
// ten times 10,000 JWT signature checks. The user key read from a JWT is
// kept while a connection holds it (connKeys), so that each list decodes
// only the JWTs of connections new since the last.
func (s *Server) userConns() ([]UserKey, error) {
	var out []UserKey
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	seen := make(map[string]connKey, len(s.connKeys))
	for offset := 0; ; {
		limit := max(server.DefaultConnListSize, s.ns.NumClients()+server.DefaultConnListSize)
		cz, err := s.ns.Connz(&server.ConnzOptions{Username: true, Account: s.auth.AccountPublicKey(), Offset: offset, Limit: limit})
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		for _, ci := range cz.Conns {
			if ci.JWT == "" {
				continue
			}
			k, ok := seen[ci.JWT]
			if !ok {
				k, ok = s.connKeys[ci.JWT]
			}
			if !ok {
				if k, ok = decodeConnKey(ci.JWT); !ok {
					continue
				}
			}
			seen[ci.JWT] = k
			if k.ok {
				out = append(out, k.key)
			}
		}
		offset += len(cz.Conns)
		if len(cz.Conns) == 0 || offset >= cz.Total {
			s.connKeys = seen
			return out, nil
		}
	}
}

// connKey is the user key of a connection's JWT; ok tells whether it is
// an agent's, a manager's or a service's.
type connKey struct {
	key UserKey
	ok  bool
}

// decodeConnKey reads a connection's JWT (the server checked it when the
// connection authenticated); false when it does not decode.
func decodeConnKey(userJWT string) (connKey, bool) {
	uc, err := jwt.DecodeUserClaims(userJWT)
	if err != nil {
		return connKey{}, false
	}
	owner, ok := userOwner(uc.Name)
	return connKey{key: UserKey{Owner: owner, PublicKey: uc.Subject, Expires: time.Unix(uc.Expires, 0)}, ok: ok}, true
}

// userOwner tells the owner of a user name: agent:<host-id>,
// manager:<name> or service:<name>.
func userOwner(userName string) (Owner, bool) {
	if host, ok := bus.AgentHostID(userName); ok {
		return Owner{OwnerAgent, host}, true
	}
	for _, kind := range [...]struct{ prefix, owner string }{
		{bus.ManagerUserPrefix, OwnerManager},
		{serviceUserPrefix, OwnerService},
	} {
		if name, ok := strings.CutPrefix(userName, kind.prefix); ok && bus.ValidateHostID(name) == nil {
			return Owner{kind.owner, name}, true
		}
	}
	return Owner{}, false
}

// RenewerConfig configures a Renewer.
type RenewerConfig struct {
	// TTL is the lifetime of renewed credentials (default
	// DefaultCredentialsTTL), the same as those AAS issues.
	TTL time.Duration
	// ReconcileInterval is how often the connected agents are checked against
	// the registered hosts (default DefaultReconcileInterval).
	ReconcileInterval time.Duration
	// Each agent, and each manager, has RenewalBurst renewals at once and
	// then one every RenewalInterval (defaults DefaultRenewalBurst and
	// DefaultRenewalInterval); the renewals beyond are dropped unanswered,
	// before they are decoded.
	RenewalBurst    int
	RenewalInterval time.Duration
}

// The defaults of RenewerConfig.RenewalBurst and RenewalInterval. An agent
// renews once in two thirds of its credentials' lifetime, and after a
// failed renewal waits a tenth of what is left (bus.RenewRetry), so only a
// flood meets them: each renewal it made would mint a key and record it in
// the store.
const (
	DefaultRenewalBurst    = 3
	DefaultRenewalInterval = 10 * time.Second
)

// Renewer answers the requests of agents and attestation managers for fresh
// credentials, and cuts off the agents of hosts that are gone.
type Renewer struct {
	cfg    RenewerConfig
	auth   *Authority
	srv    *Server // nil with an external NATS server: no revocation
	hosts  Hosts
	logger *slog.Logger
	// limit gives each agent and manager its budget of renewals.
	limit *hostlimit.Limiter
	// nc is the service connection Run serves on, where revocations are
	// announced to the other replicas; nil before Run.
	nc atomic.Pointer[nats.Conn]
	// seenMu guards seen: the hosts whose connected agents Reconcile found
	// registered, so that it can tell a deleted host from one that is not
	// registered yet.
	seenMu sync.Mutex
	seen   map[string]bool
}

// Log field keys.
const (
	keyHost    = "host_id"
	keyManager = "manager"
	keyService = "service"
	keyErr     = "error"
	keyExpires = "expires"
	keyBurst   = "burst"
	keyEvery   = "every"
)

// NewRenewer returns a Renewer that mints with auth for the hosts hosts
// allows. srv, the embedded server, is where revocations go; nil when the
// verifier uses an external NATS server (which then cannot be told).
func NewRenewer(cfg RenewerConfig, auth *Authority, srv *Server, hosts Hosts, logger *slog.Logger) (*Renewer, error) {
	if auth == nil || hosts == nil || logger == nil {
		return nil, errors.New("credential renewer: authority, hosts and logger are required")
	}
	cfg.TTL = cmp.Or(cfg.TTL, DefaultCredentialsTTL)
	if cfg.TTL < 0 || cfg.TTL > MaxCredentialsTTL {
		return nil, fmt.Errorf("credential renewer: ttl %s out of range (0, %s]", cfg.TTL, MaxCredentialsTTL)
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	if cfg.RenewalBurst <= 0 {
		cfg.RenewalBurst = DefaultRenewalBurst
	}
	if cfg.RenewalInterval <= 0 {
		cfg.RenewalInterval = DefaultRenewalInterval
	}
	return &Renewer{cfg: cfg, auth: auth, srv: srv, hosts: hosts, logger: logger,
		limit: hostlimit.New(clock.Real{}, cfg.RenewalInterval, cfg.RenewalBurst)}, nil
}

// Run answers renewals on nc (a service connection) until ctx ends, and
// every ReconcileInterval has the servers drop their per-connection result
// caches (dropResultCaches). With an
// embedded server it also checks, every ReconcileInterval, that each connected
// agent's host is still allowed, and revokes the credentials of those that
// are not: this covers agents that connect with credentials issued before the
// verifier restarted (the revocation list lives in memory).
func (r *Renewer) Run(ctx context.Context, nc *nats.Conn) error {
	// A queue group: with several verifier replicas one answers each
	// renewal. Agents renew in either grammar (bus.AgentGrammar).
	for _, subject := range []string{bus.AllRenewals, bus.AllRenewalsTwoPrefixes} {
		sub, err := nc.QueueSubscribe(subject, "tc-credentials", func(m *nats.Msg) { r.renew(ctx, nc, m) })
		if err != nil {
			return fmt.Errorf("credential renewer: subscribe: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	msub, err := nc.QueueSubscribe(bus.AllManagerRenewals, "tc-credentials", func(m *nats.Msg) { r.renewManager(ctx, nc, m) })
	if err != nil {
		return fmt.Errorf("credential renewer: subscribe: %w", err)
	}
	defer func() { _ = msub.Unsubscribe() }()
	if r.srv != nil {
		// With replicas: a revocation made on another applies here too.
		rsub, err := r.followRevocations(ctx, nc)
		if err != nil {
			return err
		}
		defer func() { _ = rsub.Unsubscribe() }()
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("credential renewer: flush: %w", err)
	}
	r.nc.Store(nc)
	defer r.nc.Store(nil)
	tick := time.NewTicker(r.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		if r.srv != nil {
			r.Reconcile(ctx)
		}
		r.dropResultCaches(nc)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// dropResultCaches makes nats-server drop what each connection remembers
// of the subjects it published to. Each connection keeps a cache of where
// each subject it published to goes (up to 512 subjects, until any
// subscription of the account changes), and an agent's every reply goes to
// a subject of its own (_INBOX.<mux>.<token>): without a change an agent
// that answered 512 requests holds about 1,600 heap objects (100 KiB) in
// the server, 16 million objects at 10,000 agents, which every collection
// marks (BenchmarkAgentRepliesHeldObjects). A subscription made and
// dropped, every ReconcileInterval, is such a change, on every server of
// the account (an external one too).
func (r *Renewer) dropResultCaches(nc *nats.Conn) {
	sub, err := nc.SubscribeSync(nc.NewRespInbox())
	if err == nil {
		err = sub.Unsubscribe()
	}
	if err != nil {
		r.logger.Warn("bus: drop the connections' result caches", keyErr, err.Error())
	}
}

// Reconcile revokes the credentials of every connected agent whose host is
// disabled, or was registered when an earlier Reconcile saw its agent and is
// gone now. An agent whose host is not registered yet is left alone: an
// operator issues a node's credentials before the manager registers its
// host, and cutting it off then would be for good. Such an agent can do
// nothing but wait (no report is made and no secret released for a host
// that is not registered, and it cannot renew its credentials); deleting or
// disabling a host revokes its credentials at once (HostRemoved), this is
// the safety net. It does nothing without an embedded server.
func (r *Renewer) Reconcile(ctx context.Context) {
	if r.srv == nil {
		return
	}
	if err := r.auth.PruneKeys(ctx); err != nil {
		r.logger.Warn("bus credentials: prune expired keys", keyErr, err.Error())
	}
	conns, err := r.srv.userConns()
	if err != nil {
		r.logger.Warn("bus credentials: list agents", keyErr, err.Error())
		return
	}
	// Read after the connections: a host registered meanwhile is seen
	// registered, one removed meanwhile is cut off now or at the next round.
	hosts, err := r.hosts.HostsAllowed(ctx)
	if err != nil {
		r.logger.Warn("bus credentials: list hosts", keyErr, err.Error())
		return
	}
	seen := map[string]bool{}
	for _, c := range conns {
		host := c.Owner.Name
		if c.Owner.Kind != OwnerAgent || seen[host] {
			continue
		}
		seen[host] = true
		allowed, registered := hosts[host]
		if r.cutOff(host, allowed, registered) {
			r.hostRemoved(ctx, host)
		}
	}
}

// cutOff tells whether Reconcile revokes the connected agent of host,
// which is allowed bus credentials, or registered but disabled, or not
// registered.
func (r *Renewer) cutOff(host string, allowed, registered bool) bool {
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	if allowed {
		if r.seen == nil {
			r.seen = map[string]bool{}
		}
		r.seen[host] = true
		return false
	}
	if registered || r.seen[host] {
		delete(r.seen, host)
		return true
	}
	return false
}

// HostRemoved revokes the bus credentials of hostID (call it when the host is
// deleted or disabled). It logs instead of failing: the caller's change has
// happened already, and the reconciliation cuts off a connected agent of a
// host that is not allowed anyway.
func (r *Renewer) HostRemoved(hostID string) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	r.hostRemoved(ctx, hostID)
}

func (r *Renewer) hostRemoved(ctx context.Context, hostID string) {
	if err := r.RevokeHost(ctx, hostID); err != nil {
		r.logger.Error("bus credentials: revoke", keyHost, hostID, keyErr, err.Error())
		return
	}
	r.logger.Info("bus credentials revoked", keyHost, hostID)
}

// RevokeHost revokes the bus credentials of the agent of hostID: in the
// ledger, and with the embedded server also in the running server, which
// closes its connections. With an external NATS server only the ledger
// learns of it (and renewals are refused while the host is not allowed).
func (r *Renewer) RevokeHost(ctx context.Context, hostID string) error {
	return r.revoke(ctx, Owner{OwnerAgent, hostID}, (*Server).RevokeHost)
}

// RevokeManager revokes the bus credentials of the attestation manager name
// issued so far: in the ledger, and with the embedded server in the running
// server, which closes its connections. Credentials issued to that name
// later (POST /aas/v1/credentials) work.
func (r *Renewer) RevokeManager(ctx context.Context, name string) error {
	if err := r.revoke(ctx, Owner{OwnerManager, name}, (*Server).RevokeManager); err != nil {
		return err
	}
	r.logger.Info("bus credentials revoked", keyManager, name)
	return nil
}

// RevokeService revokes the bus credentials of the verifier service name
// issued so far (Server.RevokeService): in the ledger, and with the embedded
// server in the running server, which closes their connections. With an
// external NATS cluster only the ledger learns of it, until the next
// verifier nats-export.
func (r *Renewer) RevokeService(ctx context.Context, name string) error {
	if err := r.revoke(ctx, Owner{OwnerService, name}, (*Server).RevokeService); err != nil {
		return err
	}
	r.logger.Info("bus credentials revoked", keyService, name)
	return nil
}

// revoke revokes the credentials of owner: in the ledger, or with the
// embedded server through inServer, which also closes their connections, and
// then tells the other replicas.
func (r *Renewer) revoke(ctx context.Context, owner Owner, inServer func(*Server, context.Context, string) error) error {
	if r.srv == nil {
		if err := bus.ValidateHostID(owner.Name); err != nil {
			return fmt.Errorf("revoke %s: %w", owner, err)
		}
		return r.auth.revoke(ctx, owner, nil)
	}
	if err := inServer(r.srv, ctx, owner.Name); err != nil {
		return err
	}
	announceRevocation(r.nc.Load(), r.logger)
	return nil
}

// renew answers one renewal. The host id comes from the subject, which the
// server lets only that host's agent publish to (and only while its
// credentials are valid and not revoked); the answer goes to the subject only
// that agent may read, in the grammar of the renewal, whatever reply subject
// the request named. The credentials are of the grammar the agent asked for
// (bus.AgentGrammar.Granted), or of the renewal's when that is newer: an
// agent that renews with two prefixes uses them.
func (r *Renewer) renew(ctx context.Context, nc *nats.Conn, m *nats.Msg) {
	var g bus.AgentGrammar
	host, req, ok := r.request(m, func(s string) (host string, err error) {
		host, g, err = bus.ParseRenewSubject(s)
		return host, err
	}, keyHost)
	if !ok {
		return
	}
	reply := bus.RenewReply{Nonce: req.Nonce}
	removed := false
	ok, err := r.hosts.HostAllowed(ctx, host)
	switch {
	case err != nil:
		r.logger.Warn("bus credentials: look up host", keyHost, host, keyErr, err.Error())
		reply.Error = "the verifier cannot check the host now, retry later"
	case !ok:
		reply.Error = "host " + host + " is not registered or is disabled"
		removed = true
	default:
		creds, err := r.auth.agentCredentials(ctx, host, max(req.Grammar.Granted(), g), r.cfg.TTL)
		r.fill(&reply, creds, err, keyHost, host)
	}
	r.answer(nc, g.IssuedSubject, reply, keyHost, host)
	if removed {
		// After the answer, so that the agent learns why it is cut off.
		_ = nc.Flush()
		r.hostRemoved(ctx, host)
	}
}

// renewManager answers one renewal of an attestation manager. The name comes
// from the subject, which the server lets only that manager publish to (and
// only while its credentials are valid and not revoked); the answer goes to
// the subject only that manager may read. Managers are not registered
// anywhere: a manager credential is cut off by RevokeManager or its expiry.
func (r *Renewer) renewManager(ctx context.Context, nc *nats.Conn, m *nats.Msg) {
	name, req, ok := r.request(m, bus.ParseManagerRenewSubject, keyManager)
	if !ok {
		return
	}
	reply := bus.RenewReply{Nonce: req.Nonce}
	creds, err := r.auth.managerCredentials(ctx, name, r.cfg.TTL)
	r.fill(&reply, creds, err, keyManager, name)
	r.answer(nc, bus.ManagerIssuedSubject, reply, keyManager, name)
}

// RenewalsLimited is the number of renewals dropped over the limit.
func (r *Renewer) RenewalsLimited() uint64 { return r.limit.Limited() }

// request reads a renewal: who asks (from the subject, by parse; logged
// under key) and the request; false when the renewal is malformed.
func (r *Renewer) request(m *nats.Msg, parse func(string) (string, error), key string) (string, bus.RenewRequest, bool) {
	who, err := parse(m.Subject)
	if err != nil {
		r.logger.Warn("bus credentials: renewal on an unexpected subject", keyErr, err.Error())
		return "", bus.RenewRequest{}, false
	}
	// Before anything is decoded or logged: a flood costs a map lookup a
	// message and one log line a turn.
	if ok, tell := r.limit.Allow(key + "/" + who); !ok {
		if tell {
			r.logger.Warn("bus credentials: renewals come faster than the limit; dropped until the next turn",
				key, who, keyBurst, r.cfg.RenewalBurst, keyEvery, r.cfg.RenewalInterval)
		}
		return "", bus.RenewRequest{}, false
	}
	var req bus.RenewRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.Nonce == "" || len(req.Nonce) > 128 {
		r.logger.Warn("bus credentials: malformed renewal", key, who)
		return "", bus.RenewRequest{}, false
	}
	return who, req, true
}

// fill puts the credentials minted for who (logged under key) into reply,
// or the error that they could not be minted.
func (r *Renewer) fill(reply *bus.RenewReply, creds []byte, err error, key, who string) {
	if err != nil {
		r.logger.Error("bus credentials: mint", key, who, keyErr, err.Error())
		reply.Error = "the verifier could not issue credentials"
		return
	}
	reply.Credentials = string(creds)
	r.logger.Info("bus credentials renewed", key, who, keyExpires, time.Now().Add(r.cfg.TTL).UTC())
}

// answer publishes reply on issued(who), the subject only who may read,
// whatever reply subject the request named.
func (r *Renewer) answer(nc *nats.Conn, issued func(string) (string, error), reply bus.RenewReply, key, who string) {
	subject, err := issued(who)
	var body []byte
	if err == nil {
		body, err = json.Marshal(reply)
	}
	if err == nil {
		err = nc.Publish(subject, body)
	}
	if err != nil {
		r.logger.Warn("bus credentials: answer", key, who, keyErr, err.Error())
	}
}
