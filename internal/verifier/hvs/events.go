package hvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/hostlimit"
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

// Events of one host make at most EventBurst reports at once, and then one
// every Config.EventInterval.
const (
	DefaultEventInterval = time.Second
	EventBurst           = 2
)

// HandleEvent queues a report of the host that published an event on
// subject. The host is the one in the subject, which only that host's agent
// may publish to, never one named in the payload; the payload is not read.
// Events of unknown hosts are logged and dropped. A host's events beyond
// its budget (Config.EventInterval) fold into its next report, which comes
// at its next turn: they cost no store read and no report of their own.
func (s *Service) HandleEvent(ctx context.Context, subject string) {
	hostID, typ, err := bus.ParseEventSubject(subject)
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "event dropped", slog.String(keySubject, subject), slog.String(keyError, err.Error()))
		return
	}
	if s.events.Fold(ctx, hostID, func() { s.queueEvent(ctx, hostID, typ) }) == hostlimit.Deferred {
		s.logger.LogAttrs(ctx, slog.LevelDebug, "events come faster than the host's reports; the next one waits for its turn",
			slog.String(keyHost, hostID), slog.Duration(keyWait, s.cfg.EventInterval))
	}
}

// EventsFolded is the number of events that folded into a report already
// waiting for its host's turn.
func (s *Service) EventsFolded() uint64 { return s.events.Limited() }

// queueEvent queues a report of a registered host on its event of type typ.
func (s *Service) queueEvent(ctx context.Context, hostID string, typ bus.EventType) {
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
