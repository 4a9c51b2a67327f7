package verifier

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"trustedcompute.io/tc/internal/verifier/report"

	"trustedcompute.io/tc/internal/run"
)

// MetricsConfig says where the verifier's Prometheus metrics are served.
//
// On the HTTPS API port GET /metrics always needs a token with the
// permission HVS:metrics:retrieve:* (the counts of trusted and untrusted
// hosts are not for anyone who can reach the port). Listen, when set, also
// serves GET /metrics (and /healthz) without a token on its own plain-HTTP
// listener, for a Prometheus scraper on loopback or a trusted pod network:
// for example 127.0.0.1:9464, or :9464 in a pod behind a NetworkPolicy.
type MetricsConfig struct {
	Listen string
}

// The permission /metrics needs on the API port.
const (
	metricsService = "HVS"
	metricsRule    = "metrics:retrieve:*"
)

// metrics are the verifier's Prometheus metrics, served on /metrics.
type metrics struct {
	ln       net.Listener // the metrics listener, nil without MetricsConfig.Listen
	reg      *prometheus.Registry
	reports  *prometheus.CounterVec
	parts    *prometheus.CounterVec
	latency  prometheus.Histogram
	clients  prometheus.GaugeFunc
	numConns func() int
}

func newMetrics(numConns func() int) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), numConns: numConns}
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "hvs", Name: "reports_total",
		Help: "Trust reports made, by result (trusted, untrusted) and host status.",
	}, []string{"result", "host_status"})
	m.parts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "hvs", Name: "report_parts_total",
		Help: "Flavor parts appraised in trust reports, by part and result.",
	}, []string{"part", "result"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "tc", Subsystem: "hvs", Name: "report_duration_seconds",
		Help:    "Time to make one trust report: quote over NATS, appraisal, flavor match, signing, store.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
	})
	m.clients = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tc", Subsystem: "nats", Name: "connections",
		Help: "Client connections to the embedded NATS server (trust agents and services).",
	}, func() float64 {
		if m.numConns == nil {
			return 0
		}
		return float64(m.numConns())
	})
	m.reg.MustRegister(m.reports, m.parts, m.latency, m.clients,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one report.
func (m *metrics) observe(r *report.Report, took time.Duration) {
	m.reports.WithLabelValues(result(r.Trusted()), r.HostStatus).Inc()
	for part, pt := range r.TrustInformation.FlavorsTrust {
		m.parts.WithLabelValues(string(part), result(pt.Trust)).Inc()
	}
	m.latency.Observe(took.Seconds())
}

func result(trusted bool) string {
	if trusted {
		return "trusted"
	}
	return "untrusted"
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// listenMetrics binds the metrics listener when one is configured.
func (v *Verifier) listenMetrics(ctx context.Context) error {
	if v.cfg.Metrics.Listen == "" || v.metrics.ln != nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", v.cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", v.cfg.Metrics.Listen, err)
	}
	v.metrics.ln = ln
	return nil
}

// MetricsAddr returns the address of the metrics listener, or "" without one.
func (v *Verifier) MetricsAddr() string {
	if v.metrics == nil || v.metrics.ln == nil {
		return ""
	}
	return v.metrics.ln.Addr().String()
}

// serveMetrics serves GET /metrics and GET /healthz, and nothing else, on
// the metrics listener until ctx ends.
func (v *Verifier) serveMetrics(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", v.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(v.logger.Handler(), slog.LevelWarn),
	}
	return run.Server(ctx, srv, func() error { return srv.Serve(v.metrics.ln) }, 5*time.Second)
}
