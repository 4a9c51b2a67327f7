package keybroker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/verifier/report"
)

// Limits of the bus service.
const (
	// maxNamesPerRequest bounds the secrets one request may ask for.
	maxNamesPerRequest = 64
	// maxRequestSize bounds a request message.
	maxRequestSize = 16 << 10
	// concurrentRequests bounds the requests handled at once (a release
	// may attest the host, which takes a quote round trip).
	concurrentRequests = 16
)

// Publisher sends a message on the bus (a *nats.Conn).
type Publisher interface {
	Publish(subject string, data []byte) error
}

// holders remembers, per host, the secrets released to it, so that a
// revocation can be pushed when the host's report turns untrusted. It is
// best effort on top of the lease, and lives only in memory.
type holders struct {
	mu    sync.Mutex
	names map[string][]string
}

func (h *holders) add(host, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil {
		h.names = map[string][]string{}
	}
	if !slices.Contains(h.names[host], name) {
		h.names[host] = append(h.names[host], name)
	}
}

func (h *holders) remove(host, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if names := slices.DeleteFunc(h.names[host], func(n string) bool { return n == name }); len(names) > 0 {
		h.names[host] = names
	} else {
		delete(h.names, host)
	}
}

func (h *holders) take(host string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := h.names[host]
	delete(h.names, host)
	return names
}

// Serve answers the agents' secret requests, in either grammar
// (bus.AgentGrammar), on nc until ctx ends. The host of a request is the
// one in its subject, which only that host's agent may publish to.
func (b *Broker) Serve(ctx context.Context, nc *nats.Conn) error {
	b.pub.Store(&publisher{nc})
	defer b.pub.Store(nil)
	sem := make(chan struct{}, concurrentRequests)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, subject := range []string{bus.AllSecretRequests, bus.AllSecretRequestsTwoPrefixes} {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			if !b.admit(ctx, m.Subject) {
				return
			}
			select {
			case sem <- struct{}{}:
			default:
				b.logger.LogAttrs(ctx, slog.LevelWarn, "secret request dropped: too many at once", slog.String("subject", m.Subject))
				return
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				b.handle(ctx, nc, m.Subject, m.Data)
			}()
		})
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", subject, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	<-ctx.Done()
	return nil
}

// admit takes a turn of the host that published on subject and reports
// whether it had one. A subject that names no host is admitted: handle
// logs and drops it.
func (b *Broker) admit(ctx context.Context, subject string) bool {
	host, _, err := bus.ParseSecretRequestSubject(subject)
	if err != nil {
		return true
	}
	ok, tell := b.limit.Allow(host)
	if tell {
		b.logger.LogAttrs(ctx, slog.LevelWarn, "secret requests come faster than the limit; dropped until the next turn",
			slog.String(keyHost, host), slog.Int(keyBurst, b.cfg.RequestBurst), slog.Duration(keyEvery, b.cfg.RequestInterval))
	}
	return ok
}

// RequestsLimited is the number of secret requests dropped over the limit.
func (b *Broker) RequestsLimited() uint64 { return b.limit.Limited() }

// publisher wraps the connection for the atomic pointer.
type publisher struct{ Publisher }

// handle answers one request.
func (b *Broker) handle(ctx context.Context, p Publisher, subject string, data []byte) {
	host, g, err := bus.ParseSecretRequestSubject(subject)
	if err != nil {
		b.logger.LogAttrs(ctx, slog.LevelWarn, "secret request on an unexpected subject", slog.String(keyError, err.Error()))
		return
	}
	var req bus.SecretRequest
	if len(data) > maxRequestSize {
		err = fmt.Errorf("request of %d bytes, at most %d", len(data), maxRequestSize)
	} else if err = json.Unmarshal(data, &req); err == nil && len(req.Names) > maxNamesPerRequest {
		err = fmt.Errorf("%d names, at most %d", len(req.Names), maxNamesPerRequest)
	} else if err == nil && len(req.Nonce) > bus.MaxSecretNonceSize {
		err = fmt.Errorf("nonce of %d bytes, at most %d", len(req.Nonce), bus.MaxSecretNonceSize)
	}
	if err != nil {
		b.logger.LogAttrs(ctx, slog.LevelWarn, "malformed secret request", slog.String(keyHost, host), slog.String(keyError, err.Error()))
		return
	}
	var ans bus.SecretAnswer
	for _, name := range req.Names {
		s, err := b.Release(ctx, host, name)
		if err != nil {
			b.holders.remove(host, name)
			ans.Refused = append(ans.Refused, bus.SecretRefusal{Name: name, Reason: ReasonOf(err)})
			continue
		}
		b.holders.add(host, name)
		ans.Released = append(ans.Released, *s)
	}
	b.answer(ctx, p, host, req.Nonce, ans, g)
}

// answer publishes ans to host on its answer subject in each of grammars,
// signed with the nonce of the request it answers (none for a pushed
// revocation). An answer that cannot be signed goes out unsigned, for
// agents before signed answers; newer agents refuse it.
func (b *Broker) answer(ctx context.Context, p Publisher, host string, nonce []byte, ans bus.SecretAnswer, grammars ...bus.AgentGrammar) {
	if b.signer != nil {
		payload, err := json.Marshal(bus.SignedSecretAnswer{HostID: host, Nonce: nonce, IssuedAt: b.cfg.Now().UTC(),
			Released: ans.Released, Refused: ans.Refused})
		if err == nil {
			ans.Signed, err = b.signer.SignSecretAnswer(ctx, payload)
		}
		if err != nil {
			b.logger.LogAttrs(ctx, slog.LevelWarn, "secret answer not signed", slog.String(keyHost, host), slog.String(keyError, err.Error()))
		}
	}
	msg, err := json.Marshal(ans)
	for _, g := range grammars {
		var subject string
		if err == nil {
			subject, err = g.SecretAnswerSubject(host)
		}
		if err == nil {
			err = p.Publish(subject, msg)
		}
	}
	if err != nil {
		b.logger.LogAttrs(ctx, slog.LevelWarn, "secret answer not sent", slog.String(keyHost, host), slog.String(keyError, err.Error()))
	}
}

// ReportMade is told of every report HVS makes. When a host's report is
// untrusted, the broker pushes a revocation of every secret it released to
// the host, so that the agent drops them at once rather than at the end of
// the lease (best effort: the lease bounds the exposure anyway).
func (b *Broker) ReportMade(r *report.Report) {
	if r == nil || r.Trusted() {
		return
	}
	names := b.holders.take(r.HostID)
	p := b.pub.Load()
	if len(names) == 0 || p == nil {
		return
	}
	ans := bus.SecretAnswer{}
	for _, n := range names {
		ans.Refused = append(ans.Refused, bus.SecretRefusal{Name: n, Reason: bus.ReasonRevoked})
	}
	ctx := context.Background()
	b.logger.LogAttrs(ctx, slog.LevelWarn, "secrets revoked: the host's report is untrusted",
		slog.String(keyHost, r.HostID), slog.String(keyReport, r.ID), slog.Any("secret_names", names))
	for _, n := range names {
		b.observe(OutcomeRevoked, bus.ReasonRevoked)
		b.journal.add(Decision{At: b.cfg.Now(), HostID: r.HostID, Name: n, Outcome: OutcomeRevoked, Reason: bus.ReasonRevoked,
			Detail: "the host's report is untrusted", ReportID: r.ID})
	}
	// The broker does not know which grammar the agent listens in now (it
	// may have renewed into another since it asked): both.
	b.answer(ctx, p, r.HostID, nil, ans, bus.GrammarSplit, bus.GrammarTwoPrefixes)
}
