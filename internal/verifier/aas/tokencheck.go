package aas

import (
	"context"
	"time"

	"trustedcompute.io/tc/internal/verifier/auth"
)

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
