package aas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"trustedcompute.io/tc/internal/verifier/auth"
)

// Token verification errors. Verify wraps exactly one of them, so a caller can
// tell "expired" from "forged" with errors.Is; the middleware shows the text.
var (
	ErrTokenMissing      = errors.New("missing bearer token")
	ErrTokenMalformed    = errors.New("malformed token")
	ErrTokenAlgorithm    = errors.New("token algorithm not accepted, only ES256")
	ErrTokenUnknownKey   = errors.New("token signed by an unknown key")
	ErrTokenSignature    = errors.New("bad token signature")
	ErrTokenExpired      = errors.New("token expired")
	ErrTokenNotYetValid  = errors.New("token not yet valid")
	ErrTokenIssuer       = errors.New("token issuer not accepted")
	ErrTokenAudience     = errors.New("token audience not accepted")
	ErrTokenRevoked      = errors.New("token revoked")
	errTokenTooLarge     = fmt.Errorf("%w: longer than %d bytes", ErrTokenMalformed, MaxTokenBytes)
	b64url               = base64.RawURLEncoding.Strict()
	errNoVerificationKey = errors.New("no ES256 verification key")
)

// MaxTokenBytes bounds the size of a token the verifier looks at.
const MaxTokenBytes = 16 << 10

const algES256 = "ES256"

// header is the JOSE header of our tokens, read before go-jose parses the
// token so that a refusal can say precisely why (algorithm, kid, crit).
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ,omitempty"`
	Crit []string `json:"crit,omitempty"`
}

// tokenClaims is the JWT claim set the AAS issues.
type tokenClaims struct {
	Subject     string            `json:"sub"`
	Name        string            `json:"name,omitempty"`
	Roles       []auth.Role       `json:"roles"`
	Permissions []auth.Permission `json:"permissions"`
	Issuer      string            `json:"iss"`
	Audience    jwt.Audience      `json:"aud"`
	ExpiresAt   int64             `json:"exp"`
	IssuedAt    int64             `json:"iat"`
	NotBefore   int64             `json:"nbf"`
	ID          string            `json:"jti"`
	// UserID is the user on whose authority the token was issued: the user
	// who logged in, or the user behind the caller of custom-claims-token.
	// Generation is that user's token generation then; the token is refused
	// once the user is deleted or the generation moves on (revocation).
	UserID     string `json:"uid,omitempty"`
	Generation int64  `json:"ugen,omitempty"`
}

// KeyID returns the key id of an ES256 public key: its RFC 7638 JWK
// thumbprint (base64url SHA-256). It depends on the key only, so the id is
// the same on every replica and across certificate re-issues.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return "", fmt.Errorf("%w: key is not on P-256", errNoVerificationKey)
	}
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint of the public key: %w", err)
	}
	return b64url.EncodeToString(sum), nil
}

// signToken encodes and signs claims as a compact ES256 JWS with the header
// {"alg":"ES256","kid":kid,"typ":"JWT"} (no kid when kid is empty).
func signToken(key *ecdsa.PrivateKey, kid string, c *tokenClaims) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("token signer: %w", err)
	}
	tok, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// VerifierConfig sets what a Verifier accepts.
type VerifierConfig struct {
	Issuer   string        // required "iss"
	Audience string        // required member of "aud"
	Leeway   time.Duration // clock skew allowed on exp and nbf; 0 means none
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the cache of verified tokens; 0 disables it.
	CacheSize int
}

// Verifier checks AAS tokens offline: ES256 signature by a known key, kid,
// exp/nbf, iss and aud. It is safe for concurrent use.
type Verifier struct {
	keys     map[string]*ecdsa.PublicKey
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	cache    *tokenCache
}

// NewVerifierFromKeys returns a Verifier for ES256 public keys by key id.
func NewVerifierFromKeys(keys map[string]crypto.PublicKey, cfg VerifierConfig) (*Verifier, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("verifier: issuer is empty"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("verifier: audience is empty"))
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("verifier: leeway %s out of range [0, 5m]", cfg.Leeway))
	}
	if len(keys) == 0 {
		errs = append(errs, fmt.Errorf("verifier: %w", errNoVerificationKey))
	}
	v := &Verifier{
		keys: make(map[string]*ecdsa.PublicKey, len(keys)), issuer: cfg.Issuer, audience: cfg.Audience,
		leeway: cfg.Leeway, now: cfg.Now,
	}
	for kid, k := range keys {
		pub, ok := k.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() || kid == "" {
			errs = append(errs, fmt.Errorf("verifier: key %q: %w", kid, errNoVerificationKey))
			continue
		}
		v.keys[kid] = pub
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	return v, nil
}

// verified is what a Verifier keeps of a token it accepted.
type verified struct {
	claims *auth.Claims
	exp    time.Time
	userID string // the user on whose authority the token was issued
	gen    int64  // that user's token generation at issue
}

// Verify checks token and returns its claims. The returned claims may be
// shared with other callers of Verify and must not be modified.
func (v *Verifier) Verify(token string) (*auth.Claims, error) {
	t, err := v.check(token)
	if err != nil {
		return nil, err
	}
	return t.claims, nil
}

// check is Verify with everything the AAS needs of the token.
func (v *Verifier) check(token string) (*verified, error) {
	now := v.now()
	if v.cache != nil {
		if t, ok := v.cache.get(token); ok {
			if !now.Before(t.exp.Add(v.leeway)) {
				return nil, ErrTokenExpired
			}
			return t, nil
		}
	}
	tc, err := v.verify(token, now)
	if err != nil {
		return nil, err
	}
	t := &verified{
		claims: &auth.Claims{Subject: tc.Subject, Roles: tc.Roles, Permissions: tc.Permissions},
		exp:    time.Unix(tc.ExpiresAt, 0), userID: tc.UserID, gen: tc.Generation,
	}
	if v.cache != nil {
		v.cache.put(token, t, now)
	}
	return t, nil
}

// es256 is the only algorithm go-jose may accept for our tokens.
var es256 = []jose.SignatureAlgorithm{jose.ES256}

func (v *Verifier) verify(token string, now time.Time) (*tokenClaims, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	if len(token) > MaxTokenBytes {
		return nil, errTokenTooLarge
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: want three dot-separated parts", ErrTokenMalformed)
	}
	// The header is read first so that a refusal names the reason.
	h64, _, _ := strings.Cut(token, ".")
	hb, err := b64url.DecodeString(h64)
	if err != nil {
		return nil, fmt.Errorf("%w: header encoding", ErrTokenMalformed)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header", ErrTokenMalformed)
	}
	if h.Alg != algES256 {
		return nil, fmt.Errorf("%w: got %q", ErrTokenAlgorithm, h.Alg)
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: critical header parameters are not supported", ErrTokenMalformed)
	}
	if h.Kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrTokenUnknownKey)
	}
	pub, ok := v.keys[h.Kid]
	if !ok {
		return nil, ErrTokenUnknownKey
	}
	parsed, err := jwt.ParseSigned(token, es256)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenMalformed, err)
	}
	var c tokenClaims
	if err := parsed.Claims(pub, &c); errors.Is(err, jose.ErrCryptoFailure) {
		return nil, ErrTokenSignature
	} else if err != nil {
		return nil, fmt.Errorf("%w: claims", ErrTokenMalformed)
	}
	if c.Subject == "" || c.ExpiresAt == 0 {
		return nil, fmt.Errorf("%w: sub and exp are required", ErrTokenMalformed)
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0).Add(v.leeway)) {
		return nil, ErrTokenExpired
	}
	if c.NotBefore != 0 && now.Add(v.leeway).Before(time.Unix(c.NotBefore, 0)) {
		return nil, ErrTokenNotYetValid
	}
	if c.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: %q", ErrTokenIssuer, c.Issuer)
	}
	if !c.Audience.Contains(v.audience) {
		return nil, ErrTokenAudience
	}
	return &c, nil
}

// tokenCache maps already verified token strings to what was verified,
// until exp. It is bounded: when full, expired entries go first, then
// arbitrary ones. Revocation is checked apart from it, on every request.
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]*verified
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]*verified, max)}
}

func (c *tokenCache) get(token string) (*verified, bool) {
	c.mu.RLock()
	t, ok := c.entries[token]
	c.mu.RUnlock()
	return t, ok
}

func (c *tokenCache) put(token string, t *verified, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.exp) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[token] = t
}
