package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/auth"
	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/store"
)

// registeredHosts lets a host's agent hold bus credentials while the host is
// registered and not disabled.
type registeredHosts struct{ store *store.Store }

func (h registeredHosts) HostAllowed(ctx context.Context, hostID string) (bool, error) {
	if registered, err := h.HostRegistered(ctx, hostID); !registered {
		return false, err
	}
	disabled, err := h.store.HostDisabled(ctx, hostID)
	return disabled.IsZero(), err
}

func (h registeredHosts) HostRegistered(ctx context.Context, hostID string) (bool, error) {
	_, err := h.store.HostByID(ctx, hostID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (h registeredHosts) HostsAllowed(ctx context.Context) (map[string]bool, error) {
	return h.store.HostsAllowed(ctx)
}

// newRenewer answers the agents' credential renewals with the lifetime AAS
// issues (aas.Config.CredentialValidity, default 30 days) and, with the
// embedded server, revokes the credentials of removed hosts.
func (v *Verifier) newRenewer() (*busserver.Renewer, error) {
	return busserver.NewRenewer(busserver.RenewerConfig{TTL: v.cfg.AAS.CredentialValidity},
		v.auth, v.nats, registeredHosts{v.store}, v.logger.With("part", "bus-credentials"))
}

// keyLedger keeps the authority's issued and revoked user keys in the store
// (table bus_credentials), so that revocations outlive a restart.
type keyLedger struct{ store *store.Store }

func (l keyLedger) RecordKeys(ctx context.Context, keys ...busserver.UserKey) error {
	rows := make([]store.BusKey, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, store.BusKey{PublicKey: k.PublicKey, Kind: k.Owner.Kind, Owner: k.Owner.Name,
			ExpiresAt: k.Expires, RevokedAt: k.Revoked})
	}
	return l.store.RecordBusKeys(ctx, rows...)
}

func (l keyLedger) RevokeOwner(ctx context.Context, owner busserver.Owner, at time.Time) error {
	_, err := l.store.RevokeBusKeys(ctx, owner.Kind, owner.Name, at)
	return err
}

func (l keyLedger) RevokedKeys(ctx context.Context, now time.Time) ([]busserver.UserKey, error) {
	rows, err := l.store.RevokedBusKeys(ctx, now)
	if err != nil {
		return nil, err
	}
	keys := make([]busserver.UserKey, 0, len(rows))
	for _, r := range rows {
		keys = append(keys, busserver.UserKey{Owner: busserver.Owner{Kind: r.Kind, Name: r.Owner}, PublicKey: r.PublicKey,
			Expires: r.ExpiresAt, Revoked: r.RevokedAt})
	}
	return keys, nil
}

func (l keyLedger) PruneKeys(ctx context.Context, now time.Time) error {
	_, err := l.store.PruneBusKeys(ctx, now)
	return err
}

// credentialIssuer is the authority as AAS sees it: it issues no agent
// credentials for a disabled host (an operator enables the host first).
type credentialIssuer struct {
	*busserver.Authority
	store *store.Store
}

// errHostDisabled: AAS does not issue bus credentials for a disabled host.
var errHostDisabled = errors.New("the host is disabled: enable it before issuing its credentials")

func (c credentialIssuer) AgentCredentials(hostID string, g bus.AgentGrammar, ttl time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	disabled, err := c.store.HostDisabled(ctx, hostID)
	if err != nil {
		return nil, fmt.Errorf("agent credentials: %w", err)
	}
	if !disabled.IsZero() {
		err := fmt.Errorf("agent credentials of host %q: %w", hostID, errHostDisabled)
		return nil, api.Wrap(api.KindConflict, err, err.Error())
	}
	return c.Authority.AgentCredentials(hostID, g, ttl)
}

// Routes of the bus credentials the composition root serves itself (they
// need the renewer, which lives beside the bus).
//
//nolint:gosec // G101: routes and a permission rule, not credentials
const (
	pathManagerCredentials = "/aas/v1/credentials/managers/{name}"
	pathServiceCredentials = "/aas/v1/credentials/services/{name}"
	credentialsService     = "AAS"
	credentialRevokeRule   = "credential:delete:*"
)

func busCredentialRoutes() []Route {
	return []Route{
		{Method: http.MethodDelete, Pattern: pathManagerCredentials, Service: credentialsService, Rule: credentialRevokeRule},
		{Method: http.MethodDelete, Pattern: pathServiceCredentials, Service: credentialsService, Rule: credentialRevokeRule},
	}
}

// Log field keys of the bus credential routes.
const (
	keyManager = "manager"
	keyService = "service"
	keyCaller  = "caller"
)

// registerBusCredentials serves the revocations of bus credentials: DELETE
// /aas/v1/credentials/managers/{name} revokes every credential issued so far
// to the attestation manager name, DELETE /aas/v1/credentials/services/{name}
// every one issued so far to the verifier service name (type HVS: name HVS;
// verifier nats-export: name hvs). Each is persisted and, with the embedded
// server, closes their connections at once; credentials issued to that name
// later work. The verifier's own in-process connection is no service's.
func (v *Verifier) registerBusCredentials(renewer *busserver.Renewer) {
	logger := v.logger.With("part", "bus-credentials")
	for _, route := range []struct {
		pattern, key, msg string
		revoke            func(context.Context, string) error
	}{
		{pathManagerCredentials, keyManager, "manager bus credentials revoked", renewer.RevokeManager},
		{pathServiceCredentials, keyService, "service bus credentials revoked", renewer.RevokeService},
	} {
		v.mux.Handle(http.MethodDelete+" "+route.pattern, v.require(credentialsService, credentialRevokeRule)(http.HandlerFunc(
			func(w http.ResponseWriter, r *http.Request) {
				name := r.PathValue("name")
				if err := route.revoke(r.Context(), name); err != nil {
					kind := api.KindInternal
					if errors.Is(err, bus.ErrInvalidHostID) {
						kind = api.KindBadRequest
					}
					api.WriteError(w, r, logger, api.Wrap(kind, err, err.Error()))
					return
				}
				caller := ""
				if c := auth.FromContext(r.Context()); c != nil {
					caller = c.Subject
				}
				logger.LogAttrs(r.Context(), slog.LevelInfo, route.msg, slog.String(route.key, name), slog.String(keyCaller, caller))
				w.WriteHeader(http.StatusNoContent)
			})))
	}
}
