package aas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// Guard is the authentication and authorization middleware of every service.
type Guard struct {
	verifier *Verifier
	// gens refuses revoked tokens; nil in a process without the user store,
	// which then checks signature, expiry, issuer and audience only.
	gens   *generations
	logger *slog.Logger
}

// Guard returns the middleware for this AAS's tokens; it also refuses
// revoked tokens.
func (a *AAS) Guard() *Guard { return &Guard{verifier: a.verifier, gens: a.gens, logger: a.logger} }

// Authenticate verifies "Authorization: Bearer <jwt>" and puts the claims in
// the request context (auth.FromContext). Any failure is a 401.
func (a *AAS) Authenticate(next http.Handler) http.Handler { return a.Guard().Authenticate(next) }

// Protect is Guard.Protect for this AAS's tokens.
func (a *AAS) Protect(service, rule string) func(http.Handler) http.Handler {
	return a.Guard().Protect(service, rule)
}

// Protect is the middleware of a route that needs a permission:
// Authenticate, then Require(service, rule).
func (g *Guard) Protect(service, rule string) func(http.Handler) http.Handler {
	require := g.Require(service, rule)
	return func(h http.Handler) http.Handler { return g.Authenticate(require(h)) }
}

// Authenticate verifies "Authorization: Bearer <jwt>" and puts the claims in
// the request context (auth.FromContext). A bad, expired or revoked token is
// a 401; a store that cannot tell whether the token was revoked is a 503.
func (g *Guard) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := bearer(r)
		var t *verified
		if err == nil {
			t, err = g.verifier.check(tok)
		}
		if err == nil && g.gens != nil {
			if err = g.gens.check(r.Context(), t.userID, t.gen); err != nil && !errors.Is(err, ErrTokenRevoked) {
				api.WriteError(w, r, g.logger, api.Wrap(api.KindUnavailable, err, "cannot check the token now"))
				return
			}
		}
		if err != nil {
			api.WriteError(w, r, g.logger, api.Wrap(api.KindUnauthenticated, err, tokenMessage(err)))
			return
		}
		ctx := context.WithValue(auth.WithClaims(r.Context(), t.claims), tokenKey{}, t)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// CheckToken verifies a token as the AAS middleware does (signature,
// expiry, issuer, audience, revocation) and returns its claims and expiry.
// It is for parts that keep a token server-side instead of receiving it in
// an Authorization header, such as the dashboard's sessions. The claims may
// be shared and must not be modified. A revoked token wraps ErrTokenRevoked;
// a store that cannot tell returns another error.
func (a *AAS) CheckToken(ctx context.Context, token string) (*auth.Claims, time.Time, error) {
	t, err := a.verifier.check(token)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := a.gens.check(ctx, t.userID, t.gen); err != nil {
		return nil, time.Time{}, err
	}
	return t.claims, t.exp, nil
}

type tokenKey struct{}

// tokenFromContext returns the token Authenticate accepted, or nil.
func tokenFromContext(ctx context.Context) *verified {
	t, _ := ctx.Value(tokenKey{}).(*verified)
	return t
}

// Require returns middleware that lets a request through only when its claims
// (put there by Authenticate) allow rule in service: 401 without claims, 403
// naming the missing permission otherwise. It panics on a malformed rule, a
// programming error found when the routes are built.
func (g *Guard) Require(service, rule string) func(http.Handler) http.Handler {
	need, err := auth.ParseRule(rule)
	if err != nil || service == "" {
		panic(fmt.Sprintf("aas: bad required permission %q in service %q", rule, service))
	}
	msg := "permission " + service + ":" + need.String() + " required"
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := auth.FromContext(r.Context())
			switch {
			case c == nil:
				api.WriteError(w, r, g.logger, api.Errorf(api.KindUnauthenticated, "%s", ErrTokenMissing.Error()))
			case !c.Allows(service, need):
				api.WriteError(w, r, g.logger, api.Errorf(api.KindForbidden, "%s", msg))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// bearer returns the token of the Authorization header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrTokenMissing
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("%w: authorization header is not \"Bearer <token>\"", ErrTokenMalformed)
	}
	return strings.TrimSpace(tok), nil
}

// tokenMessage is the caller-visible reason a token was refused.
func tokenMessage(err error) string {
	for _, e := range []error{ErrTokenMissing, ErrTokenRevoked, ErrTokenExpired, ErrTokenNotYetValid, ErrTokenSignature,
		ErrTokenAlgorithm, ErrTokenUnknownKey, ErrTokenIssuer, ErrTokenAudience, ErrTokenMalformed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid token"
}
