package verifier

import (
	"context"
	"errors"

	"trustedcompute.io/tc/internal/verifier/busserver"
	"trustedcompute.io/tc/internal/verifier/store"
)

// registeredHosts lets a host's agent hold bus credentials while the host is
// registered.
type registeredHosts struct{ store *store.Store }

func (h registeredHosts) HostAllowed(ctx context.Context, hostID string) (bool, error) {
	_, err := h.store.HostByID(ctx, hostID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// newRenewer answers the agents' credential renewals with the lifetime AAS
// issues (aas.Config.CredentialValidity, default 30 days) and, with the
// embedded server, revokes the credentials of removed hosts.
func (v *Verifier) newRenewer() (*busserver.Renewer, error) {
	return busserver.NewRenewer(busserver.RenewerConfig{TTL: v.cfg.AAS.CredentialValidity},
		v.auth, v.nats, registeredHosts{v.store}, v.logger.With("part", "bus-credentials"))
}
