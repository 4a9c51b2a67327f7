package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/signerid"
	"trustedcompute.io/tc/internal/tpm"
)

// Key broker secrets on the node (docs/secrets.md). The agent asks the
// verifier for the secrets its configuration names; each comes sealed to
// this TPM (and, where the policy says so, to its PCR values), and the TPM
// unwraps it. The agent keeps the values in memory, or in files on a tmpfs
// directory that a trusted workload mounts, never on disk. A secret is
// leased: the agent asks again before the lease ends, takes a new version
// when the verifier rotated it, and drops the secret when a renewal is
// refused, when the verifier pushes a revocation, or when the lease ends
// without a renewal.

// SecretTPM unwraps a released secret (NodeTPM, through *tpm.TPM).
type SecretTPM interface {
	Import(tpm.ImportBlob) ([]byte, error)
}

// SecretsConfig configures the secrets of a node.
type SecretsConfig struct {
	// Names are the secrets to ask for.
	Names []string
	// Dir, when set, receives each secret as the file Dir/<name> (0400);
	// it must be on a tmpfs. Empty keeps the secrets in memory only.
	Dir string
	// Retry is how long to wait before asking again when nothing is held
	// or the verifier did not answer (default 30s).
	Retry time.Duration
	// Roots are the CMS roots (the bus's CA file): an answer is taken only
	// when it is signed by the verifier's signing identity under them
	// (signerid.Verify). Without roots every answer is refused.
	Roots *x509.CertPool
}

// Secrets keeps the node's released secrets.
type Secrets struct {
	cfg    SecretsConfig
	a      *Agent
	tpm    SecretTPM
	logger *slog.Logger

	mu   sync.Mutex
	held map[string]heldSecret
	// conn and sub are the attached connection and its subscription;
	// grammar is the bus.AgentGrammar of its credentials.
	conn    Conn
	sub     bus.Subscription
	grammar bus.AgentGrammar
	// changed is signalled when an answer changes what is held.
	changed chan struct{}
	// nonces are those of the last outstanding requests (at most
	// maxOutstanding), oldest first; an answer that releases a secret must
	// echo one of them, which it uses up.
	nonces [][]byte
	// lastIssued is the issue time of the newest answer taken: a pushed
	// revocation must be newer.
	lastIssued time.Time
	// lastRefusal is the issue time of the newest answer taken that
	// refused or revoked a secret: an answer that releases must not be
	// older, so a release held back on the bus cannot undo a revocation.
	lastRefusal time.Time
}

// Limits of the answers taken.
const (
	// maxOutstanding is how many requests may await their answer.
	maxOutstanding = 4
	// maxRevocationSkew bounds the age, and the lead, of a pushed
	// revocation's issue time.
	maxRevocationSkew = 5 * time.Minute
)

// errUnsigned is the refusal of an answer that the verifier did not sign.
var errUnsigned = errors.New("unsigned secret answer")

type heldSecret struct {
	version int64
	value   []byte
	expires time.Time
}

// Log field keys of secrets.
const (
	keySecretName = "secret_name"
	keyVersion    = "secret_version"
	keyReason     = "reason"
)

// ErrNotTmpfs is wrapped by the error about a secrets directory that is not
// on a tmpfs.
var ErrNotTmpfs = errors.New("not on a tmpfs")

// NewSecrets returns the keeper of the node's secrets. It uses the agent's
// TPM lock, so that unwrapping does not interleave with quotes.
func (a *Agent) NewSecrets(cfg SecretsConfig, t SecretTPM) (*Secrets, error) {
	if cfg.Dir != "" {
		if err := checkTmpfs(cfg.Dir); err != nil {
			return nil, fmt.Errorf("secrets directory %s: %w", cfg.Dir, err)
		}
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 30 * time.Second
	}
	return &Secrets{cfg: cfg, a: a, tpm: t, logger: a.logger, held: map[string]heldSecret{}, changed: make(chan struct{}, 1)}, nil
}

// Conn is the bus as the keeper uses it (a bus.Conn).
type Conn interface {
	Publish(subject string, data []byte) error
	Subscribe(subject string, h func(*bus.Msg)) (bus.Subscription, error)
}

// connected tells Config.OnConnect of nc, a connection the agent serves on,
// with the grammar of creds, the credentials nc was made with (nil:
// unknown, bus.GrammarSplit).
func (a *Agent) connected(nc bus.Conn, creds *bus.Credentials) {
	g := bus.GrammarSplit
	if creds != nil {
		g = creds.AgentGrammar()
	}
	if a.cfg.OnConnect != nil {
		a.cfg.OnConnect(nc, g)
	}
}

// Attach makes nc the connection the keeper asks and listens on (ctx is
// for the answers' handling and logs), in g, the grammar of the
// credentials nc was made with: it subscribes to this host's answers
// there, leaves the previous connection and asks at once. The agent calls
// it with each connection it serves on (Config.OnConnect): the first, and
// each one a credential renewal makes.
func (s *Secrets) Attach(ctx context.Context, nc Conn, g bus.AgentGrammar) error {
	answers, err := g.SecretAnswerSubject(s.a.cfg.HostID)
	if err != nil {
		return err
	}
	sub, err := nc.Subscribe(answers, func(m *bus.Msg) { s.handle(ctx, m.Data) })
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", answers, err)
	}
	s.mu.Lock()
	old := s.sub
	s.conn, s.sub, s.grammar = nc, sub, g
	s.mu.Unlock()
	if old != nil {
		_ = old.Unsubscribe()
	}
	s.ask(ctx)
	return nil
}

// ask publishes a request for the configured secrets on the attached
// connection.
func (s *Secrets) ask(ctx context.Context) {
	s.mu.Lock()
	nc, g := s.conn, s.grammar
	s.mu.Unlock()
	if nc == nil || len(s.cfg.Names) == 0 {
		return
	}
	nonce := make([]byte, bus.SecretNonceSize)
	request, err := g.SecretRequestSubject(s.a.cfg.HostID)
	if err == nil {
		_, err = rand.Read(nonce)
	}
	if err == nil {
		s.mu.Lock()
		s.nonces = append(s.nonces, nonce)
		if len(s.nonces) > maxOutstanding {
			s.nonces = slices.Delete(s.nonces, 0, len(s.nonces)-maxOutstanding)
		}
		s.mu.Unlock()
		msg, _ := json.Marshal(bus.SecretRequest{Names: s.cfg.Names, Nonce: nonce})
		err = nc.Publish(request, msg)
	}
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "secret request not sent", slog.String(keyError, err.Error()))
	}
}

// Run keeps the secrets leased until ctx ends, asking on the attached
// connection; then it drops them all.
func (s *Secrets) Run(ctx context.Context) error {
	defer s.dropAll(ctx)
	defer func() {
		s.mu.Lock()
		sub := s.sub
		s.mu.Unlock()
		if sub != nil {
			_ = sub.Unsubscribe()
		}
	}()
	for {
		timer := time.NewTimer(s.nextRenewal())
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-s.changed:
			// An answer or a pushed revocation: the next renewal is due
			// by the leases held now.
			timer.Stop()
			continue
		case <-timer.C:
			s.expire(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		s.ask(ctx)
	}
}

// nextRenewal is when to ask again: at two thirds of the shortest
// remaining lease, at least a second from now; Retry when nothing is held.
func (s *Secrets) nextRenewal() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) == 0 {
		return s.cfg.Retry
	}
	now := s.a.now()
	next := time.Duration(1<<63 - 1)
	for _, h := range s.held {
		next = min(next, h.expires.Sub(now)*2/3)
	}
	return max(next, time.Second)
}

// Get returns the value of a held secret.
func (s *Secrets) Get(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[name]
	if !ok || !s.a.now().Before(h.expires) {
		return nil, false
	}
	return slices.Clone(h.value), true
}

// handle takes one answer of the verifier, when it is signed for this
// host and fresh (open); a refused answer changes nothing that is held.
func (s *Secrets) handle(ctx context.Context, data []byte) {
	ans, err := s.open(data)
	if errors.Is(err, errUnsigned) {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "unsigned secret answer refused")
		return
	}
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "secret answer refused", slog.String(keyError, err.Error()))
		return
	}
	for _, r := range ans.Refused {
		s.drop(ctx, r.Name, r.Reason)
	}
	for _, rel := range ans.Released {
		if !slices.Contains(s.cfg.Names, rel.Name) {
			continue
		}
		value, err := s.unwrap(rel)
		if err != nil {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "released secret does not unwrap", slog.String(keySecretName, rel.Name), slog.String(keyError, err.Error()))
			s.drop(ctx, rel.Name, "unwrap failed")
			continue
		}
		if err := s.keep(rel, value); err != nil {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "released secret not kept", slog.String(keySecretName, rel.Name), slog.String(keyError, err.Error()))
			continue
		}
		s.logger.LogAttrs(ctx, slog.LevelInfo, "secret released", slog.String(keySecretName, rel.Name),
			slog.Int64(keyVersion, rel.Version), slog.Time(keyExpires, rel.ExpiresAt))
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// open returns the signed payload of an answer when the answer may be
// taken: it verifies (signerid.VerifyJWS: the verifier's signing identity
// under the configured roots, now), it is for this host, and it
// either echoes the nonce of an outstanding request (which it uses up) and,
// when it releases, was not issued before the last refusal taken, or,
// without a nonce, only refuses secrets, was issued within
// maxRevocationSkew of now and is newer than the last answer taken.
func (s *Secrets) open(data []byte) (bus.SignedSecretAnswer, error) {
	var ans bus.SecretAnswer
	if err := json.Unmarshal(data, &ans); err != nil {
		return bus.SignedSecretAnswer{}, fmt.Errorf("malformed secret answer: %w", err)
	}
	if ans.Signed == "" {
		return bus.SignedSecretAnswer{}, errUnsigned
	}
	now := s.a.now()
	payload, err := signerid.VerifyJWS(ans.Signed, bus.SecretAnswerType, s.cfg.Roots, now)
	if err != nil {
		return bus.SignedSecretAnswer{}, err
	}
	var sa bus.SignedSecretAnswer
	if err := json.Unmarshal(payload, &sa); err != nil {
		return bus.SignedSecretAnswer{}, fmt.Errorf("malformed signed secret answer: %w", err)
	}
	if sa.HostID != s.a.cfg.HostID {
		return bus.SignedSecretAnswer{}, fmt.Errorf("the answer is for host %q", sa.HostID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(sa.Nonce) > 0 {
		i := slices.IndexFunc(s.nonces, func(n []byte) bool { return bytes.Equal(n, sa.Nonce) })
		if i < 0 {
			return bus.SignedSecretAnswer{}, errors.New("the answer's nonce is of no outstanding request")
		}
		if len(sa.Released) > 0 && sa.IssuedAt.Before(s.lastRefusal) {
			return bus.SignedSecretAnswer{}, fmt.Errorf("a release issued at %s is older than the refusal taken, issued at %s",
				sa.IssuedAt.Format(time.RFC3339Nano), s.lastRefusal.Format(time.RFC3339Nano))
		}
		s.nonces = slices.Delete(s.nonces, i, i+1)
	} else {
		if len(sa.Released) > 0 {
			return bus.SignedSecretAnswer{}, errors.New("an answer without a nonce releases secrets")
		}
		if d := now.Sub(sa.IssuedAt); d > maxRevocationSkew || d < -maxRevocationSkew {
			return bus.SignedSecretAnswer{}, fmt.Errorf("a revocation issued at %s is not within %s of now", sa.IssuedAt.Format(time.RFC3339), maxRevocationSkew)
		}
		if !sa.IssuedAt.After(s.lastIssued) {
			return bus.SignedSecretAnswer{}, fmt.Errorf("a revocation issued at %s is not newer than the last answer taken", sa.IssuedAt.Format(time.RFC3339))
		}
	}
	if sa.IssuedAt.After(s.lastIssued) {
		s.lastIssued = sa.IssuedAt
	}
	if len(sa.Refused) > 0 && sa.IssuedAt.After(s.lastRefusal) {
		s.lastRefusal = sa.IssuedAt
	}
	return sa, nil
}

// unwrap recovers the value under the agent's TPM lock.
func (s *Secrets) unwrap(rel bus.SealedSecret) ([]byte, error) {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	return OpenSealed(s.tpm, s.a.cfg.HostID, rel)
}

// OpenSealed recovers a released value: the TPM imports and unseals the
// key (only the TPM it was sealed to can, and only in the PCR state it was
// sealed to), which opens the value released to hostID.
func OpenSealed(t SecretTPM, hostID string, rel bus.SealedSecret) ([]byte, error) {
	key, err := t.Import(tpm.ImportBlob{Duplicate: rel.Duplicate, EncryptedSeed: rel.EncryptedSeed, PublicArea: rel.PublicArea,
		PCRs: rel.PCRs, PCRDigest: rel.PCRDigest})
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return bus.DecryptValue(rel, key, hostID)
}

// keep holds a value, and writes it to the tmpfs directory when there is one.
func (s *Secrets) keep(rel bus.SealedSecret, value []byte) error {
	if s.cfg.Dir != "" {
		path := filepath.Join(s.cfg.Dir, rel.Name)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, value, 0o400); err != nil {
			return fmt.Errorf("write secret file: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("write secret file: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.held[rel.Name]; ok {
		clear(old.value)
	}
	s.held[rel.Name] = heldSecret{version: rel.Version, value: value, expires: rel.ExpiresAt}
	return nil
}

// drop forgets a secret and removes its file.
func (s *Secrets) drop(ctx context.Context, name, reason string) {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if s.cfg.Dir != "" && slices.Contains(s.cfg.Names, name) {
		if err := os.Remove(filepath.Join(s.cfg.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "secret file not removed", slog.String(keySecretName, name), slog.String(keyError, err.Error()))
		}
	}
	if ok {
		clear(h.value)
		s.logger.LogAttrs(ctx, slog.LevelWarn, "secret dropped", slog.String(keySecretName, name), slog.String(keyReason, reason))
	}
}

// expire drops the secrets whose lease ended.
func (s *Secrets) expire(ctx context.Context) {
	s.mu.Lock()
	var gone []string
	for name, h := range s.held {
		if !s.a.now().Before(h.expires) {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.drop(ctx, name, "lease expired")
	}
}

func (s *Secrets) dropAll(ctx context.Context) {
	for _, name := range s.cfg.Names {
		s.drop(ctx, name, "agent stopping")
	}
}
