package aas

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/api"
)

// routes is the one table of AAS endpoints and the permission each needs
// (in Service); a route without a rule is public.
var routes = api.Table[*AAS]{
	route("POST", "/aas/v1/token", "", (*AAS).handleToken),
	route("GET", "/aas/v1/jwt-certificates", "", (*AAS).handleCertificates),
	route("GET", "/aas/v1/jwks", "", (*AAS).handleJWKS),
	route("GET", "/.well-known/jwks.json", "", (*AAS).handleJWKS),
	route("POST", "/aas/v1/custom-claims-token", "custom_claims:create:*", (*AAS).handleCustomClaimsToken),
	route("POST", "/aas/v1/credentials", "credential:create:*", (*AAS).handleCredentials),
	route("POST", "/aas/v1/users", "users:create:*", (*AAS).handleCreateUser),
	route("GET", "/aas/v1/users", "users:search:*", (*AAS).handleListUsers),
	route("GET", "/aas/v1/users/{id}", "users:retrieve:*", (*AAS).handleGetUser),
	route("PUT", "/aas/v1/users/{id}", "users:update:*", (*AAS).handleUpdateUser),
	route("DELETE", "/aas/v1/users/{id}", "users:delete:*", (*AAS).handleDeleteUser),
	route("POST", "/aas/v1/roles", "roles:create:*", (*AAS).handleCreateRole),
	route("GET", "/aas/v1/roles", "roles:search:*", (*AAS).handleListRoles),
	route("GET", "/aas/v1/roles/{id}", "roles:retrieve:*", (*AAS).handleGetRole),
	route("DELETE", "/aas/v1/roles/{id}", "roles:delete:*", (*AAS).handleDeleteRole),
	route("PUT", "/aas/v1/roles/{id}/permissions", "roles:update:*", (*AAS).handleSetRolePermissions),
	route("POST", "/aas/v1/users/{id}/roles", "user_roles:create:*", (*AAS).handleAddUserRoles),
	route("GET", "/aas/v1/users/{id}/roles", "user_roles:search:*", (*AAS).handleUserRoles),
	route("DELETE", "/aas/v1/users/{id}/roles/{roleId}", "user_roles:delete:*", (*AAS).handleRemoveUserRole),
	route("GET", "/aas/v1/users/{id}/permissions", "user_roles:retrieve:*", (*AAS).handleUserPermissions),
}

// route binds a route to its handler, under Service when it names a rule.
func route(method, pattern, rule string, h func(*AAS, http.ResponseWriter, *http.Request) error) api.Entry[*AAS] {
	r := api.Route{Method: method, Pattern: pattern, Rule: rule}
	if rule != "" {
		r.Service = Service
	}
	return api.Entry[*AAS]{Route: r, Handle: h}
}

// Routes returns the endpoints of the AAS with the permission each needs;
// a public route has no Service and no Rule.
func Routes() []api.Route { return routes.Routes() }

// Register mounts every AAS endpoint on mux, the protected ones behind
// Authenticate and Require for their permission.
func (a *AAS) Register(mux *http.ServeMux) {
	g := a.Guard()
	guard := func(service, rule string) func(http.Handler) http.Handler {
		if service == "" {
			return func(h http.Handler) http.Handler { return h }
		}
		return g.Protect(service, rule)
	}
	routes.Register(mux, a, guard, func(err error) error { return err }, a.logger)
}

const smallBody = 8 << 10

func (a *AAS) userResponse(u User) restapi.User {
	out := restapi.User{ID: u.ID, Username: u.Name, CreatedAt: u.CreatedAt.UTC()}
	if a.now().Before(u.LockedUntil) {
		t := u.LockedUntil.UTC()
		out.LockedUntil = &t
	}
	return out
}

func roleResponse(r Role) restapi.Role {
	p := r.Permissions
	if p == nil {
		p = []string{}
	}
	return restapi.Role{ID: r.ID, Service: r.Service, Name: r.Name, Context: r.Context, Permissions: p, CreatedAt: r.CreatedAt.UTC()}
}

func badRequest(err error) error { return api.Wrap(api.KindBadRequest, err, err.Error()) }

func writeToken(w http.ResponseWriter, tok string) {
	w.Header().Set("Content-Type", "application/jwt")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(tok))
}

func (a *AAS) handleToken(w http.ResponseWriter, r *http.Request) error {
	var req restapi.TokenRequest
	if err := api.DecodeJSON(w, r, &req, smallBody); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return api.Errorf(api.KindBadRequest, "username and password are required")
	}
	tok, err := a.Login(ContextWithRequestPeer(r.Context(), r), req.Username, req.Password)
	if err != nil {
		return err
	}
	writeToken(w, tok)
	return nil
}

func (a *AAS) handleCertificates(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.signer.certificatesPEM(a.now()))
	return nil
}

func (a *AAS) handleJWKS(w http.ResponseWriter, _ *http.Request) error {
	api.WriteJSON(w, http.StatusOK, a.signer.jwks(a.now()))
	return nil
}

func (a *AAS) handleCustomClaimsToken(w http.ResponseWriter, r *http.Request) error {
	var req restapi.CustomClaimsRequest
	if err := api.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	return a.customClaimsToken(w, r, req.Subject, req.ValiditySeconds, req.Claims.Roles, req.Claims.Permissions)
}

func (a *AAS) handleCredentials(w http.ResponseWriter, r *http.Request) error {
	var req restapi.CredentialsRequest
	if err := api.DecodeJSON(w, r, &req, smallBody); err != nil {
		return err
	}
	var creds []byte
	var err error
	switch req.Type {
	case restapi.CredentialsAgent:
		host := req.Parameters[restapi.ParamHostID]
		if err := checkHostID(host); err != nil {
			return badRequest(err)
		}
		g, gerr := busGrammar(req.Parameters[restapi.ParamBusGrammar])
		if gerr != nil {
			return badRequest(gerr)
		}
		creds, err = a.creds.AgentCredentials(host, g, a.cfg.CredentialValidity)
	case restapi.CredentialsHVS:
		creds, err = a.creds.ServiceCredentials("HVS", a.cfg.CredentialValidity)
	case restapi.CredentialsManager:
		creds, err = a.creds.ManagerCredentials("attestation-manager", a.cfg.CredentialValidity)
	default:
		return api.Errorf(api.KindBadRequest, "type must be TA, HVS or AM (attestation manager), got %q", req.Type)
	}
	var refused *api.Error // the issuer's own answer (a disabled host: 409)
	if errors.As(err, &refused) {
		return err
	}
	if err != nil {
		return api.Wrap(api.KindInternal, err, "issue credentials")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(creds)
	return nil
}

func (a *AAS) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var req restapi.UserRequest
	if err := api.DecodeJSON(w, r, &req, smallBody); err != nil {
		return err
	}
	var errs []error
	if err := checkName("username", req.Username); err != nil {
		errs = append(errs, err)
	}
	if err := checkPassword(req.Password, a.cfg.MinPasswordLength); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return badRequest(err)
	}
	hash, err := a.hash(r.Context(), req.Password)
	if err != nil {
		return api.Wrap(api.KindInternal, err, "hash password")
	}
	u := User{ID: newID(), Name: req.Username, PasswordHash: hash, CreatedAt: a.now().UTC()}
	if err := a.store.CreateUser(r.Context(), u); err != nil {
		return storeErr(err, "user "+req.Username)
	}
	api.WriteJSON(w, http.StatusCreated, a.userResponse(u))
	return nil
}

func (a *AAS) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	out := []restapi.User{}
	if name := r.URL.Query().Get("name"); name != "" {
		u, err := a.store.UserByName(r.Context(), name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return storeErr(err, "user")
		}
		if err == nil {
			out = append(out, a.userResponse(u))
		}
		api.WriteJSON(w, http.StatusOK, out)
		return nil
	}
	users, err := a.store.ListUsers(r.Context())
	if err != nil {
		return storeErr(err, "list users")
	}
	for _, u := range users {
		out = append(out, a.userResponse(u))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *AAS) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	return writeByID(w, r, "user", a.store.UserByID, a.userResponse)
}

// writeByID answers with the record whose id the path names, as response
// shows it; what names the record in a store error.
func writeByID[T, R any](w http.ResponseWriter, r *http.Request, what string, byID func(context.Context, string) (T, error), response func(T) R) error {
	v, err := byID(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeErr(err, what)
	}
	api.WriteJSON(w, http.StatusOK, response(v))
	return nil
}

// handleUpdateUser sets a new password; it also lifts the user's locks from
// every source.
func (a *AAS) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	var req restapi.PasswordRequest
	if err := api.DecodeJSON(w, r, &req, smallBody); err != nil {
		return err
	}
	if err := checkPassword(req.Password, a.cfg.MinPasswordLength); err != nil {
		return badRequest(err)
	}
	id := r.PathValue("id")
	if _, err := a.store.UserByID(r.Context(), id); err != nil {
		return storeErr(err, "user")
	}
	hash, err := a.hash(r.Context(), req.Password)
	if err != nil {
		return api.Wrap(api.KindInternal, err, "hash password")
	}
	if err := a.store.UpdateUserPassword(r.Context(), id, hash); err != nil {
		return storeErr(err, "user")
	}
	a.gens.forget(id) // the store revoked the user's tokens
	if err := a.store.SetUserLockedUntil(r.Context(), id, time.Time{}); err != nil {
		return storeErr(err, "user")
	}
	if err := a.store.ClearLoginFailures(r.Context(), id); err != nil {
		return storeErr(err, "user")
	}
	if err := a.store.ClearLoginLocks(r.Context(), id); err != nil {
		return storeErr(err, "user")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *AAS) handleDeleteUser(w http.ResponseWriter, r *http.Request) error {
	return a.revoked(w, a.store.DeleteUser(r.Context(), r.PathValue("id")), "user", r.PathValue("id"))
}

// revoked answers a store change that revoked tokens: the error of the
// change, or 204 once the token generations of userID (every user when
// empty) are forgotten.
func (a *AAS) revoked(w http.ResponseWriter, err error, what, userID string) error {
	if err != nil {
		return storeErr(err, what)
	}
	a.gens.forget(userID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *AAS) handleCreateRole(w http.ResponseWriter, r *http.Request) error {
	var req restapi.RoleRequest
	if err := api.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	var errs []error
	if err := checkName("service", req.Service); err != nil {
		errs = append(errs, err)
	}
	if err := checkName("role name", req.Name); err != nil {
		errs = append(errs, err)
	}
	if err := checkContext(req.Context); err != nil {
		errs = append(errs, err)
	}
	if err := checkRules(req.Permissions); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return badRequest(err)
	}
	perms := slices.Compact(slices.Sorted(slices.Values(req.Permissions)))
	role := Role{ID: newID(), Service: req.Service, Name: req.Name, Context: req.Context, Permissions: perms, CreatedAt: a.now().UTC()}
	if err := a.store.CreateRole(r.Context(), role); err != nil {
		return storeErr(err, "role "+req.Service+":"+req.Name)
	}
	api.WriteJSON(w, http.StatusCreated, roleResponse(role))
	return nil
}

func (a *AAS) handleListRoles(w http.ResponseWriter, r *http.Request) error {
	roles, err := a.store.ListRoles(r.Context())
	if err != nil {
		return storeErr(err, "list roles")
	}
	q := r.URL.Query()
	out := []restapi.Role{}
	for _, rl := range roles {
		if (q.Has("service") && rl.Service != q.Get("service")) || (q.Has("name") && rl.Name != q.Get("name")) ||
			(q.Has("context") && rl.Context != q.Get("context")) {
			continue
		}
		out = append(out, roleResponse(rl))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *AAS) handleGetRole(w http.ResponseWriter, r *http.Request) error {
	return writeByID(w, r, "role", a.store.RoleByID, roleResponse)
}

func (a *AAS) handleDeleteRole(w http.ResponseWriter, r *http.Request) error {
	// The store revoked the tokens of the role's holders.
	return a.revoked(w, a.store.DeleteRole(r.Context(), r.PathValue("id")), "role", "")
}

func (a *AAS) handleSetRolePermissions(w http.ResponseWriter, r *http.Request) error {
	var req restapi.PermissionsRequest
	if err := api.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if err := checkRules(req.Permissions); err != nil {
		return badRequest(err)
	}
	perms := slices.Compact(slices.Sorted(slices.Values(req.Permissions)))
	if perms == nil {
		perms = []string{}
	}
	if err := a.store.SetRolePermissions(r.Context(), r.PathValue("id"), perms); err != nil {
		return storeErr(err, "role")
	}
	a.gens.forget("") // the store revoked the tokens of the role's holders
	return a.handleGetRole(w, r)
}

func (a *AAS) handleAddUserRoles(w http.ResponseWriter, r *http.Request) error {
	var req restapi.UserRolesRequest
	if err := api.DecodeJSON(w, r, &req, smallBody); err != nil {
		return err
	}
	if len(req.RoleIDs) == 0 {
		return api.Errorf(api.KindBadRequest, "role_ids must not be empty")
	}
	id := r.PathValue("id")
	if _, err := a.store.UserByID(r.Context(), id); err != nil {
		return storeErr(err, "user")
	}
	for _, rid := range req.RoleIDs {
		if _, err := a.store.RoleByID(r.Context(), rid); err != nil {
			return storeErr(err, "role "+rid)
		}
	}
	if err := a.store.AddUserRoles(r.Context(), id, slices.Compact(slices.Sorted(slices.Values(req.RoleIDs)))); err != nil {
		return storeErr(err, "user role")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *AAS) handleUserRoles(w http.ResponseWriter, r *http.Request) error {
	roles, err := a.userRoles(r)
	if err != nil {
		return err
	}
	out := make([]restapi.Role, 0, len(roles))
	for _, rl := range roles {
		out = append(out, roleResponse(rl))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *AAS) handleRemoveUserRole(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	return a.revoked(w, a.store.RemoveUserRole(r.Context(), id, r.PathValue("roleId")), "user role", id)
}

func (a *AAS) handleUserPermissions(w http.ResponseWriter, r *http.Request) error {
	roles, err := a.userRoles(r)
	if err != nil {
		return err
	}
	_, perms := claimsOf(roles)
	api.WriteJSON(w, http.StatusOK, perms)
	return nil
}

// userRoles returns the roles of the user in the path; 404 for an unknown user.
func (a *AAS) userRoles(r *http.Request) ([]Role, error) {
	id := r.PathValue("id")
	if _, err := a.store.UserByID(r.Context(), id); err != nil {
		return nil, storeErr(err, "user")
	}
	roles, err := a.store.UserRoles(r.Context(), id)
	if err != nil {
		return nil, storeErr(err, "user roles")
	}
	return roles, nil
}
