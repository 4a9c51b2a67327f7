package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// Credentials are parsed user credentials (a .creds file: user JWT and user
// seed). They are immutable: a renewal yields new Credentials.
type Credentials struct {
	raw    []byte
	jwt    string
	seed   string
	claims userClaims
}

// ParseCredentials parses a .creds file's contents: the decorated user JWT,
// whose signature by its account is checked, and the decorated user seed,
// which must belong to the JWT's subject.
func ParseCredentials(creds []byte) (*Credentials, error) {
	blocks := decoratedBlocks(string(creds), 2)
	if len(blocks) != 2 {
		return nil, errors.New("credentials: want a decorated user jwt and a decorated user seed")
	}
	claims, err := decodeUserJWT(blocks[0])
	if err != nil {
		return nil, fmt.Errorf("credentials: user jwt: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(blocks[1]))
	if err != nil {
		return nil, fmt.Errorf("credentials: user seed: %w", err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("credentials: user key: %w", err)
	}
	if pub != claims.Subject {
		return nil, errors.New("credentials: the user seed does not belong to the user jwt")
	}
	return &Credentials{raw: append([]byte(nil), creds...), jwt: blocks[0], seed: blocks[1], claims: *claims}, nil
}

// JWT is the user JWT, sent to the server when connecting.
func (c *Credentials) JWT() string { return c.jwt }

// Sign signs the server's nonce with the user seed, proving the connection
// holds the JWT's key.
func (c *Credentials) Sign(nonce []byte) ([]byte, error) {
	kp, err := nkeys.FromSeed([]byte(c.seed))
	if err != nil {
		return nil, fmt.Errorf("credentials: user seed: %w", err)
	}
	defer kp.Wipe()
	return kp.Sign(nonce)
}

// Bytes returns the .creds file's contents (they carry the user seed).
func (c *Credentials) Bytes() []byte { return append([]byte(nil), c.raw...) }

// Name is the user name in the JWT (agent:<host-id>, manager:<name>, ...).
func (c *Credentials) Name() string { return c.claims.Name }

// UserPublicKey is the user's public key, the key a revocation names.
func (c *Credentials) UserPublicKey() string { return c.claims.Subject }

// Issuer is the public key of the account that signed the JWT.
func (c *Credentials) Issuer() string { return c.claims.Issuer }

// IssuedAt is when the JWT was signed.
func (c *Credentials) IssuedAt() time.Time { return time.Unix(c.claims.IssuedAt, 0) }

// Expires is when the server stops accepting the credentials (zero: never).
func (c *Credentials) Expires() time.Time {
	if c.claims.Expires == 0 {
		return time.Time{}
	}
	return time.Unix(c.claims.Expires, 0)
}

// RenewAt is when a holder should ask for fresh credentials: two thirds into
// their lifetime, so that a verifier outage of up to a third of the lifetime
// costs nothing. Zero for credentials that never expire.
func (c *Credentials) RenewAt() time.Time {
	exp := c.Expires()
	if exp.IsZero() {
		return time.Time{}
	}
	issued := c.IssuedAt()
	return issued.Add(exp.Sub(issued) * 2 / 3)
}

// RenewRequest is what an agent publishes on its renewal subject
// (AgentGrammar.RenewSubject). Who asks is the host id of the subject,
// which the server lets only that host's agent use.
type RenewRequest struct {
	// Nonce is echoed in the answer so the agent can tell it apart from an
	// answer to an earlier request.
	Nonce string `json:"nonce"`
	// Grammar is the grammar of the credentials the agent asks for; the
	// verifier issues AgentGrammar.Granted (zero, from agents before the
	// grammar: GrammarSplit; a renewal on a GrammarTwoPrefixes subject
	// gets GrammarTwoPrefixes). Managers send none.
	Grammar AgentGrammar `json:"grammar,omitempty"`
}

// RenewReply is the verifier's answer on the issued subject.
type RenewReply struct {
	Nonce string `json:"nonce"`
	// Credentials are the new .creds file; empty when Error is set.
	Credentials string `json:"credentials,omitempty"`
	// Error says why the verifier refused (host removed, say).
	Error string `json:"error,omitempty"`
}

// ErrRenewalRefused is wrapped by RenewCredentials when the verifier answered
// with a refusal.
var ErrRenewalRefused = errors.New("credential renewal refused")

// renewWait bounds a renewal whose context has no deadline.
const renewWait = 30 * time.Second

// RenewCredentials asks the verifier, over nc (connected with current), for
// fresh credentials of the agent of hostID and waits for the answer until ctx
// ends. It asks in the grammar of current and for GrammarTwoPrefixes
// credentials, which a verifier before the grammar does not know of (it
// answers with GrammarSplit ones). The answer must be user credentials with
// the same name, signed by the same account as current.
func RenewCredentials(ctx context.Context, nc Conn, hostID string, current *Credentials) (*Credentials, error) {
	g := current.AgentGrammar()
	return renewOn(ctx, nc, hostID, g.RenewSubject, g.IssuedSubject, GrammarTwoPrefixes, current)
}

// ManagerUserPrefix starts the user name of every attestation manager:
// manager:<name>.
const ManagerUserPrefix = "manager:"

// AgentUserPrefix starts the user name of every trust agent:
// agent:<host-id>.
const AgentUserPrefix = "agent:"

// AgentHostID returns the host id of an agent's user name
// (agent:<host-id>).
func AgentHostID(userName string) (string, bool) {
	host, ok := strings.CutPrefix(userName, AgentUserPrefix)
	if !ok || ValidateHostID(host) != nil {
		return "", false
	}
	return host, true
}

// ManagerName returns the name of an attestation manager's user name
// (manager:<name>).
func ManagerName(userName string) (string, bool) {
	name, ok := strings.CutPrefix(userName, ManagerUserPrefix)
	if !ok || ValidateHostID(name) != nil {
		return "", false
	}
	return name, true
}

// RenewManagerCredentials is RenewCredentials for an attestation manager: it
// asks on the renewal subject of the manager that current names.
func RenewManagerCredentials(ctx context.Context, nc Conn, current *Credentials) (*Credentials, error) {
	name, ok := ManagerName(current.Name())
	if !ok {
		return nil, fmt.Errorf("renew credentials: %q is not an attestation manager", current.Name())
	}
	return renewOn(ctx, nc, name, ManagerRenewSubject, ManagerIssuedSubject, 0, current)
}

// Renewal retry bounds (see RenewRetry).
const (
	minRenewRetry = 100 * time.Millisecond
	maxRenewRetry = 5 * time.Minute
)

// RenewRetry is how long to wait after a failed renewal: a tenth of the time
// creds have left, within [100 ms, 5 min].
func RenewRetry(creds *Credentials) time.Duration {
	d := time.Until(creds.Expires()) / 10
	return min(max(d, minRenewRetry), maxRenewRetry)
}

// WaitToRenew waits until creds are due for renewal, or for retry when it
// is positive (the wait after a failed renewal). It returns false when ctx
// ends first, and waits for ctx when creds never expire.
func WaitToRenew(ctx context.Context, creds *Credentials, retry time.Duration) bool {
	if creds.RenewAt().IsZero() { // credentials that never expire
		<-ctx.Done()
		return false
	}
	wait := time.Until(creds.RenewAt())
	if retry > 0 {
		wait = retry
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// renewOn publishes a renewal on the renew subject of name, asking for
// credentials of grammar g (none: 0), and waits for its answer on the
// issued subject of name.
func renewOn(ctx context.Context, nc Conn, name string, renewSubject, issuedSubject func(string) (string, error), g AgentGrammar, current *Credentials) (*Credentials, error) {
	renew, err := renewSubject(name)
	if err != nil {
		return nil, err
	}
	issued, err := issuedSubject(name)
	if err != nil {
		return nil, err
	}
	answers := make(chan []byte, 4)
	sub, err := nc.Subscribe(issued, func(m *Msg) {
		select {
		case answers <- m.Data:
		default: // an answer this renewal cannot be waiting for
		}
	})
	if err != nil {
		return nil, fmt.Errorf("renew credentials: subscribe %s: %w", issued, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, fmt.Errorf("renew credentials: nonce: %w", err)
	}
	nonce := hex.EncodeToString(n[:])
	body, err := json.Marshal(RenewRequest{Nonce: nonce, Grammar: g})
	if err != nil {
		return nil, err
	}
	// The subscription must be in place at the server before the verifier
	// can answer.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, renewWait)
		defer cancel()
	}
	if err := nc.Flush(ctx); err != nil {
		return nil, fmt.Errorf("renew credentials: flush: %w", err)
	}
	if err := nc.Publish(renew, body); err != nil {
		return nil, fmt.Errorf("renew credentials: publish: %w", err)
	}
	for {
		var data []byte
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("renew credentials: wait for the answer: %w", ctx.Err())
		case data = <-answers:
		}
		var reply RenewReply
		if err := json.Unmarshal(data, &reply); err != nil || reply.Nonce != nonce {
			continue // an answer to someone else's (or an earlier) request
		}
		if reply.Error != "" {
			return nil, fmt.Errorf("%w: %s", ErrRenewalRefused, reply.Error)
		}
		fresh, err := ParseCredentials([]byte(reply.Credentials))
		if err != nil {
			return nil, fmt.Errorf("renew credentials: %w", err)
		}
		if fresh.Name() != current.Name() || fresh.Issuer() != current.Issuer() {
			return nil, fmt.Errorf("renew credentials: got credentials of %q from %s, want %q from %s",
				fresh.Name(), fresh.Issuer(), current.Name(), current.Issuer())
		}
		return fresh, nil
	}
}
