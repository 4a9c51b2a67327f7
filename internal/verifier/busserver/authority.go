package busserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"trustedcompute.io/tc/internal/bus"
)

// SecretStore keeps the seeds of the authority. The verifier's store
// implements it; GetSecret returns an error wrapping the store's not-found
// error for a name never created.
type SecretStore interface {
	GetSecret(ctx context.Context, name string) ([]byte, error)
	CreateSecret(ctx context.Context, name string, value []byte) error
}

// Names of the seeds in the SecretStore.
//
//nolint:gosec // G101: names of stored secrets, not secrets
const (
	OperatorSeedSecret      = "nats-operator-seed"
	AccountSeedSecret       = "nats-account-tc-seed"
	SystemAccountSeedSecret = "nats-account-sys-seed"
)

// Names written into the JWTs (for people reading them, not for auth).
const (
	operatorName      = "trusted-compute"
	accountName       = "TC"
	systemAccountName = "SYS"
)

// ResponseWindow is how long an agent may take to answer a request it
// received (one answer per request). Long enough for a TPM to create an RSA
// key, short enough that an old reply subject is useless.
const ResponseWindow = time.Minute

// MaxCredentialsTTL bounds the lifetime of any user credentials.
const MaxCredentialsTTL = 366 * 24 * time.Hour

// Authority issues NATS credentials in the decentralized JWT model: an
// operator signs the accounts, the account "TC" signs every user. It keeps
// only the account key in memory (the operator key signs the account JWTs at
// start and is wiped); the seeds persist in a SecretStore. The user keys it
// issues to agents and managers, and their revocations, go to its Ledger.
type Authority struct {
	account     nkeys.KeyPair
	operatorPub string
	accountPub  string
	systemPub   string
	operatorJWT string
	accountJWTs map[string]string // account public key -> account JWT
	now         func() time.Time

	ledger Ledger
}

// AuthorityOption adjusts NewAuthority.
type AuthorityOption func(*authorityOptions)

type authorityOptions struct {
	ledger Ledger
}

// WithLedger records issued and revoked user keys in l, and signs the keys l
// holds as revoked into the account TC at start, so that a server started
// with this authority refuses them from its first connection.
func WithLedger(l Ledger) AuthorityOption { return func(o *authorityOptions) { o.ledger = l } }

// ledgerTimeout bounds one ledger call made without a caller's context.
const ledgerTimeout = 10 * time.Second

// NewAuthority loads the operator and account seeds from secrets, creating
// them on first start. notFound is the error the store wraps when a secret
// does not exist (matched with errors.Is).
//
// Two verifier replicas may start together: if CreateSecret fails (for
// instance because the other replica created the secret first) the secret is
// read again and the stored value wins, so every replica ends up with the same
// keys. If the read fails too, the CreateSecret error is returned.
func NewAuthority(ctx context.Context, secrets SecretStore, notFound error, opts ...AuthorityOption) (*Authority, error) {
	var o authorityOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.ledger == nil {
		o.ledger = newMemLedger()
	}
	if secrets == nil || notFound == nil {
		return nil, errors.New("nats authority: secret store and its not-found error are required")
	}
	op, err := loadOrCreateKey(ctx, secrets, notFound, OperatorSeedSecret, nkeys.PrefixByteOperator)
	if err != nil {
		return nil, err
	}
	acc, err := loadOrCreateKey(ctx, secrets, notFound, AccountSeedSecret, nkeys.PrefixByteAccount)
	if err != nil {
		return nil, err
	}
	sys, err := loadOrCreateKey(ctx, secrets, notFound, SystemAccountSeedSecret, nkeys.PrefixByteAccount)
	if err != nil {
		return nil, err
	}
	defer op.Wipe() // it signs the accounts below and nothing else
	a := &Authority{account: acc, now: time.Now, ledger: o.ledger}
	if a.operatorPub, err = op.PublicKey(); err != nil {
		return nil, fmt.Errorf("nats authority: operator public key: %w", err)
	}
	if a.accountPub, err = acc.PublicKey(); err != nil {
		return nil, fmt.Errorf("nats authority: account public key: %w", err)
	}
	if a.systemPub, err = sys.PublicKey(); err != nil {
		return nil, fmt.Errorf("nats authority: system account public key: %w", err)
	}
	sys.Wipe() // only its public key is needed from now on

	oc := jwt.NewOperatorClaims(a.operatorPub)
	oc.Name = operatorName
	oc.SystemAccount = a.systemPub
	if a.operatorJWT, err = oc.Encode(op); err != nil {
		return nil, fmt.Errorf("nats authority: encode operator jwt: %w", err)
	}
	revoked, err := a.ledger.RevokedKeys(ctx, a.now())
	if err != nil {
		return nil, fmt.Errorf("nats authority: %w", err)
	}
	a.accountJWTs = make(map[string]string, 2)
	for pub, name := range map[string]string{a.accountPub: accountName, a.systemPub: systemAccountName} {
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if pub == a.accountPub {
			revokeKeys(ac, revoked)
		}
		encoded, err := ac.Encode(op)
		if err != nil {
			return nil, fmt.Errorf("nats authority: encode account %s jwt: %w", name, err)
		}
		a.accountJWTs[pub] = encoded
	}
	return a, nil
}

func loadOrCreateKey(ctx context.Context, secrets SecretStore, notFound error, name string, prefix nkeys.PrefixByte) (nkeys.KeyPair, error) {
	seed, err := secrets.GetSecret(ctx, name)
	if errors.Is(err, notFound) {
		kp, cerr := createKey(prefix)
		if cerr != nil {
			return nil, fmt.Errorf("nats authority: create %s: %w", name, cerr)
		}
		newSeed, cerr := kp.Seed()
		if cerr != nil {
			return nil, fmt.Errorf("nats authority: seed of %s: %w", name, cerr)
		}
		cerr = secrets.CreateSecret(ctx, name, newSeed)
		if cerr == nil {
			return kp, nil
		}
		kp.Wipe()
		// Lost a race with another replica, or the store is failing: the
		// stored value wins if there is one.
		seed, err = secrets.GetSecret(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("nats authority: store %s: %w", name, cerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nats authority: read %s: %w", name, err)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("nats authority: parse %s: %w", name, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats authority: public key of %s: %w", name, err)
	}
	if err := nkeys.CompatibleKeyPair(kp, prefix); err != nil {
		return nil, fmt.Errorf("nats authority: %s holds a %s key, want %s: %w", name, nkeys.Prefix(pub), prefix, err)
	}
	return kp, nil
}

func createKey(prefix nkeys.PrefixByte) (nkeys.KeyPair, error) {
	switch prefix {
	case nkeys.PrefixByteOperator:
		return nkeys.CreateOperator()
	case nkeys.PrefixByteAccount:
		return nkeys.CreateAccount()
	}
	return nil, fmt.Errorf("unsupported key type %s", prefix)
}

// OperatorJWT is the operator JWT the server trusts (for an external NATS
// server, write it to its operator file).
func (a *Authority) OperatorJWT() string { return a.operatorJWT }

// AccountPublicKey is the public key of the account "TC" all users belong to.
func (a *Authority) AccountPublicKey() string { return a.accountPub }

// SystemAccountPublicKey is the public key of the system account. No
// credentials are ever issued for it.
func (a *Authority) SystemAccountPublicKey() string { return a.systemPub }

// AccountJWTs maps account public keys to their JWTs: the preload of a memory
// resolver (or the contents of an external server's resolver).
func (a *Authority) AccountJWTs() map[string]string {
	m := make(map[string]string, len(a.accountJWTs))
	for k, v := range a.accountJWTs {
		m[k] = v
	}
	return m
}

// AgentCredentials issues the credentials of the trust agent of hostID in
// grammar g (bus.AgentGrammar): it may subscribe to trust-agent.<host-id>.>
// and publish to trust-events.<host-id>.> (and, in bus.GrammarSplit, to its
// own credential and secret subjects) only, and answer once, within
// ResponseWindow, each request it received. It may connect over TCP only.
func (a *Authority) AgentCredentials(hostID string, g bus.AgentGrammar, ttl time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	return a.agentCredentials(ctx, hostID, g, ttl)
}

func (a *Authority) agentCredentials(ctx context.Context, hostID string, g bus.AgentGrammar, ttl time.Duration) ([]byte, error) {
	sub, pub, err := bus.AgentSubjects(hostID, g)
	if err != nil {
		return nil, fmt.Errorf("agent credentials: %w", err)
	}
	perms := jwt.Permissions{
		Sub:  jwt.Permission{Allow: sub},
		Pub:  jwt.Permission{Allow: pub},
		Resp: &jwt.ResponsePermission{MaxMsgs: 1, Expires: ResponseWindow},
	}
	return a.recordedCredentials(ctx, Owner{OwnerAgent, hostID}, bus.AgentUserPrefix+hostID, perms, ttl, jwt.ConnectionTypeStandard)
}

// recordedCredentials issues user credentials for owner and records the key
// in the ledger; credentials whose key could not be recorded are not handed
// out (they could not be revoked after a restart).
func (a *Authority) recordedCredentials(ctx context.Context, owner Owner, name string, perms jwt.Permissions, ttl time.Duration, connTypes ...string) ([]byte, error) {
	creds, pub, exp, err := a.userCredentials(name, perms, ttl, connTypes...)
	if err != nil {
		return nil, err
	}
	if err := a.ledger.RecordKeys(ctx, UserKey{Owner: owner, PublicKey: pub, Expires: time.Unix(exp, 0)}); err != nil {
		return nil, fmt.Errorf("credentials for %s: record key: %w", name, err)
	}
	return creds, nil
}

// revoke revokes every key of owner in the ledger, and the keys in extra
// (found on connections, perhaps issued before the ledger knew them).
func (a *Authority) revoke(ctx context.Context, owner Owner, extra []UserKey) error {
	now := a.now()
	for i := range extra {
		extra[i].Revoked = now
	}
	if len(extra) > 0 {
		if err := a.ledger.RecordKeys(ctx, extra...); err != nil {
			return fmt.Errorf("revoke %s: %w", owner, err)
		}
	}
	if err := a.ledger.RevokeOwner(ctx, owner, now); err != nil {
		return fmt.Errorf("revoke %s: %w", owner, err)
	}
	return nil
}

// accountClaims returns the claims of the account TC with the ledger's
// current revocations (those of JWTs that expired are left out).
func (a *Authority) accountClaims(ctx context.Context) (*jwt.AccountClaims, error) {
	ac, err := jwt.DecodeAccountClaims(a.accountJWTs[a.accountPub])
	if err != nil {
		return nil, fmt.Errorf("nats authority: decode account jwt: %w", err)
	}
	revoked, err := a.ledger.RevokedKeys(ctx, a.now())
	if err != nil {
		return nil, fmt.Errorf("nats authority: %w", err)
	}
	ac.Revocations = nil
	revokeKeys(ac, revoked)
	return ac, nil
}

// revokeKeys revokes, in the account, every JWT of each key issued up to its
// revocation time.
func revokeKeys(ac *jwt.AccountClaims, keys []UserKey) {
	for _, k := range keys {
		ac.RevokeAt(k.PublicKey, k.Revoked)
	}
}

// PruneKeys forgets the keys whose JWTs expired: the server refuses them
// anyway.
func (a *Authority) PruneKeys(ctx context.Context) error {
	return a.ledger.PruneKeys(ctx, a.now())
}

// ServiceCredentials issues the credentials of a verifier service (HVS): it
// may publish requests to any agent (trust-agent.>) and trust reports
// (trust-reports.>), and subscribe to every agent event (trust-events.>) and to
// reply inboxes (_INBOX.>); it answers the renewals of agents and managers
// (subscribe trust-credentials.*.renew and trust-credentials-manager.*.renew,
// publish the matching .issued subjects). The key is recorded in the ledger
// under Owner{OwnerService, name}, so RevokeService cuts it off.
func (a *Authority) ServiceCredentials(name string, ttl time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	return a.ServiceCredentialsContext(ctx, name, ttl)
}

// ServiceCredentialsContext is ServiceCredentials recording the key within
// ctx.
func (a *Authority) ServiceCredentialsContext(ctx context.Context, name string, ttl time.Duration) ([]byte, error) {
	if err := bus.ValidateHostID(name); err != nil {
		return nil, fmt.Errorf("service credentials: name: %w", err)
	}
	return a.recordedCredentials(ctx, Owner{OwnerService, name}, serviceUserPrefix+name, servicePermissions(), ttl, jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess)
}

// InProcessCredentials issues the credentials of the verifier's own
// connection to its embedded server: a service's permissions, but in-process
// connections only, so they are of no use outside the process that holds
// them. They are not recorded in the ledger and no revocation touches them
// (their user name, process:<name>, is no owner's): revoking the services
// never cuts the verifier off its own bus.
func (a *Authority) InProcessCredentials(name string, ttl time.Duration) ([]byte, error) {
	if err := bus.ValidateHostID(name); err != nil {
		return nil, fmt.Errorf("in-process credentials: name: %w", err)
	}
	creds, _, _, err := a.userCredentials("process:"+name, servicePermissions(), ttl, jwt.ConnectionTypeInProcess)
	return creds, err
}

// serviceUserPrefix starts the user name of every service credential:
// service:<name>.
const serviceUserPrefix = "service:"

// servicePermissions are the permissions of a verifier service.
func servicePermissions() jwt.Permissions {
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{bus.AllAgentRequests, bus.AllReports, bus.AllIssued, bus.AllManagerIssued,
			bus.AllSecretAnswers, // key broker answers (issue 17)
			RevocationsSubject}}, // replicas tell each other of revocations (issue 14)
		Sub: jwt.Permission{Allow: jwt.StringList{bus.AllEvents, bus.AllInboxes, bus.AllRenewals, bus.AllManagerRenewals,
			bus.AllSecretRequests, // key broker requests (issue 17)
			RevocationsSubject}},
	}
}

// ManagerCredentials issues the credentials of an attestation manager: it may
// subscribe to trust reports (trust-reports.>) and to the answers to its own
// renewals (trust-credentials-manager.<name>.issued), and publish only its own
// renewal requests (trust-credentials-manager.<name>.renew). It makes no other
// requests, so it gets no _INBOX subscription either (which would let it read
// the agents' answers to the verifier).
func (a *Authority) ManagerCredentials(name string, ttl time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	return a.managerCredentials(ctx, name, ttl)
}

func (a *Authority) managerCredentials(ctx context.Context, name string, ttl time.Duration) ([]byte, error) {
	sub, pub, err := bus.ManagerSubjects(name)
	if err != nil {
		return nil, fmt.Errorf("manager credentials: %w", err)
	}
	perms := jwt.Permissions{
		Sub: jwt.Permission{Allow: append(jwt.StringList{bus.AllReports}, sub...)},
		Pub: jwt.Permission{Allow: pub},
	}
	return a.recordedCredentials(ctx, Owner{OwnerManager, name}, bus.ManagerUserPrefix+name, perms, ttl, jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess)
}

// userCredentials creates a user key, signs its JWT with the account and
// returns the .creds file (JWT and user seed), the user public key and the
// expiry (unix seconds).
func (a *Authority) userCredentials(name string, perms jwt.Permissions, ttl time.Duration, connTypes ...string) (creds []byte, pub string, expires int64, err error) {
	if ttl <= 0 || ttl > MaxCredentialsTTL {
		return nil, "", 0, fmt.Errorf("credentials for %s: ttl %s out of range (0, %s]", name, ttl, MaxCredentialsTTL)
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", 0, fmt.Errorf("credentials for %s: create user key: %w", name, err)
	}
	defer user.Wipe()
	pub, err = user.PublicKey()
	if err != nil {
		return nil, "", 0, fmt.Errorf("credentials for %s: user public key: %w", name, err)
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Expires = a.now().Add(ttl).Unix()
	uc.Permissions = perms
	uc.AllowedConnectionTypes = connTypes
	// Signed by the account key itself, so IssuerAccount stays empty.
	encoded, err := uc.Encode(a.account)
	if err != nil {
		return nil, "", 0, fmt.Errorf("credentials for %s: encode user jwt: %w", name, err)
	}
	seed, err := user.Seed()
	if err != nil {
		return nil, "", 0, fmt.Errorf("credentials for %s: user seed: %w", name, err)
	}
	creds, err = jwt.FormatUserConfig(encoded, seed)
	if err != nil {
		return nil, "", 0, fmt.Errorf("credentials for %s: format: %w", name, err)
	}
	return creds, pub, uc.Expires, nil
}
