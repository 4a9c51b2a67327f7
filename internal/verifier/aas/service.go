package aas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4/jwt"
	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// CredentialIssuer issues NATS credentials (.creds files): for the trust agent
// of one host, or for a verifier service.
type CredentialIssuer interface {
	AgentCredentials(hostID string, g bus.AgentGrammar, ttl time.Duration) ([]byte, error)
	ServiceCredentials(name string, ttl time.Duration) ([]byte, error)
	ManagerCredentials(name string, ttl time.Duration) ([]byte, error)
}

// errLogin is the one answer to every failed login: unknown user, wrong
// password and locked account look the same.
var errLogin = api.Errorf(api.KindUnauthenticated, "invalid username or password")

// Login checks a password and returns a signed token. Unknown users cost a
// dummy hash so that they take as long as known ones. The source of the
// login is the client that ContextWithPeer or ContextWithRequestPeer put in
// ctx (lockout.go).
func (a *AAS) Login(ctx context.Context, username, password string) (string, error) {
	source := a.sourceFrom(ctx)
	refusedUntil, err := a.store.LoginSourceRefusedUntil(ctx, source)
	if err != nil {
		return "", api.Wrap(api.KindInternal, err, "read login source refusal")
	}
	if a.now().Before(refusedUntil) {
		return "", errLogin // no hash: a throttled source costs one read
	}
	if err := a.acquire(ctx); err != nil {
		return "", api.Wrap(api.KindUnavailable, err, "server busy")
	}
	ok, u, err := a.checkLogin(ctx, source, username, password)
	a.release()
	if err != nil {
		return "", err
	}
	if !ok {
		if err := a.failSource(ctx, source); err != nil {
			return "", err
		}
		return "", errLogin
	}
	if err := a.store.ClearSourceLoginFailures(ctx, u.ID, source); err != nil {
		return "", api.Wrap(api.KindInternal, err, "clear login failures")
	}
	roles, err := a.store.UserRoles(ctx, u.ID)
	if err != nil {
		return "", api.Wrap(api.KindInternal, err, "read user roles")
	}
	r, p := claimsOf(roles)
	return a.issue(principal{userID: u.ID, gen: u.TokenGeneration}, u.ID, u.Name, r, p, a.now().Add(a.cfg.TokenValidity))
}

// failSource counts a failed login from source, whatever the user, and
// refuses the source once it failed SourceFailures times in a window.
func (a *AAS) failSource(ctx context.Context, source string) error {
	now := a.now()
	n, err := a.store.CountLoginSourceFailure(ctx, source, now, now.Add(-a.cfg.LockoutWindow))
	if err != nil {
		return api.Wrap(api.KindInternal, err, "record login failure of the source")
	}
	if n < a.cfg.SourceFailures {
		return nil
	}
	until := now.Add(a.cfg.LockoutDuration)
	if err := a.store.RefuseLoginSource(ctx, source, until, now); err != nil {
		return api.Wrap(api.KindInternal, err, "refuse the login source")
	}
	a.logger.Warn("login source throttled after failed logins", slog.String(keySource, source), slog.Time(keyUntil, until))
	return nil
}

// checkLogin verifies the password of username from source; it runs with a
// hashing slot.
func (a *AAS) checkLogin(ctx context.Context, source, username, password string) (bool, User, error) {
	now := a.now()
	u, err := a.store.UserByName(ctx, username)
	if errors.Is(err, ErrNotFound) || len(password) > MaxPasswordLength {
		_, _ = verifyPassword(password, a.dummy)
		return false, User{}, nil
	}
	if err != nil {
		return false, User{}, api.Wrap(api.KindInternal, err, "read user")
	}
	// LockedUntil locks the user out for every source: only locks set before
	// the lockout became per source have it.
	until, err := a.store.LoginSourceLockedUntil(ctx, u.ID, source)
	if err != nil {
		return false, u, api.Wrap(api.KindInternal, err, "read login lock")
	}
	if until.Before(u.LockedUntil) {
		until = u.LockedUntil
	}
	if now.Before(until) {
		_, _ = verifyPassword(password, a.dummy)
		a.logger.Info("login refused: account locked for the source", slog.String(keyUser, u.ID),
			slog.String(keySource, source), slog.Time(keyUntil, until))
		return false, u, nil
	}
	ok, err := verifyPassword(password, u.PasswordHash)
	if err != nil {
		return false, u, api.Wrap(api.KindInternal, err, "check password")
	}
	if ok {
		return true, u, nil
	}
	n, err := a.store.RecordSourceLoginFailure(ctx, u.ID, source, now, now.Add(-a.cfg.LockoutWindow))
	if err != nil {
		return false, u, api.Wrap(api.KindInternal, err, "record login failure")
	}
	if n >= a.cfg.LockoutFailures {
		until := now.Add(a.cfg.LockoutDuration)
		if err := a.store.LockLoginSource(ctx, u.ID, source, until, now); err != nil {
			return false, u, api.Wrap(api.KindInternal, err, "lock account for the source")
		}
		a.logger.Warn("account locked for a source after failed logins", slog.String(keyUser, u.ID),
			slog.String(keySource, source), slog.Time(keyUntil, until))
	}
	return false, u, nil
}

// principal is the user on whose authority a token is issued: the token
// carries its id and token generation and dies with them (revoke.go).
type principal struct {
	userID string
	gen    int64
}

// issue signs a token for sub, valid until exp, on owner's authority.
func (a *AAS) issue(owner principal, sub, name string, roles []auth.Role, perms []auth.Permission, exp time.Time) (string, error) {
	now := a.now()
	a.signer.certificates(now) // re-issue the certificate when due
	if roles == nil {
		roles = []auth.Role{}
	}
	if perms == nil {
		perms = []auth.Permission{}
	}
	tok, err := signToken(a.signer.key, a.signer.kid, &tokenClaims{
		Subject: sub, Name: name, Roles: roles, Permissions: perms,
		Issuer: a.cfg.Issuer, Audience: jwt.Audience{a.cfg.Audience},
		ExpiresAt: exp.Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), ID: newID(),
		UserID: owner.userID, Generation: owner.gen,
	})
	if err != nil {
		return "", api.Wrap(api.KindInternal, err, "sign token")
	}
	return tok, nil
}

// claimsOf turns roles into token roles and permissions; rules are grouped by
// the role's service (and context), deduplicated and sorted.
func claimsOf(roles []Role) ([]auth.Role, []auth.Permission) {
	out := make([]auth.Role, 0, len(roles))
	type key struct{ service, context string }
	rules := map[key][]string{}
	for _, r := range roles {
		out = append(out, auth.Role{Service: r.Service, Name: r.Name, Context: r.Context})
		k := key{r.Service, r.Context}
		rules[k] = append(rules[k], r.Permissions...)
	}
	perms := make([]auth.Permission, 0, len(rules))
	for k, rs := range rules {
		slices.Sort(rs)
		perms = append(perms, auth.Permission{Service: k.service, Context: k.context, Rules: slices.Compact(rs)})
	}
	slices.SortFunc(perms, func(x, y auth.Permission) int {
		return cmp.Or(cmp.Compare(x.Service, y.Service), cmp.Compare(x.Context, y.Context))
	})
	return out, perms
}

// Validation of names in users and roles.
const (
	maxNameLen    = 64
	maxContextLen = 512
	maxRules      = 256
)

// checkName accepts 1 to 64 characters of [A-Za-z0-9._@-].
func checkName(what, s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("%s must have 1 to %d characters", what, maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isASCIIAlnum(c) && c != '.' && c != '_' && c != '@' && c != '-' {
			return fmt.Errorf("%s %q: character %q at %d, only A-Z a-z 0-9 . _ @ - allowed", what, s, c, i)
		}
	}
	return nil
}

func checkContext(s string) error {
	if len(s) > maxContextLen {
		return fmt.Errorf("context longer than %d bytes", maxContextLen)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("context %q has a non-printable character", s)
		}
	}
	return nil
}

func checkRules(rules []string) error {
	if len(rules) > maxRules {
		return fmt.Errorf("at most %d permission rules allowed", maxRules)
	}
	var errs []error
	for _, s := range rules {
		if _, err := auth.ParseRule(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkHostID mirrors the bus package's rule (1 to 64 of [A-Za-z0-9_-]) so that
// this package need not import the NATS server.
func checkHostID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("host-id must have 1 to 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isASCIIAlnum(c) && c != '-' && c != '_' {
			return fmt.Errorf("host-id %q: character %q at %d, only A-Z a-z 0-9 - _ allowed", id, c, i)
		}
	}
	return nil
}

// storeErr maps store sentinels to API errors.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return api.Wrap(api.KindNotFound, err, what+" not found")
	case errors.Is(err, ErrConflict):
		return api.Wrap(api.KindConflict, err, what+" already exists")
	default:
		return api.Wrap(api.KindInternal, err, what)
	}
}

// isASCIIAlnum reports whether c is an ASCII letter or digit.
func isASCIIAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// busGrammar is the agent grammar a bus-grammar parameter names: none or
// "1" the split grammar, "2" two prefixes.
func busGrammar(v string) (bus.AgentGrammar, error) {
	switch v {
	case "", "1":
		return bus.GrammarSplit, nil
	case "2":
		return bus.GrammarTwoPrefixes, nil
	}
	return 0, fmt.Errorf("bus-grammar must be 1 (split, the default) or 2 (two prefixes), got %q", v)
}
