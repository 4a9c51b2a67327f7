package hvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/store"
)

// eventQueueGroup spreads the agents' events over the HVS replicas.
const eventQueueGroup = "hvs"

// subscribeEvents attests a registered host on each of its boot and IMA
// events until ctx ends. It subscribes to each event type, not to all of
// trust-events.>: agents renew their credentials and ask for their secrets
// under that prefix too (bus.GrammarTwoPrefixes), which are no events.
func (s *Service) subscribeEvents(ctx context.Context) error {
	for _, t := range bus.EventTypes {
		subject := bus.AllEventsOf(t)
		sub, err := s.nc.QueueSubscribe(subject, eventQueueGroup, func(m *nats.Msg) {
			s.HandleEvent(ctx, m.Subject)
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	if err := s.nc.Flush(); err != nil {
		return fmt.Errorf("subscribe to the agents' events: %w", err)
	}
	<-ctx.Done()
	return ctx.Err()
}

// HandleEvent queues a report of the host that published an event on
// subject. The host is the one in the subject, which only that host's agent
// may publish to, never one named in the payload; the payload is not read.
// Events of unknown hosts are logged and dropped.
func (s *Service) HandleEvent(ctx context.Context, subject string) {
	hostID, typ, err := bus.ParseEventSubject(subject)
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "event dropped", slog.String(keySubject, subject), slog.String(keyError, err.Error()))
		return
	}
	logger := s.logger.With(slog.String(keyHost, hostID), slog.String(keyEvent, string(typ)))
	if _, err := s.store.HostByID(ctx, hostID); errors.Is(err, store.ErrNotFound) {
		logger.LogAttrs(ctx, slog.LevelInfo, "event of an unregistered host dropped")
		return
	} else if err != nil {
		logger.LogAttrs(ctx, slog.LevelWarn, "event dropped", slog.String(keyError, err.Error()))
		return
	}
	if err := s.Enqueue(hostID); err != nil {
		logger.LogAttrs(ctx, slog.LevelWarn, "event dropped", slog.String(keyError, err.Error()))
		return
	}
	logger.LogAttrs(ctx, slog.LevelDebug, "report queued on event")
}
