package aas

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// Custom-claims tokens (POST /aas/v1/custom-claims-token) hand a part of the
// caller's authority to a service or a job. A caller can only put into a
// token what it holds itself:
//
//   - each role exactly as the caller's token carries it (same service, name
//     and context): a CMS:CertApprover role for one CSR cannot be widened to
//     another name or certificate type;
//   - each permission rule covered by a rule of the caller in the same
//     service (and the same context, when the caller's is narrowed by one);
//   - the subject is the caller's own, unless the caller holds
//     AAS:custom_claims:create_for_service:* (mint for another subject);
//   - the token expires no later than the caller's own token, and after at
//     most Config.MaxCustomClaimsValidity;
//   - it carries the user behind the caller (uid, ugen), so it is revoked
//     with that user's tokens (revoke.go).
//
// The audit log names the user behind the caller and the caller's subject.

// Permission rules of custom-claims tokens.
const (
	// RuleCustomClaimsCreate lets a caller mint tokens for itself.
	RuleCustomClaimsCreate = "custom_claims:create:*"
	// RuleCustomClaimsForService lets a caller mint tokens whose subject is
	// another name (a service account); it amounts to acting as anyone the
	// caller names, with no more than the caller's own roles and rules.
	RuleCustomClaimsForService = "custom_claims:create_for_service:*"
)

var ruleForService = auth.Rule{Resource: "custom_claims", Action: "create_for_service", Selector: "*"}

// Log field keys of the custom-claims audit record.
const (
	keyRoles       = "roles"
	keyPermissions = "permissions"
	keyExpires     = "expires"
)

func (a *AAS) customClaimsToken(w http.ResponseWriter, r *http.Request, subject string, validitySeconds int64, roles []auth.Role, perms []auth.Permission) error {
	var errs []error
	if subject == "" || len(subject) > 256 {
		errs = append(errs, errors.New("subject must have 1 to 256 bytes"))
	}
	if validitySeconds <= 0 {
		errs = append(errs, errors.New("validity_seconds must be positive"))
	}
	for _, p := range perms {
		if p.Service == "" {
			errs = append(errs, errors.New("permission service is empty"))
		}
		if err := checkRules(p.Rules); err != nil {
			errs = append(errs, err)
		}
	}
	for _, rl := range roles {
		if rl.Service == "" || rl.Name == "" {
			errs = append(errs, errors.New("role service and name are required"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return badRequest(err)
	}

	caller, tok := auth.FromContext(r.Context()), tokenFromContext(r.Context())
	if caller == nil || tok == nil {
		return api.Errorf(api.KindUnauthenticated, "%s", ErrTokenMissing.Error())
	}
	if refused := refusedClaims(caller, subject, roles, perms); len(refused) > 0 {
		return api.Errorf(api.KindForbidden, "%s", strings.Join(refused, "; "))
	}
	now := a.now()
	exp := now.Add(min(time.Duration(min(validitySeconds, 1<<32))*time.Second, a.cfg.MaxCustomClaimsValidity))
	if exp.After(tok.exp) {
		exp = tok.exp // never outlive the caller's own token
	}
	if !exp.After(now) {
		return api.Errorf(api.KindForbidden, "the caller's token expires now; log in again")
	}
	out, err := a.issue(principal{userID: tok.userID, gen: tok.gen}, subject, "", roles, perms, exp)
	if err != nil {
		return err
	}
	a.logger.Info("custom claims token issued",
		slog.String(keyUser, tok.userID), slog.String(keyCaller, caller.Subject), slog.String(keySubject, subject),
		slog.Any(keyRoles, roles), slog.Any(keyPermissions, perms), slog.Time(keyExpires, exp.UTC()))
	writeToken(w, out)
	return nil
}

// refusedClaims lists, one sentence each, what caller may not put into a
// token for subject; nil when everything is allowed.
func refusedClaims(caller *auth.Claims, subject string, roles []auth.Role, perms []auth.Permission) []string {
	var refused []string
	if subject != caller.Subject && !caller.Allows(Service, ruleForService) {
		refused = append(refused, fmt.Sprintf("a token for another subject than the caller needs the permission %s:%s", Service, RuleCustomClaimsForService))
	}
	for _, rl := range roles {
		if !slices.Contains(caller.Roles, rl) {
			refused = append(refused, fmt.Sprintf("cannot grant the role %s:%s (context %q), which the caller does not hold", rl.Service, rl.Name, rl.Context))
		}
	}
	for _, p := range perms {
		for _, s := range p.Rules {
			rule, _ := auth.ParseRule(s) // checked by checkRules
			if !holds(caller, p.Service, p.Context, rule) {
				refused = append(refused, fmt.Sprintf("cannot grant %s:%s, which the caller does not hold", p.Service, s))
			}
		}
	}
	return refused
}

// holds reports whether one of the caller's permissions covers rule in
// service and context: same service (or the caller's "*"), and the caller's
// context empty (unrestricted) or equal.
func holds(caller *auth.Claims, service, context string, rule auth.Rule) bool {
	for _, p := range caller.Permissions {
		if (p.Service != service && p.Service != "*") || (p.Context != "" && p.Context != context) {
			continue
		}
		one := auth.Claims{Permissions: []auth.Permission{{Service: service, Rules: p.Rules}}}
		if one.Allows(service, rule) {
			return true
		}
	}
	return false
}
