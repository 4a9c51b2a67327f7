package verifier

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"trustedcompute.io/tc/internal/run"
	"trustedcompute.io/tc/internal/verifier/hvs"
	"trustedcompute.io/tc/internal/verifier/keybroker"
	"trustedcompute.io/tc/internal/verifier/report"
)

// keyBrokerPart is the key broker (package keybroker, docs/secrets.md)
// and its counter in /metrics.
type keyBrokerPart struct {
	b        atomic.Pointer[keybroker.Broker]
	releases *prometheus.CounterVec
}

// observeReports chains the broker after next as HVS's report observer, so
// that an untrusted report revokes the host's secrets.
func (p *keyBrokerPart) observeReports(next func(*report.Report, time.Duration)) func(*report.Report, time.Duration) {
	return func(r *report.Report, took time.Duration) {
		if next != nil {
			next(r, took)
		}
		if b := p.b.Load(); b != nil {
			b.ReportMade(r)
		}
	}
}

// startKeyBroker builds the broker over the store and HVS, registers its
// routes and runs its bus service on r.
func (v *Verifier) startKeyBroker(r *run.Runner, nc *nats.Conn, svc *hvs.Service) {
	p := &v.keyBroker
	p.releases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "keybroker", Name: "decisions_total",
		Help: "Key broker decisions, by outcome (released, refused, revoked) and refusal reason.",
	}, []string{"outcome", "reason"})
	v.metrics.reg.MustRegister(p.releases)
	b := keybroker.New(keybroker.Config{Observe: func(outcome, reason string) {
		p.releases.WithLabelValues(outcome, reason).Inc()
	}}, keybroker.Deps{Secrets: v.store, Hosts: v.store, Attest: svc, Reports: report.NewVerifier(v.ca.RootPool()), Signer: svc},
		v.logger.With("part", "keybroker"))
	v.metrics.countLimited("secret_request", b.RequestsLimited)
	b.Register(v.mux, v.require)
	p.b.Store(b)
	r.Go("keybroker", func(ctx context.Context) error { return b.Serve(ctx, nc) })
}
