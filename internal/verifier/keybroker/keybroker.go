// Package keybroker is the verifier's key broker (docs/secrets.md): it
// keeps secrets sealed at rest under the verifier's key-encryption key, each
// with a release policy, and releases a secret to a host only while the
// host's signed trust report is Verified, fresh enough and meets the
// policy, sealed to that host's TPM (its enrolled EK, and where the policy
// says so its attested PCR values), so that only that TPM, in that measured
// state, can unwrap it.
//
// The REST API (/hvs/v2/secrets) manages secrets and policies; a value goes
// in and never comes out. Agents ask for releases over the bus (release.go).
// Every release and refusal is written to the audit log and counted.
package keybroker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/hostlimit"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/store"
)

// SecretStore keeps the secrets (package store).
type SecretStore interface {
	CreateBrokerSecret(ctx context.Context, s store.BrokerSecret, value []byte) error
	BrokerSecretByID(ctx context.Context, id string) (store.BrokerSecret, error)
	ListBrokerSecrets(ctx context.Context) ([]store.BrokerSecret, error)
	BrokerSecretValue(ctx context.Context, id string) (store.BrokerSecret, []byte, error)
	UpdateBrokerSecret(ctx context.Context, id string, policy, value []byte, at time.Time) (store.BrokerSecret, error)
	DeleteBrokerSecret(ctx context.Context, id string) error
}

// Config tunes the broker.
type Config struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observe, when set, counts every release decision: outcome "released"
	// or "refused", and the refusal's reason ("" for a release).
	Observe func(outcome, reason string)
	// Each host has RequestBurst secret requests at once and then one every
	// RequestInterval (defaults DefaultRequestBurst and
	// DefaultRequestInterval); the requests beyond are dropped unanswered
	// before they are decoded, so that one node cannot take the broker's
	// slots (concurrentRequests) from the others.
	RequestBurst    int
	RequestInterval time.Duration
}

// The defaults of Config.RequestBurst and RequestInterval. An agent asks
// when it starts, before a lease ends and, while it holds nothing, every
// agent.SecretsConfig.Retry (default 30s).
const (
	DefaultRequestBurst    = 5
	DefaultRequestInterval = time.Second
)

// Outcomes of a release decision.
const (
	OutcomeReleased = "released"
	OutcomeRefused  = "refused"
	// OutcomeRevoked counts a revocation the broker pushed to an agent.
	OutcomeRevoked = "revoked"
)

// Log field keys of the audit log.
const (
	keyHost    = "host_id"
	keySecret  = "secret_id"
	keyName    = "secret_name"
	keyVersion = "secret_version"
	keyOutcome = "outcome"
	keyReason  = "reason"
	keyDetail  = "detail"
	keyReport  = "report_id"
	keyPCRs    = "pcrs"
	keyError   = "error"
	keyBurst   = "burst"
	keyEvery   = "every"
)

// Deps are the parts the broker uses. Secrets is required; the others are
// what releases need (release.go), and a broker without them serves only
// the API.
type Deps struct {
	Secrets SecretStore
	Hosts   HostStore
	Attest  Attester
	Reports ReportVerifier
	// Signer signs every answer to an agent (hvs.Service); without it the
	// answers are unsigned, which agents refuse.
	Signer AnswerSigner
}

// AnswerSigner signs the payload of an answer to an agent (the JSON of a
// bus.SignedSecretAnswer) as a compact JWS of the verifier's signing
// identity (report.TypeSecretAnswer).
type AnswerSigner interface {
	SignSecretAnswer(ctx context.Context, payload []byte) (string, error)
}

// Broker is the key broker.
type Broker struct {
	cfg     Config
	secrets SecretStore
	hosts   HostStore
	attest  Attester
	reports ReportVerifier
	signer  AnswerSigner
	logger  *slog.Logger
	// pub is the bus while Serve runs, for pushed revocations.
	pub atomic.Pointer[publisher]
	// holders are the hosts' released secrets, for pushed revocations.
	holders holders
	// journal keeps the latest decisions per host (journal.go).
	journal journal
	// limit gives each host its budget of secret requests.
	limit *hostlimit.Limiter
}

// New returns a broker.
func New(cfg Config, deps Deps, logger *slog.Logger) *Broker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestBurst <= 0 {
		cfg.RequestBurst = DefaultRequestBurst
	}
	if cfg.RequestInterval <= 0 {
		cfg.RequestInterval = DefaultRequestInterval
	}
	return &Broker{cfg: cfg, secrets: deps.Secrets, hosts: deps.Hosts, attest: deps.Attest, reports: deps.Reports, signer: deps.Signer, logger: logger,
		limit: hostlimit.New(clock.Real{}, cfg.RequestInterval, cfg.RequestBurst)}
}

// decodePolicy reads a stored policy.
func decodePolicy(b []byte) (restapi.SecretPolicy, error) {
	var p restapi.SecretPolicy
	if err := json.Unmarshal(b, &p); err != nil {
		return restapi.SecretPolicy{}, fmt.Errorf("stored secret policy: %w", err)
	}
	return p, nil
}

// view is the API's form of a stored secret: never its value.
func view(s store.BrokerSecret) (restapi.Secret, error) {
	p, err := decodePolicy(s.Policy)
	if err != nil {
		return restapi.Secret{}, fmt.Errorf("secret %s: %w", s.ID, err)
	}
	return restapi.Secret{ID: s.ID, Name: s.Name, Version: s.Version, Policy: p, Created: s.CreatedAt, Updated: s.UpdatedAt}, nil
}

// Create stores a new secret.
func (b *Broker) Create(ctx context.Context, in restapi.SecretRequest) (restapi.Secret, error) {
	if err := ValidateName(in.Name); err != nil {
		return restapi.Secret{}, err
	}
	if err := ValidateValue(in.Value); err != nil {
		return restapi.Secret{}, err
	}
	if err := ValidatePolicy(in.Policy); err != nil {
		return restapi.Secret{}, err
	}
	pol, err := json.Marshal(in.Policy)
	if err != nil {
		return restapi.Secret{}, fmt.Errorf("encode policy: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return restapi.Secret{}, fmt.Errorf("secret id: %w", err)
	}
	now := b.cfg.Now().UTC().Truncate(time.Microsecond)
	s := store.BrokerSecret{ID: id.String(), Name: in.Name, Version: 1, Policy: pol, CreatedAt: now, UpdatedAt: now}
	if err := b.secrets.CreateBrokerSecret(ctx, s, in.Value); err != nil {
		return restapi.Secret{}, err
	}
	b.logger.LogAttrs(ctx, slog.LevelInfo, "secret created", slog.String(keySecret, s.ID), slog.String(keyName, s.Name))
	return view(s)
}

// Update gives a secret a new value (the next version), a new policy, or
// both.
func (b *Broker) Update(ctx context.Context, id string, in restapi.SecretUpdate) (restapi.Secret, error) {
	if in.Value == nil && in.Policy == nil {
		return restapi.Secret{}, invalid("give a new value, a new policy, or both")
	}
	var pol []byte
	if in.Policy != nil {
		if err := ValidatePolicy(*in.Policy); err != nil {
			return restapi.Secret{}, err
		}
		var err error
		if pol, err = json.Marshal(in.Policy); err != nil {
			return restapi.Secret{}, fmt.Errorf("encode policy: %w", err)
		}
	}
	if in.Value != nil {
		if err := ValidateValue(in.Value); err != nil {
			return restapi.Secret{}, err
		}
	}
	s, err := b.secrets.UpdateBrokerSecret(ctx, id, pol, in.Value, b.cfg.Now())
	if err != nil {
		return restapi.Secret{}, err
	}
	b.logger.LogAttrs(ctx, slog.LevelInfo, "secret updated", slog.String(keySecret, s.ID), slog.String(keyName, s.Name),
		slog.Int64(keyVersion, s.Version), slog.Bool("rotated", in.Value != nil), slog.Bool("policy_changed", in.Policy != nil))
	return view(s)
}

// Get returns a secret without its value.
func (b *Broker) Get(ctx context.Context, id string) (restapi.Secret, error) {
	s, err := b.secrets.BrokerSecretByID(ctx, id)
	if err != nil {
		return restapi.Secret{}, err
	}
	return view(s)
}

// List returns every secret without values, by name.
func (b *Broker) List(ctx context.Context) (restapi.SecretList, error) {
	recs, err := b.secrets.ListBrokerSecrets(ctx)
	if err != nil {
		return restapi.SecretList{}, err
	}
	out := restapi.SecretList{Secrets: make([]restapi.Secret, 0, len(recs))}
	for _, r := range recs {
		v, err := view(r)
		if err != nil {
			return restapi.SecretList{}, err
		}
		out.Secrets = append(out.Secrets, v)
	}
	return out, nil
}

// Delete deletes a secret; agents drop it at their next renewal, which is
// refused.
func (b *Broker) Delete(ctx context.Context, id string) error {
	if err := b.secrets.DeleteBrokerSecret(ctx, id); err != nil {
		return err
	}
	b.logger.LogAttrs(ctx, slog.LevelInfo, "secret deleted", slog.String(keySecret, id))
	return nil
}
