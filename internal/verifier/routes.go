package verifier

import (
	"strings"

	"trustedcompute.io/tc/internal/verifier/aas"
	"trustedcompute.io/tc/internal/verifier/cms"
	"trustedcompute.io/tc/internal/verifier/enroll"
	"trustedcompute.io/tc/internal/verifier/hvs"
	"trustedcompute.io/tc/internal/verifier/keybroker"
)

// Route is one HTTP route of the verifier and the permission it needs.
type Route struct {
	Method, Pattern string
	// Service and Rule name the permission; Service is empty for public routes.
	Service, Rule string
	// Role names a role the route needs instead of a permission (CMS CSR signing).
	Role string
}

// Routes lists every HTTP route the verifier serves, with what it needs: the
// source of the authorization matrix test and of the OpenAPI document.
func Routes() []Route {
	var out []Route
	for _, r := range aas.Routes() {
		out = append(out, Route{Method: r.Method, Pattern: r.Pattern, Service: r.Service, Rule: r.Rule})
	}
	out = append(out,
		Route{Method: "GET", Pattern: cms.PathCACertificates},
		Route{Method: "POST", Pattern: cms.PathCertificates, Role: cms.RoleService + ":" + cms.RoleCertApprover},
	)
	for _, r := range enroll.Routes() {
		out = append(out, Route{Method: r.Method, Pattern: r.Pattern, Service: r.Service, Rule: r.Rule})
	}
	for _, r := range hvs.Routes() {
		out = append(out, Route{Method: r.Method, Pattern: r.Pattern, Service: r.Service, Rule: r.Rule})
	}
	out = append(out, busCredentialRoutes()...)
	for _, r := range keybroker.Routes() {
		out = append(out, Route{Method: r.Method, Pattern: r.Pattern, Service: r.Service, Rule: r.Rule})
	}
	out = append(out, Route{Method: "GET", Pattern: "/metrics", Service: metricsService, Rule: metricsRule})
	for i := range out {
		out[i].Pattern = strings.TrimSpace(out[i].Pattern)
	}
	return out
}
