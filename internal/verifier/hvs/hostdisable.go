package hvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/auth"
)

// A disabled host stays registered with its flavors and reports, but its
// agent holds no bus credentials (they are revoked when it is disabled, and
// renewal is refused) and it gets no new report: CreateReport refuses it
// with ErrHostDisabled, and a report that was being made when the host was
// disabled is not stored. Enabling it lets reports be made again once its
// agent connects with fresh credentials.

// ErrHostDisabled is wrapped by the refusal to attest a disabled host.
var ErrHostDisabled = errors.New("the host is disabled")

// Log field keys of the disable and enable routes.
const (
	keyCaller = "caller"
	keyAt     = "at"
)

// refuseDisabled returns an error wrapping ErrHostDisabled when the host is
// disabled, that is when it was disabled at a time that is not zero.
func refuseDisabled(hostID string, at time.Time) error {
	if !at.IsZero() {
		return fmt.Errorf("host %q, disabled at %s: %w", hostID, at.Format(time.RFC3339), ErrHostDisabled)
	}
	return nil
}

// markDisabled sets Disabled and DisabledAt of the hosts from the store.
func (s *Service) markDisabled(ctx context.Context, hosts []restapi.Host) error {
	disabled, err := s.store.DisabledHosts(ctx)
	if err != nil {
		return err
	}
	for i := range hosts {
		if at, ok := disabled[hosts[i].ID]; ok {
			hosts[i].Disabled, hosts[i].DisabledAt = true, ptrTime(at)
			hosts[i].Overdue = false // not attested while disabled
		}
	}
	return nil
}

func callerOf(r *http.Request) string {
	if c := auth.FromContext(r.Context()); c != nil {
		return c.Subject
	}
	return ""
}

// disableHost serves POST /hvs/v2/hosts/{id}/disable: the host is marked
// disabled, then its agent's bus credentials are revoked (the connection
// closes before the answer with the embedded server). It answers with the
// host.
func (s *Service) disableHost(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	now := s.cfg.Now()
	if err := s.store.DisableHost(ctx, id, now); err != nil {
		return err
	}
	if s.hostRemoved != nil {
		s.hostRemoved(id)
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "host disabled", slog.String(keyHost, id),
		slog.String(keyCaller, callerOf(r)), slog.Time(keyAt, now))
	return s.getHost(w, r)
}

// enableHost serves POST /hvs/v2/hosts/{id}/enable: the host may hold bus
// credentials and be attested again. Its agent's old credentials stay
// revoked: it needs fresh ones (POST /aas/v1/credentials).
func (s *Service) enableHost(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := s.store.EnableHost(ctx, id); err != nil {
		return err
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "host enabled", slog.String(keyHost, id), slog.String(keyCaller, callerOf(r)))
	return s.getHost(w, r)
}
