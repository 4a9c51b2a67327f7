package cms

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// Paths of the CMS API.
const (
	PathCACertificates = "/cms/v1/ca-certificates"
	PathCertificates   = "/cms/v1/certificates"
)

// PEMContentType is the media type of PEM request and response bodies.
const PEMContentType = "application/x-pem-file"

// MaxCSRBytes limits the body of a CSR request.
const MaxCSRBytes = 64 << 10

// Routes registers the CMS endpoints on mux. authn is the authentication
// middleware (AAS): it wraps the CSR endpoint, which needs claims; the CA
// certificates are public. authn must not be nil.
func (ca *CA) Routes(mux *http.ServeMux, authn func(http.Handler) http.Handler) {
	if authn == nil {
		panic("cms: Routes needs an authentication middleware")
	}
	mux.Handle("GET "+PathCACertificates, http.HandlerFunc(ca.serveCACertificates))
	mux.Handle("POST "+PathCertificates, authn(http.HandlerFunc(ca.serveSignCSR)))
}

// serveCACertificates answers GET /cms/v1/ca-certificates?issuingCa=...
func (ca *CA) serveCACertificates(w http.ResponseWriter, r *http.Request) {
	kind, err := queryParam(r, "issuingCa", IssuingRoot)
	if err != nil {
		api.WriteError(w, r, ca.log, err)
		return
	}
	cert, err := ca.CACertificate(kind)
	if err != nil {
		api.WriteError(w, r, ca.log, err)
		return
	}
	writePEM(w, http.StatusOK, EncodeChainPEM([]*x509.Certificate{cert}))
}

// serveSignCSR answers POST /cms/v1/certificates?certType=... with a PEM CSR.
func (ca *CA) serveSignCSR(w http.ResponseWriter, r *http.Request) {
	chainPEM, err := ca.signRequest(w, r)
	if err != nil {
		api.WriteError(w, r, ca.log, err)
		return
	}
	writePEM(w, http.StatusCreated, chainPEM)
}

func (ca *CA) signRequest(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	claims := auth.FromContext(r.Context())
	if claims == nil {
		return nil, api.Errorf(api.KindUnauthenticated, "authentication required")
	}
	roles := claims.HasRole(RoleService, RoleCertApprover)
	if len(roles) == 0 {
		return nil, &api.Error{Kind: api.KindForbidden, Err: ErrNotApproved,
			Message: fmt.Sprintf("the token has no %s:%s role", RoleService, RoleCertApprover)}
	}
	certType, err := queryParam(r, "certType", "")
	if err != nil {
		return nil, err
	}
	if err := checkCertType(certType); err != nil {
		return nil, err
	}
	body, err := api.ReadBody(w, r, PEMContentType, MaxCSRBytes)
	if err != nil {
		return nil, err
	}
	csr, err := ParseCSR(body)
	if err != nil {
		return nil, err
	}
	req := Request{CN: csr.Subject.CommonName, DNSNames: csr.DNSNames, IPs: csr.IPAddresses, CertType: certType}
	if err := approve(roles, req); err != nil {
		return nil, err
	}
	chain, err := ca.SignCSR(csr, certType)
	if err != nil {
		return nil, err
	}
	return EncodeChainPEM(chain), nil
}

// approve returns nil when some role allows exactly req, and a forbidden
// *api.Error naming the mismatches otherwise.
func approve(roles []auth.Role, req Request) error {
	var reasons []string
	for _, role := range roles {
		a, err := ParseApproval(role.Context)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s:%s role context %q grants nothing: %v", RoleService, RoleCertApprover, role.Context, err))
			continue
		}
		err = a.Allows(req)
		if err == nil {
			return nil
		}
		reasons = append(reasons, err.Error())
	}
	const maxShown = 5
	if len(reasons) > maxShown {
		reasons = append(reasons[:maxShown], fmt.Sprintf("and %d more roles", len(reasons)-maxShown))
	}
	return &api.Error{Kind: api.KindForbidden, Message: strings.Join(reasons, "; "), Err: ErrNotApproved}
}

// queryParam returns the single value of a query parameter, or def when it
// is absent (an error when def is empty). A malformed query, an empty value
// or a repeated parameter are errors.
func queryParam(r *http.Request, name, def string) (string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", api.Wrap(api.KindBadRequest, err, "malformed query")
	}
	allowed := allowedTypes()
	if name == "issuingCa" {
		allowed = IssuingRoot + ", " + allowed
	}
	vs, ok := q[name]
	switch {
	case !ok && def != "":
		return def, nil
	case !ok:
		return "", api.Errorf(api.KindBadRequest, "query parameter %s is required (allowed: %s)", name, allowed)
	case len(vs) != 1:
		return "", api.Errorf(api.KindBadRequest, "query parameter %s must appear once", name)
	case vs[0] == "":
		return "", api.Errorf(api.KindBadRequest, "query parameter %s is empty (allowed: %s)", name, allowed)
	}
	return vs[0], nil
}

func writePEM(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", PEMContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b) //nolint:gosec // G705: PEM served as application/x-pem-file with nosniff, never HTML; a write error means the client left
}
