// Package aas is the authentication and authorization service of the
// verifier: users, roles and permissions, password logins with lockout, ES256
// tokens, the middleware every service uses to check them, and NATS
// credentials for agents and services.
//
// Tokens are signed and verified through go-jose v4. Every token carries the
// user on whose authority it was issued and that user's token generation, and
// the AAS's own Guard refuses it once the user is deleted or the generation
// moves on (revoke.go); custom-claims tokens never carry more than their
// caller holds (customclaims.go).
//
// Failed logins lock a user out for the source that failed them only, and
// throttle a source that fails too many across users (lockout.go). A locked
// account answers 401 with the same message as a wrong password, so that a
// caller learns nothing about which accounts exist or are locked; the lock is
// logged with the user id and the source.
package aas

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Log field keys.
const (
	keyUser     = "user_id"
	keyError    = "error"
	keyNotAfter = "not_after"
	keyUntil    = "locked_until"
	keySubject  = "subject"
	keyCaller   = "caller"
	keySource   = "source"
)

// Service is the name of this service in roles and permissions.
const Service = "AAS"

// DefaultLeeway is the clock skew allowed on token exp and nbf by default.
const DefaultLeeway = 5 * time.Second

// Config configures the AAS. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Issuer   string // token "iss"
	Audience string // token "aud"

	TokenValidity time.Duration // lifetime of login tokens
	// MaxCustomClaimsValidity caps the lifetime of custom-claims tokens.
	MaxCustomClaimsValidity time.Duration
	// Leeway is the clock skew allowed when checking exp and nbf: a token is
	// accepted until exp + Leeway. Default 5 s; at most 5 minutes.
	Leeway time.Duration
	// RevocationRecheck is how long a user's token generation is cached
	// before it is read again: the longest a revocation made through another
	// replica takes to be seen. Default 2 s; at most MaxRevocationRecheck.
	RevocationRecheck time.Duration

	MinPasswordLength int
	Argon2            Argon2Params
	// MaxConcurrentHashes bounds the password hashes computed at once (each
	// takes Argon2.Memory KiB).
	MaxConcurrentHashes int

	LockoutFailures int           // failed logins of a user from one source ...
	LockoutWindow   time.Duration // ... within this window ...
	LockoutDuration time.Duration // ... lock the user out for that source this long
	// SourceFailures failed logins from one source, whatever the users,
	// within LockoutWindow refuse every login from it for LockoutDuration
	// (lockout.go). Default 20.
	SourceFailures int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client of a login (lockout.go); none by default, and never every
	// address.
	TrustedProxies []netip.Prefix

	AdminUsername string
	// AdminPasswordFile holds the first admin's password (TC_ADMIN_PASSWORD_FILE).
	AdminPasswordFile string
	// AdminPassword is the first admin's password (TC_ADMIN_PASSWORD); prefer the file.
	AdminPassword string

	SigningCertCN       string
	SigningCertValidity time.Duration
	CredentialValidity  time.Duration // lifetime of NATS credentials
	VerifyCacheSize     int           // verified tokens kept; negative disables the cache

	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Issuer:                  "trusted-compute-aas",
		Audience:                "trusted-compute",
		TokenValidity:           time.Hour,
		MaxCustomClaimsValidity: time.Hour,
		Leeway:                  DefaultLeeway,
		RevocationRecheck:       2 * time.Second,
		MinPasswordLength:       12,
		Argon2:                  DefaultArgon2Params,
		MaxConcurrentHashes:     4,
		LockoutFailures:         5,
		LockoutWindow:           5 * time.Minute,
		LockoutDuration:         15 * time.Minute,
		SourceFailures:          20,
		AdminUsername:           "admin",
		SigningCertCN:           "Trusted Compute AAS JWT Signing",
		SigningCertValidity:     30 * 24 * time.Hour,
		CredentialValidity:      30 * 24 * time.Hour,
		VerifyCacheSize:         4096,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Issuer = cmp.Or(c.Issuer, d.Issuer)
	c.Audience = cmp.Or(c.Audience, d.Audience)
	c.AdminUsername = cmp.Or(c.AdminUsername, d.AdminUsername)
	c.SigningCertCN = cmp.Or(c.SigningCertCN, d.SigningCertCN)
	c.TokenValidity = cmp.Or(c.TokenValidity, d.TokenValidity)
	c.MaxCustomClaimsValidity = cmp.Or(c.MaxCustomClaimsValidity, d.MaxCustomClaimsValidity)
	c.Leeway = cmp.Or(c.Leeway, d.Leeway)
	c.RevocationRecheck = cmp.Or(c.RevocationRecheck, d.RevocationRecheck)
	c.LockoutWindow = cmp.Or(c.LockoutWindow, d.LockoutWindow)
	c.LockoutDuration = cmp.Or(c.LockoutDuration, d.LockoutDuration)
	c.SigningCertValidity = cmp.Or(c.SigningCertValidity, d.SigningCertValidity)
	c.CredentialValidity = cmp.Or(c.CredentialValidity, d.CredentialValidity)
	c.MinPasswordLength = cmp.Or(c.MinPasswordLength, d.MinPasswordLength)
	c.MaxConcurrentHashes = cmp.Or(c.MaxConcurrentHashes, d.MaxConcurrentHashes)
	c.LockoutFailures = cmp.Or(c.LockoutFailures, d.LockoutFailures)
	c.SourceFailures = cmp.Or(c.SourceFailures, d.SourceFailures)
	c.VerifyCacheSize = cmp.Or(c.VerifyCacheSize, d.VerifyCacheSize)
	c.Argon2 = cmp.Or(c.Argon2, d.Argon2)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate reports every problem at once.
func (c Config) validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", name, d))
		}
	}
	positive("token validity", c.TokenValidity)
	positive("max custom claims validity", c.MaxCustomClaimsValidity)
	positive("lockout window", c.LockoutWindow)
	positive("lockout duration", c.LockoutDuration)
	positive("signing certificate validity", c.SigningCertValidity)
	positive("credential validity", c.CredentialValidity)
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("leeway %s out of range [0, 5m]", c.Leeway))
	}
	if c.RevocationRecheck < 0 || c.RevocationRecheck > MaxRevocationRecheck {
		errs = append(errs, fmt.Errorf("revocation recheck %s out of range [0, %s]", c.RevocationRecheck, MaxRevocationRecheck))
	}
	if c.MinPasswordLength < 1 {
		errs = append(errs, fmt.Errorf("min password length %d must be at least 1", c.MinPasswordLength))
	}
	if c.MaxConcurrentHashes < 1 {
		errs = append(errs, fmt.Errorf("max concurrent hashes %d must be at least 1", c.MaxConcurrentHashes))
	}
	if c.LockoutFailures < 1 {
		errs = append(errs, fmt.Errorf("lockout failures %d must be at least 1", c.LockoutFailures))
	}
	if c.SourceFailures < 1 {
		errs = append(errs, fmt.Errorf("source failures %d must be at least 1", c.SourceFailures))
	}
	if err := c.Argon2.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.TrustedProxies {
		if err := checkTrustedProxy(p); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AdminPasswordFile != "" && c.AdminPassword != "" {
		errs = append(errs, errors.New("admin password given both as a file and as a value; give one"))
	}
	if err := checkName("admin username", c.AdminUsername); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aas config: %w", err)
	}
	return nil
}

// AAS is the authentication and authorization service.
type AAS struct {
	cfg      Config
	store    Store
	creds    CredentialIssuer
	signer   *signer
	verifier *Verifier
	gens     *generations
	logger   *slog.Logger
	now      func() time.Time
	hashSem  chan struct{}
	dummy    []byte // hash of a random password, verified when the user is unknown
}

// New starts the AAS: it loads or creates the token signing key, gets its
// certificate from certs, and on first start creates the admin user.
func New(ctx context.Context, cfg Config, store Store, certs CertIssuer, creds CredentialIssuer, logger *slog.Logger) (*AAS, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if store == nil || certs == nil || creds == nil || logger == nil {
		return nil, errors.New("aas: store, cert issuer, credential issuer and logger are required")
	}
	a := &AAS{cfg: cfg, store: store, creds: creds, logger: logger, now: cfg.Now,
		hashSem: make(chan struct{}, cfg.MaxConcurrentHashes)}
	var err error
	if a.dummy, err = hashPassword(rand.Text(), cfg.Argon2); err != nil {
		return nil, fmt.Errorf("aas: %w", err)
	}
	key, err := loadOrCreateSigningKey(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("aas: %w", err)
	}
	if a.signer, err = newSigner(key, certs, cfg.SigningCertCN, cfg.SigningCertValidity, a.now(), logger); err != nil {
		return nil, fmt.Errorf("aas: %w", err)
	}
	cacheSize := max(cfg.VerifyCacheSize, 0)
	if a.verifier, err = NewVerifierFromKeys(map[string]crypto.PublicKey{a.signer.kid: &key.PublicKey}, VerifierConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, Now: a.now, CacheSize: cacheSize,
	}); err != nil {
		return nil, fmt.Errorf("aas: %w", err)
	}
	a.gens = newGenerations(store, cfg.RevocationRecheck, a.now)
	if err := a.bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("aas: %w", err)
	}
	return a, nil
}

// Verifier returns the verifier of this AAS's own tokens.
func (a *AAS) Verifier() *Verifier { return a.verifier }

// KeyID returns the kid of the token signing key.
func (a *AAS) KeyID() string { return a.signer.kid }

// ErrNoAdminPassword is returned by New when there is no user and no admin
// password was given.
var ErrNoAdminPassword = errors.New("no user exists and no admin password was given (set TC_ADMIN_PASSWORD_FILE)")

// adminRoles are the roles of the first admin: everything in AAS, CMS, HVS.
var adminRoles = []Role{
	{Service: Service, Name: "Administrator", Permissions: []string{"*:*:*"}},
	{Service: "CMS", Name: "Administrator", Permissions: []string{"*:*:*"}},
	{Service: "HVS", Name: "Administrator", Permissions: []string{"*:*:*"}},
}

// bootstrap creates the admin user with its roles when no user exists.
func (a *AAS) bootstrap(ctx context.Context) error {
	users, err := a.store.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: list users: %w", err)
	}
	if len(users) > 0 {
		return nil
	}
	pw, err := a.adminPassword()
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := checkPassword(pw, a.cfg.MinPasswordLength); err != nil {
		return fmt.Errorf("bootstrap: admin password: %w", err)
	}
	var roleIDs []string
	for _, r := range adminRoles {
		id, err := a.ensureRole(ctx, r)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		roleIDs = append(roleIDs, id)
	}
	hash, err := a.hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	u := User{ID: newID(), Name: a.cfg.AdminUsername, PasswordHash: hash, CreatedAt: a.now().UTC()}
	if err := a.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil // another replica bootstrapped first
		}
		return fmt.Errorf("bootstrap: create admin user: %w", err)
	}
	if err := a.store.AddUserRoles(ctx, u.ID, roleIDs); err != nil {
		return fmt.Errorf("bootstrap: give admin its roles: %w", err)
	}
	a.logger.Info("created the admin user", slog.String(keyUser, u.ID))
	return nil
}

func (a *AAS) adminPassword() (string, error) {
	pw := a.cfg.AdminPassword
	if a.cfg.AdminPasswordFile != "" {
		b, err := os.ReadFile(a.cfg.AdminPasswordFile)
		if err != nil {
			return "", fmt.Errorf("read admin password file: %w", err)
		}
		pw = string(b)
	}
	pw = strings.TrimSuffix(pw, "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", ErrNoAdminPassword
	}
	return pw, nil
}

// ensureRole creates r or returns the id of the existing role with the same
// service, name and context.
func (a *AAS) ensureRole(ctx context.Context, r Role) (string, error) {
	r.ID, r.CreatedAt = newID(), a.now().UTC()
	err := a.store.CreateRole(ctx, r)
	if err == nil {
		return r.ID, nil
	}
	if !errors.Is(err, ErrConflict) {
		return "", fmt.Errorf("create role %s:%s: %w", r.Service, r.Name, err)
	}
	roles, lerr := a.store.ListRoles(ctx)
	if lerr != nil {
		return "", fmt.Errorf("list roles: %w", lerr)
	}
	for _, e := range roles {
		if e.Service == r.Service && e.Name == r.Name && e.Context == r.Context {
			return e.ID, nil
		}
	}
	return "", fmt.Errorf("create role %s:%s: %w", r.Service, r.Name, err)
}

// hash hashes pw, waiting for a hashing slot.
func (a *AAS) hash(ctx context.Context, pw string) ([]byte, error) {
	if err := a.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.release()
	return hashPassword(pw, a.cfg.Argon2)
}

func (a *AAS) acquire(ctx context.Context) error {
	select {
	case a.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for a password hashing slot: %w", ctx.Err())
	}
}

func (a *AAS) release() { <-a.hashSem }

// newID returns a random UUID (version 4).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
